"""The hyper-parameters shared by the segmentation losses."""

import dataclasses
import numbers
from typing import Any, NoReturn

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.serialization import register_serializable

_OWNER = "SegmentationLossConfig"

_NON_NEGATIVE_FIELDS = (
    "smooth",
    "focal_gamma",
    "tversky_alpha",
    "tversky_beta",
    "dice_weight",
    "ce_weight",
)
_POSITIVE_FIELDS = ("focal_alpha", "focal_tversky_gamma")


@register_serializable
@dataclasses.dataclass(frozen=True)
class SegmentationLossConfig:
    """Hyper-parameters of the segmentation losses, shared by every loss name.

    One config serves every name of ``create_segmentation_loss_function`` and
    every method of ``SegmentationLosses``; each loss reads the fields it
    needs:

    ```
    dice            (2 TP + smooth) / (sum p + sum y + smooth)          per class
    tversky         TI = (TP + smooth) / (TP + a FP + b FN + smooth)    a = tversky_alpha
    focal_tversky   (1 - TI)^focal_tversky_gamma                        b = tversky_beta
    focal           -focal_alpha (1 - p_t)^focal_gamma log p_t          per pixel
    dice_ce         dice_weight * dice + ce_weight * cross_entropy       (and the other pairs)
    ```

    Labels are one-hot ``(B, H, W, C)`` or class ids ``(B, H, W[, 1])``.
    ``ignore_index`` is a label id whose pixels are left out of every term.
    With class ids any integer works (255 and -1 are common). With one-hot
    labels an ``ignore_index`` outside ``[0, num_classes)`` marks the
    all-zero rows that ``keras.ops.one_hot`` gives such an id; one inside
    names a void channel, whose pixels are left out and which is left out of
    the averages over classes. ``class_weights`` weight the mean over classes
    of the region losses (Dice, Tversky, Lovasz) and, per pixel by its label,
    the cross-entropy and focal terms, which are then normalised by the sum of
    those weights (PyTorch's ``CrossEntropyLoss(weight=...)`` convention).

    The config is immutable and compares by value; ``get_config`` gives a
    JSON-friendly dict and ``from_config`` rebuilds an equal config.

    Args:
        num_classes: Int >= 1; the number of channels of ``y_pred`` (1 or 2
            for the binary ``lovasz_hinge``).
        from_logits: Bool; ``y_pred`` holds logits (softmax is applied)
            rather than probabilities. Defaults to False.
        smooth: Number >= 0 added to the numerator and denominator of Dice
            and Tversky. Defaults to 1e-6.
        focal_gamma: Number >= 0; the focusing exponent of the focal loss.
            Defaults to 2.0.
        focal_alpha: Number > 0; the scale of the focal loss. Defaults to
            0.25.
        tversky_alpha: Number >= 0; the weight of false positives. Defaults
            to 0.3.
        tversky_beta: Number >= 0; the weight of false negatives. Defaults
            to 0.7. ``tversky_alpha + tversky_beta`` must be > 0.
        focal_tversky_gamma: Number > 0; the exponent of the focal-Tversky
            loss (Abraham & Khan's ``1 / gamma``). Defaults to 0.75.
        dice_weight: Number >= 0; weight of the region term of the combined
            losses. Defaults to 0.5.
        ce_weight: Number >= 0; weight of the pixel term of the combined
            losses. Defaults to 0.5. The two weights must not both be 0.
        ignore_index: Int or None; the label id of pixels to leave out.
            Defaults to None.
        class_weights: None or ``num_classes`` numbers >= 0 with a positive
            sum. Defaults to None (every class weighs 1).
        per_image: Bool; compute the region losses per image and return one
            value per image instead of pooling the batch. Defaults to False.

    Example:

    ```python
    config = SegmentationLossConfig(num_classes=19, focal_gamma=2.5, ignore_index=255)
    SegmentationLossConfig.from_config(config.get_config()) == config  # True
    ```
    """

    num_classes: int
    from_logits: bool = False
    smooth: float = 1e-6
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    tversky_alpha: float = 0.3
    tversky_beta: float = 0.7
    focal_tversky_gamma: float = 0.75
    dice_weight: float = 0.5
    ce_weight: float = 0.5
    ignore_index: int | None = None
    class_weights: tuple | None = None
    per_image: bool = False

    def __post_init__(self) -> None:
        validation.check_positive_int(_OWNER, "num_classes", self.num_classes)
        for field in ("from_logits", "per_image"):
            validation.check_bool(_OWNER, field, getattr(self, field))
        for field in _NON_NEGATIVE_FIELDS:
            validation.check_non_negative(_OWNER, field, getattr(self, field))
        for field in _POSITIVE_FIELDS:
            validation.check_positive(_OWNER, field, getattr(self, field))
        if self.tversky_alpha + self.tversky_beta <= 0:
            raise ValueError(
                "SegmentationLossConfig: `tversky_alpha + tversky_beta` must be > 0; got "
                f"tversky_alpha={self.tversky_alpha!r}, tversky_beta={self.tversky_beta!r}."
            )
        if self.dice_weight + self.ce_weight <= 0:
            raise ValueError(
                "SegmentationLossConfig: `dice_weight` and `ce_weight` must not both be 0; "
                f"got dice_weight={self.dice_weight!r}, ce_weight={self.ce_weight!r}."
            )
        ignore = self.ignore_index
        if ignore is not None and (
            isinstance(ignore, bool) or not isinstance(ignore, numbers.Integral)
        ):
            _invalid("ignore_index", ignore, "an int or None")
        for field in _NON_NEGATIVE_FIELDS + _POSITIVE_FIELDS:
            object.__setattr__(self, field, float(getattr(self, field)))
        object.__setattr__(self, "num_classes", int(self.num_classes))
        if self.ignore_index is not None:
            object.__setattr__(self, "ignore_index", int(self.ignore_index))
        if self.class_weights is not None:
            object.__setattr__(
                self, "class_weights", self._checked_class_weights(self.class_weights)
            )

    def _checked_class_weights(self, class_weights: Any) -> tuple[float, ...]:
        try:
            weights = tuple(class_weights)
        except TypeError:
            _invalid("class_weights", class_weights, f"{self.num_classes} numbers or None")
        valid = len(weights) == self.num_classes and all(
            validation.is_real_number(weight) and weight >= 0 for weight in weights
        )
        if not valid or sum(weights) <= 0:
            _invalid(
                "class_weights",
                class_weights,
                f"{self.num_classes} finite numbers >= 0 (one per class) with a positive sum",
            )
        return tuple(float(weight) for weight in weights)

    def get_config(self) -> dict[str, Any]:
        config = dataclasses.asdict(self)
        if self.class_weights is not None:
            config["class_weights"] = list(self.class_weights)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SegmentationLossConfig":
        unknown = sorted(set(config) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(
                f"SegmentationLossConfig: unknown field(s) {unknown} in the config "
                f"{dict(config)!r}."
            )
        return cls(**config)


def _invalid(field: str, value: Any, expected: str) -> NoReturn:
    raise ValueError(f"{_OWNER}: `{field}` must be {expected}; got {field}={value!r}.")
