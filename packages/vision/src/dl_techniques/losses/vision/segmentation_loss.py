"""The segmentation loss factory: one serializable Keras loss per name."""

from typing import Any

import keras

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.vision import _lovasz, _segmentation_inputs, _segmentation_terms
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig

_REGION_TERMS = {
    "dice": _segmentation_terms.dice_loss,
    "tversky": _segmentation_terms.tversky_loss,
    "focal_tversky": _segmentation_terms.focal_tversky_loss,
    "generalized_dice": _segmentation_terms.generalized_dice_term,
}
_PIXEL_TERMS = {
    "cross_entropy": _segmentation_terms.cross_entropy_loss,
    "focal": _segmentation_terms.focal_loss,
}
_COMBINED_TERMS = {
    "dice_ce": ("dice", "cross_entropy"),
    "focal_dice": ("dice", "focal"),
    "focal_tversky_ce": ("focal_tversky", "cross_entropy"),
    "generalized_dice_focal": ("generalized_dice", "focal"),
}
LOSS_NAMES = (
    "cross_entropy",
    "dice",
    "focal",
    "tversky",
    "focal_tversky",
    "lovasz",
    "lovasz_hinge",
    "dice_ce",
    "focal_dice",
    "focal_tversky_ce",
)
# Names added after the original factory: generalized Dice (Sudre et al. 2017).
GENERALIZED_DICE_NAMES = ("generalized_dice", "generalized_dice_focal")


@register_serializable
class SegmentationLoss(BatchLoss):
    """A semantic-segmentation loss chosen by name, configured by a ``SegmentationLossConfig``.

    With ``p`` the softmax probabilities (or the given probabilities), ``y``
    the one-hot labels, sums over the valid pixels of the batch, ``s =
    smooth`` and ``mean_c`` the (class-weighted) mean over classes:

    ```
    TP_c = sum p_c y_c      FP_c = sum p_c (1 - y_c)      FN_c = sum (1 - p_c) y_c
    dice             mean_c 1 - (2 TP_c + s) / (2 TP_c + FP_c + FN_c + s)
    tversky          mean_c 1 - TI_c,   TI_c = (TP_c + s) / (TP_c + a FP_c + b FN_c + s)
    focal_tversky    mean_c (1 - TI_c)^gamma_ft
    cross_entropy    mean_pixels -sum_c y_c log p_c
    focal            mean_pixels -alpha sum_c y_c (1 - p_c)^gamma log p_c
    lovasz           mean over present c of  Lovasz_J(|y_c - p_c|)       (Berman et al.)
    lovasz_hinge     Lovasz_J(max(0, 1 - logit (2 y - 1)))                 (binary)
    dice_ce          dw dice + cw cross_entropy
    focal_dice       dw dice + cw focal
    focal_tversky_ce dw focal_tversky + cw cross_entropy
    generalized_dice 1 - (2 sum_c w_c TP_c + s) / (sum_c w_c (2 TP_c + FP_c + FN_c) + s),
                     w_c = 1 / (sum y_c)^2                                  (Sudre et al.)
    generalized_dice_focal  dw generalized_dice + cw focal
    ```

    In ``generalized_dice`` a class absent from the target takes the
    largest weight of the present ones (MONAI's rule); ``class_weights``
    multiply the ``w_c``. ``GeneralizedDiceLoss`` offers the other weight
    types and separate smooths.

    ``Lovasz_J`` is the Lovasz extension of the Jaccard loss: the errors
    sorted descending, dotted with the increments of the Jaccard loss of the
    growing set of largest errors.

    Shapes: ``y_pred`` is ``(B, H, W, C)`` with ``C = num_classes``
    (probabilities, or logits with ``from_logits=True``); ``y_true`` is
    one-hot ``(B, H, W, C)`` or class ids ``(B, H, W)`` / ``(B, H, W, 1)``.
    ``lovasz_hinge`` takes one logit per pixel ``(B, H, W[, 1])`` (a
    probability is turned into its logit when ``from_logits=False``) and
    0/1 labels, with ``num_classes`` 1 or 2 and no ``class_weights``.

    Batch pooling and ``sample_weight``: by default the sums run over the
    whole batch (Dice pooled over batch and pixels) and the loss is one
    scalar per batch, so ``sample_weight`` (``(B,)`` or one weight per
    pixel) weights every pixel inside the sums: an integer weight ``k`` on an
    image equals repeating the image ``k`` times, 0 drops it, and
    ``reduction`` has no effect. With ``per_image=True`` every term is
    computed per image (cross-entropy and focal as the mean over the image's
    valid pixels), ``call`` returns ``(B,)`` and Keras applies
    ``sample_weight`` and the reduction; an image without valid pixels
    contributes 0. Pixels labelled ``ignore_index`` count nowhere.

    Static shapes are checked on every call. Values are checked on the first
    eager call of an instance (every eager call with the environment variable
    ``DL_LOSSES_VALIDATE=always``): class ids in ``[0, num_classes)`` (or
    equal to ``ignore_index``), one-hot labels in [0, 1], and with
    ``from_logits=False`` probabilities in [0, 1]; inside a compiled ``fit``
    only the static shapes are checked. A NaN in ``y_pred`` gives a NaN loss.

    Reference:
        Milletari et al. (2016), V-Net (Dice); Salehi et al. (2017), Tversky
        loss; Abraham & Khan (2019), A Novel Focal Tversky Loss; Lin et al.
        (2017), Focal Loss for Dense Object Detection; Berman, Rannen Triki &
        Blaschko (2018), The Lovasz-Softmax Loss, CVPR.
        https://arxiv.org/abs/1705.08790

    Args:
        loss_name: One of ``LOSS_NAMES``: ``"cross_entropy"``, ``"dice"``,
            ``"focal"``, ``"tversky"``, ``"focal_tversky"``, ``"lovasz"``,
            ``"lovasz_hinge"``, ``"dice_ce"``, ``"focal_dice"``,
            ``"focal_tversky_ce"``, or of ``GENERALIZED_DICE_NAMES``:
            ``"generalized_dice"``, ``"generalized_dice_focal"``.
        config: A ``SegmentationLossConfig``, or its ``get_config()`` dict.
        reduction: Keras reduction of the per-image values with
            ``per_image=True``; no effect otherwise. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``loss_name + "_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = SegmentationLoss("dice", SegmentationLossConfig(num_classes=2))
    y_true = [[[0, 1], [1, 1]]]                    # class ids, (1, 2, 2)
    y_pred = [[[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]]]
    loss(y_true, y_pred)  # ~0.0: a perfect prediction
    ```
    """

    def __init__(
        self,
        loss_name: str,
        config: SegmentationLossConfig | dict[str, Any],
        reduction: str = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        validation.check_choice(
            "SegmentationLoss", "loss_name", loss_name, LOSS_NAMES + GENERALIZED_DICE_NAMES
        )
        if isinstance(config, dict):
            config = SegmentationLossConfig.from_config(config)
        if not isinstance(config, SegmentationLossConfig):
            raise ValueError(
                "SegmentationLoss: `config` must be a SegmentationLossConfig or its "
                f"get_config() dict; got config={config!r}."
            )
        _check_name_fits_config(loss_name, config)
        super().__init__(name=name or f"{loss_name}_loss", reduction=reduction, dtype=dtype)
        self.loss_name = loss_name
        self.config = config

    def is_per_sample(self) -> bool:
        return self.config.per_image

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        config, per_image = self.config, self.config.per_image
        y_true, y_pred = keras.ops.convert_to_tensor(y_true), keras.ops.convert_to_tensor(y_pred)
        if not keras.backend.is_float_dtype(keras.backend.standardize_dtype(y_pred.dtype)):
            # Integer predictions (a hard one-hot map) are read as probabilities.
            y_pred = keras.ops.cast(y_pred, self.compute_dtype)
        if self.loss_name == "lovasz_hinge":
            binary = _segmentation_inputs.prepare_binary(config, y_true, y_pred, sample_weight)
            return _lovasz.lovasz_hinge(binary, per_image)
        inputs = _segmentation_inputs.prepare_multiclass(config, y_true, y_pred, sample_weight)
        if self.loss_name == "lovasz":
            class_weights = _segmentation_terms.class_weight_vector(config)
            return _lovasz.lovasz_softmax(inputs, class_weights, per_image)
        if self.loss_name in _COMBINED_TERMS:
            region_name, pixel_name = _COMBINED_TERMS[self.loss_name]
            region = _REGION_TERMS[region_name](inputs, config, per_image)
            pixel = _PIXEL_TERMS[pixel_name](inputs, config, per_image)
            return config.dice_weight * region + config.ce_weight * pixel
        term = _REGION_TERMS.get(self.loss_name) or _PIXEL_TERMS[self.loss_name]
        return term(inputs, config, per_image)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "loss_name": self.loss_name,
            "config": self.config.get_config(),
        }


