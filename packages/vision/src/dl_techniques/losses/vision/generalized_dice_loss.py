"""Generalized Dice loss of Sudre et al. (2017), with MONAI's class-weight conventions."""

from typing import Any

import keras

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.vision import _segmentation_inputs, _segmentation_terms
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig


@register_serializable
class GeneralizedDiceLoss(BatchLoss):
    """One minus the generalized Dice score, classes weighted by their target volume.

    With ``p`` the softmax probabilities (or the given probabilities) and
    ``y`` the one-hot labels, summed over the valid pixels of the batch (of
    each image with ``per_image=True``):

    ```
    TP_c = sum p_c y_c       G_c = sum y_c
    w_c  = 1 / G_c^2   ("square")   1 / G_c   ("simple")   1   ("uniform")
    loss = 1 - (2 sum_c w_c TP_c + smooth_nr) / (sum_c w_c (sum p_c + G_c) + smooth_dr)
    ```

    A class absent from the target (``G_c = 0``, an infinite weight) takes
    the largest finite weight of the others, as MONAI's
    ``GeneralizedDiceLoss`` does (it sets infinite weights to 0, then adds
    the maximum); with no class present every weight is 0 and the loss is
    ``1 - smooth_nr / smooth_dr``. The weights carry no gradient. This is
    MONAI's ``GeneralizedDiceLoss(softmax=True, to_onehot_y=True,
    batch=not per_image)`` with its mean reduction.

    Labels are one-hot ``(B, H, W[, D], C)`` or class ids ``(B, H, W[, D][, 1])``;
    ``ignore_index`` pixels count nowhere (an ``ignore_index`` inside
    ``[0, C)`` with one-hot labels names a void channel, left out of the sums
    over classes). Pooled over the batch (the default), the loss is one
    scalar and ``sample_weight`` weights pixels inside the sums; with
    ``per_image=True`` ``call`` returns one value per image and Keras applies
    ``sample_weight``.

    Reference:
        Sudre, C. H., Li, W., Vercauteren, T., Ourselin, S., & Cardoso, M. J.
        (2017). Generalised Dice overlap as a deep learning loss function for
        highly unbalanced segmentations. DLMIA (MICCAI workshop).

    Args:
        num_classes: Int >= 2, the channels of `y_pred`.
        weight_type: ``"square"``, ``"simple"`` or ``"uniform"``. Defaults to
            ``"square"``.
        from_logits: Whether `y_pred` holds logits (softmax is applied).
            Defaults to True.
        smooth_nr: Number >= 0 added to the numerator. Defaults to 1e-5.
        smooth_dr: Number > 0 added to the denominator. Defaults to 1e-5.
        ignore_index: Label id left out of every sum, or None. Defaults to None.
        per_image: One value per image instead of one pooled value. Defaults
            to False.
        reduction: Keras reduction of the per-image values with
            ``per_image=True``; no effect otherwise. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"generalized_dice_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = GeneralizedDiceLoss(num_classes=2, from_logits=False, smooth_nr=0.0)
    # one image of 4 pixels, 1 of class 0 and 3 of class 1, predicted p = 0.5 everywhere:
    # w = (1, 1/9); TP = (0.5, 1.5); sum p + sum y = (3, 5)
    # 1 - 2 (0.5 + 1.5 / 9) / (3 + 5 / 9) = 0.625
    loss([[[0, 1], [1, 1]]], [[[[0.5, 0.5]] * 2] * 2])
    ```
    """

    def __init__(
        self,
        num_classes: int,
        weight_type: str = "square",
        from_logits: bool = True,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        ignore_index: int | None = None,
        per_image: bool = False,
        reduction: str = "sum_over_batch_size",
        name: str = "generalized_dice_loss",
        dtype: Any = None,
    ) -> None:
        owner = type(self).__name__
        validation.check_positive_int(owner, "num_classes", num_classes)
        if num_classes < 2:
            raise ValueError(
                f"{owner}: `num_classes` must be >= 2 (softmax over the channels); "
                f"got num_classes={num_classes!r}."
            )
        validation.check_choice(
            owner, "weight_type", weight_type, _segmentation_terms.GENERALIZED_DICE_WEIGHTS
        )
        validation.check_bool(owner, "from_logits", from_logits)
        validation.check_non_negative(owner, "smooth_nr", smooth_nr)
        validation.check_positive(owner, "smooth_dr", smooth_dr)
        if ignore_index is not None and (
            not isinstance(ignore_index, int) or isinstance(ignore_index, bool)
        ):
            raise ValueError(
                f"{owner}: `ignore_index` must be an integer or None; "
                f"got ignore_index={ignore_index!r}."
            )
        validation.check_bool(owner, "per_image", per_image)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.num_classes = num_classes
        self.weight_type = weight_type
        self.from_logits = from_logits
        self.smooth_nr = float(smooth_nr)
        self.smooth_dr = float(smooth_dr)
        self.ignore_index = ignore_index
        self.per_image = per_image
        self.config = SegmentationLossConfig(
            num_classes, from_logits=from_logits, ignore_index=ignore_index, per_image=per_image
        )

    def is_per_sample(self) -> bool:
        return self.per_image

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        inputs = _segmentation_inputs.prepare_multiclass(
            self.config, y_true, keras.ops.convert_to_tensor(y_pred), sample_weight
        )
        return _segmentation_terms.generalized_dice_loss(
            inputs, self.config, self.per_image, self.weight_type, self.smooth_nr, self.smooth_dr
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "num_classes": self.num_classes,
            "weight_type": self.weight_type,
            "from_logits": self.from_logits,
            "smooth_nr": self.smooth_nr,
            "smooth_dr": self.smooth_dr,
            "ignore_index": self.ignore_index,
            "per_image": self.per_image,
        }
