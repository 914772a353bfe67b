"""Every segmentation loss of the factory as a method of one object."""

from typing import Any

from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.vision.segmentation_loss import SegmentationLoss
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig


@register_serializable
class SegmentationLosses:
    """The segmentation losses sharing one config, one method per factory name.

    ``SegmentationLosses(config).dice(y_true, y_pred)`` equals
    ``create_segmentation_loss_function("dice", config)(y_true, y_pred)``;
    every method takes ``(y_true, y_pred, sample_weight=None)`` and returns
    the scalar loss (the mean over images when ``per_image=True``). See
    ``SegmentationLoss`` for the formulas, shapes and conventions. For
    ``model.compile`` use ``loss_for(name)`` or the factory, which give a
    Keras loss that saves with the model.

    Args:
        config: A ``SegmentationLossConfig`` (or its ``get_config()`` dict).

    Example:

    ```python
    losses = SegmentationLosses(SegmentationLossConfig(num_classes=2))
    y_true = [[[0, 1], [1, 1]]]
    y_pred = [[[[0.9, 0.1], [0.2, 0.8]], [[0.3, 0.7], [0.1, 0.9]]]]
    losses.dice(y_true, y_pred), losses.lovasz(y_true, y_pred)
    ```
    """

    def __init__(self, config: SegmentationLossConfig | dict[str, Any]) -> None:
        if isinstance(config, dict):
            config = SegmentationLossConfig.from_config(config)
        if not isinstance(config, SegmentationLossConfig):
            raise ValueError(
                "SegmentationLosses: `config` must be a SegmentationLossConfig or its "
                f"get_config() dict; got config={config!r}."
            )
        self.config = config
        self._losses: dict[str, SegmentationLoss] = {}

    def loss_for(self, loss_name: str) -> SegmentationLoss:
        """Returns the ``SegmentationLoss`` named ``loss_name``, built once."""
        if loss_name not in self._losses:
            self._losses[loss_name] = SegmentationLoss(loss_name, self.config)
        return self._losses[loss_name]

    def cross_entropy(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """Categorical cross-entropy averaged over valid pixels."""
        return self.loss_for("cross_entropy")(y_true, y_pred, sample_weight)

    def dice(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """Soft Dice loss, mean over classes."""
        return self.loss_for("dice")(y_true, y_pred, sample_weight)

    def focal(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """Softmax focal loss averaged over valid pixels."""
        return self.loss_for("focal")(y_true, y_pred, sample_weight)

    def tversky(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """Tversky loss ``1 - TI``, mean over classes."""
        return self.loss_for("tversky")(y_true, y_pred, sample_weight)

    def focal_tversky(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """Focal-Tversky loss ``(1 - TI)^gamma``, mean over classes."""
        return self.loss_for("focal_tversky")(y_true, y_pred, sample_weight)

    def lovasz(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """Lovasz-softmax loss, mean over the classes present."""
        return self.loss_for("lovasz")(y_true, y_pred, sample_weight)

    def lovasz_hinge(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """Binary Lovasz hinge loss on one logit per pixel."""
        return self.loss_for("lovasz_hinge")(y_true, y_pred, sample_weight)

    def dice_ce(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """``dice_weight * dice + ce_weight * cross_entropy``."""
        return self.loss_for("dice_ce")(y_true, y_pred, sample_weight)

    def focal_dice(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """``dice_weight * dice + ce_weight * focal``."""
        return self.loss_for("focal_dice")(y_true, y_pred, sample_weight)

    def focal_tversky_ce(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """``dice_weight * focal_tversky + ce_weight * cross_entropy``."""
        return self.loss_for("focal_tversky_ce")(y_true, y_pred, sample_weight)

    def generalized_dice(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        """Generalized Dice loss (Sudre et al.), square weights, ``smooth`` on both sides."""
        return self.loss_for("generalized_dice")(y_true, y_pred, sample_weight)

    def generalized_dice_focal(
        self, y_true: Any, y_pred: Any, sample_weight: Any | None = None
    ) -> Any:
        """``dice_weight * generalized_dice + ce_weight * focal``."""
        return self.loss_for("generalized_dice_focal")(y_true, y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.get_config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SegmentationLosses":
        return cls(**config)