def create_segmentation_loss_function(
    loss_name: str, config: SegmentationLossConfig | dict[str, Any]
) -> SegmentationLoss:
    """Returns the segmentation loss ``loss_name`` configured by ``config``.

    A factory over ``SegmentationLoss``; see that class for the formulas, the
    shapes and the ``sample_weight`` semantics. The result is a Keras loss
    that saves and reloads with a model.

    Args:
        loss_name: One of ``"cross_entropy"``, ``"dice"``, ``"focal"``,
            ``"tversky"``, ``"focal_tversky"``, ``"lovasz"``,
            ``"lovasz_hinge"``, ``"dice_ce"``, ``"focal_dice"``,
            ``"focal_tversky_ce"``, ``"generalized_dice"``,
            ``"generalized_dice_focal"``; any other name raises
            ``ValueError`` listing these.
        config: A ``SegmentationLossConfig`` (or its ``get_config()`` dict).

    Returns:
        A ``SegmentationLoss``.

    Example:

    ```python
    loss = create_segmentation_loss_function(
        "focal_tversky", config=SegmentationLossConfig(num_classes=19, focal_gamma=2.5)
    )
    model.compile(optimizer="adam", loss=loss)
    ```
    """
    return SegmentationLoss(loss_name, config)


def _check_name_fits_config(loss_name: str, config: SegmentationLossConfig) -> None:
    if loss_name == "lovasz_hinge":
        if config.num_classes not in (1, 2):
            raise ValueError(
                "SegmentationLoss: 'lovasz_hinge' is binary and needs num_classes 1 or 2; "
                f"got num_classes={config.num_classes}."
            )
        if config.class_weights is not None:
            raise ValueError(
                "SegmentationLoss: 'lovasz_hinge' has no classes to weight; got "
                f"class_weights={list(config.class_weights)}."
            )
    elif config.num_classes < 2:
        raise ValueError(
            f"SegmentationLoss: {loss_name!r} needs num_classes >= 2 (softmax over the "
            f"channels); got num_classes={config.num_classes}."
        )
