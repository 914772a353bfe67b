"""Generalized Dice plus a softmax focal term, the pair MONAI calls GeneralizedDiceFocalLoss."""

from typing import Any

import keras

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.vision import _segmentation_inputs, _segmentation_terms
from dl_techniques.losses.vision.generalized_dice_loss import GeneralizedDiceLoss
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig


@register_serializable
class GeneralizedDiceFocalLoss(GeneralizedDiceLoss):
    """``lambda_gdl`` generalized Dice plus ``lambda_focal`` softmax focal loss.

    ```
    loss  = lambda_gdl GDL + lambda_focal focal
    GDL   = GeneralizedDiceLoss(...)                    (see that class)
    focal = mean over valid pixels of -a sum_c y_c (1 - p_c)^gamma log p_c
    ```

    with ``a = focal_alpha``, or 1 when ``focal_alpha`` is None. The focal
    term is the multi-class (softmax) focal loss of Lin et al., averaged as
    the generalized Dice is pooled: over the valid pixels of the batch, or of
    each image with ``per_image=True``. MONAI's ``GeneralizedDiceFocalLoss``
    uses a sigmoid one-vs-rest focal term instead; its Dice part is the
    same. Shapes, ``ignore_index`` and ``sample_weight`` are those of
    ``GeneralizedDiceLoss``.

    References:
        Sudre, C. H. et al. (2017). Generalised Dice overlap as a deep
        learning loss function for highly unbalanced segmentations. DLMIA.
        Lin, T.-Y., Goyal, P., Girshick, R., He, K., & Dollar, P. (2017).
        Focal Loss for Dense Object Detection. ICCV.

    Args:
        num_classes: Int >= 2, the channels of `y_pred`.
        gamma: Number >= 0, the focusing exponent. Defaults to 2.0.
        lambda_gdl: Number >= 0, the weight of the Dice term. Defaults to 1.0.
        lambda_focal: Number >= 0, the weight of the focal term. Defaults to 1.0.
        focal_alpha: Positive number scaling the focal term, or None for 1.
            Defaults to None.
        name: Name of the loss instance. Defaults to
            ``"generalized_dice_focal_loss"``.
        **kwargs: The other arguments of ``GeneralizedDiceLoss``
            (``weight_type``, ``from_logits``, ``smooth_nr``, ``smooth_dr``,
            ``ignore_index``, ``per_image``, ``reduction``, ``dtype``), with
            its defaults.

    Example:

    ```python
    loss = GeneralizedDiceFocalLoss(num_classes=3, lambda_focal=0.5)
    labels = [[[0, 1], [2, 1]]]                    # class ids, (1, 2, 2)
    loss(labels, keras.ops.zeros((1, 2, 2, 3)))     # uniform logits: p = 1/3
    ```
    """

    def __init__(
        self,
        num_classes: int,
        gamma: float = 2.0,
        lambda_gdl: float = 1.0,
        lambda_focal: float = 1.0,
        focal_alpha: float | None = None,
        name: str = "generalized_dice_focal_loss",
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        validation.check_non_negative(owner, "gamma", gamma)
        validation.check_non_negative(owner, "lambda_gdl", lambda_gdl)
        validation.check_non_negative(owner, "lambda_focal", lambda_focal)
        if focal_alpha is not None:
            validation.check_positive(owner, "focal_alpha", focal_alpha)
        super().__init__(num_classes, name=name, **kwargs)
        self.gamma = float(gamma)
        self.lambda_gdl = float(lambda_gdl)
        self.lambda_focal = float(lambda_focal)
        self.focal_alpha = None if focal_alpha is None else float(focal_alpha)
        self.config = SegmentationLossConfig(
            num_classes,
            from_logits=self.from_logits,
            ignore_index=self.ignore_index,
            per_image=self.per_image,
            focal_gamma=self.gamma,
            focal_alpha=1.0 if self.focal_alpha is None else self.focal_alpha,
        )

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        inputs = _segmentation_inputs.prepare_multiclass(
            self.config, y_true, keras.ops.convert_to_tensor(y_pred), sample_weight
        )
        dice = _segmentation_terms.generalized_dice_loss(
            inputs, self.config, self.per_image, self.weight_type, self.smooth_nr, self.smooth_dr
        )
        focal = _segmentation_terms.focal_loss(inputs, self.config, self.per_image)
        return self.lambda_gdl * dice + self.lambda_focal * focal

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "gamma": self.gamma,
            "lambda_gdl": self.lambda_gdl,
            "lambda_focal": self.lambda_focal,
            "focal_alpha": self.focal_alpha,
        }
