"""Region and pixel terms of the segmentation losses on prepared ``(B, P, C)`` inputs.

Each term takes :class:`MultiClassInputs` (``weights`` 0 on ignored pixels, or
None when every pixel weighs 1),
the config, and ``per_image``; it returns a scalar pooled over the batch, or
one value per image ``(B,)`` when ``per_image`` is True.
"""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops
from dl_techniques.losses.vision._segmentation_inputs import MultiClassInputs
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig


def class_weight_vector(config: SegmentationLossConfig) -> list[float]:
    """The weight of each class in the class averages: 0 for a void channel."""
    weights = list(config.class_weights or (1.0,) * config.num_classes)
    if config.ignore_index is not None and 0 <= config.ignore_index < config.num_classes:
        weights[config.ignore_index] = 0.0
    return weights


def soft_sums(inputs: MultiClassInputs, per_image: bool) -> tuple[Any, Any, Any]:
    """Weighted ``(TP, sum p, sum y)`` per class: ``(C,)``, or ``(B, C)`` per image.

    ``FP = sum p - TP`` and ``FN = sum y - TP``: three sums instead of three
    products of the full tensors, taken by core's
    :func:`~dl_techniques.losses.core.ops.overlap_sums` (native on torch and
    TensorFlow).
    """
    return ops.overlap_sums(
        inputs.labels, inputs.probabilities, inputs.weights, axis=1 if per_image else (0, 1)
    )


def dice_loss(inputs: MultiClassInputs, config: SegmentationLossConfig, per_image: bool) -> Any:
    """``mean_c 1 - (2 TP + s) / (sum p + sum y + s)``, class-weighted."""
    tp, predicted, actual = soft_sums(inputs, per_image)
    score = _smoothed_ratio(2.0 * tp, predicted + actual, config.smooth)
    return class_mean(1.0 - score, config)


def tversky_index(inputs: MultiClassInputs, config: SegmentationLossConfig, per_image: bool) -> Any:
    """``TI = (TP + s) / (TP + alpha FP + beta FN + s)`` per class."""
    tp, predicted, actual = soft_sums(inputs, per_image)
    alpha, beta = config.tversky_alpha, config.tversky_beta
    # TP + alpha (sum p - TP) + beta (sum y - TP); rounding can leave FP or FN
    # a few ulps below 0, which the ratio absorbs.
    denominator = (1.0 - alpha - beta) * tp + alpha * predicted + beta * actual
    return _smoothed_ratio(tp, denominator, config.smooth)


def tversky_loss(inputs: MultiClassInputs, config: SegmentationLossConfig, per_image: bool) -> Any:
    """``mean_c 1 - TI_c``, class-weighted."""
    return class_mean(1.0 - tversky_index(inputs, config, per_image), config)


def focal_tversky_loss(
    inputs: MultiClassInputs, config: SegmentationLossConfig, per_image: bool
) -> Any:
    """``mean_c (1 - TI_c)^gamma``, class-weighted."""
    distance = 1.0 - tversky_index(inputs, config, per_image)
    return class_mean(safe_power(distance, config.focal_tversky_gamma), config)


def cross_entropy_loss(
    inputs: MultiClassInputs, config: SegmentationLossConfig, per_image: bool
) -> Any:
    """``-sum_c y_c log p_c``, averaged over valid pixels with their class weights."""
    per_pixel = -keras.ops.sum(inputs.labels * inputs.log_probabilities, axis=-1)
    return pixel_mean(per_pixel, inputs, config, per_image)


def focal_loss(inputs: MultiClassInputs, config: SegmentationLossConfig, per_image: bool) -> Any:
    """``-alpha sum_c y_c (1 - p_c)^gamma log p_c``, averaged like cross-entropy."""
    modulation = safe_power(1.0 - inputs.probabilities, config.focal_gamma)
    per_pixel = -config.focal_alpha * keras.ops.sum(
        inputs.labels * modulation * inputs.log_probabilities, axis=-1
    )
    return pixel_mean(per_pixel, inputs, config, per_image)


def class_mean(per_class: Any, config: SegmentationLossConfig) -> Any:
    """Mean over the last (class) axis, weighted by :func:`class_weight_vector`."""
    weights = class_weight_vector(config)
    if all(weight == 1.0 for weight in weights):
        return keras.ops.mean(per_class, axis=-1)
    weight_tensor = keras.ops.convert_to_tensor(weights, dtype=per_class.dtype)
    return keras.ops.sum(per_class * weight_tensor, axis=-1) / sum(weights)


def pixel_mean(
    per_pixel: Any, inputs: MultiClassInputs, config: SegmentationLossConfig, per_image: bool
) -> Any:
    """Weighted mean of a ``(B, P)`` term over valid pixels, 0 where none are."""
    weights = inputs.weights
    axes = 1 if per_image else (0, 1)
    if config.class_weights is not None:
        class_weights = keras.ops.convert_to_tensor(
            class_weight_vector(config), dtype=per_pixel.dtype
        )
        label_weights = keras.ops.sum(inputs.labels * class_weights, axis=-1)
        weights = label_weights if weights is None else weights * label_weights
    elif weights is None:
        return ops.mean(per_pixel, axes)
    total = keras.ops.sum(weights, axis=axes)
    weighted = keras.ops.sum(weights * per_pixel, axis=axes)
    return numerics.safe_divide(weighted, total, empty_value=0.0)


def safe_power(base: Any, exponent: float) -> Any:
    """``max(base, 0) ** exponent`` with a finite gradient at a base of 0; NaN stays NaN.

    An exponent below 1 has an infinite slope at 0, and ``0 ** 0`` a NaN one;
    the base is replaced by 1 where it is 0, so the gradient there is 0.
    """
    # NaN > 0 is False: without the isnan test a NaN base would become 0 ** exponent.
    not_a_number = keras.ops.isnan(base)
    positive = base > 0.0
    safe_base = keras.ops.where(positive, base, 1.0)
    powered = keras.ops.where(positive, keras.ops.power(safe_base, exponent), 0.0**exponent)
    return keras.ops.where(not_a_number, base, powered)


def _smoothed_ratio(numerator, denominator, smooth):
    if smooth > 0:
        # Sums of non-negative terms plus smooth: the denominator is positive.
        return (numerator + smooth) / (denominator + smooth)
    # With smooth = 0 an absent, unpredicted class would give 0 / 0; it is a
    # perfect match, so its ratio is 1.
    return numerics.safe_divide(numerator, denominator, empty_value=1.0)


GENERALIZED_DICE_WEIGHTS = ("square", "simple", "uniform")


def generalized_dice_loss(
    inputs: MultiClassInputs,
    config: SegmentationLossConfig,
    per_image: bool,
    weight_type: str = "square",
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
) -> Any:
    """``1 - (2 sum_c w_c TP_c + s_nr) / (sum_c w_c (sum p_c + sum y_c) + s_dr)`` (Sudre et al.).

    ``w_c`` is ``1 / (sum y_c)^2`` ("square"), ``1 / sum y_c`` ("simple") or
    1 ("uniform"); a class absent from the pooled target (its weight
    infinite) takes the largest weight of the present classes, as MONAI's
    ``GeneralizedDiceLoss`` does (0 when no class is present). The weights
    are then multiplied by :func:`class_weight_vector` (0 on a void channel).
    """
    tp, predicted, actual = soft_sums(inputs, per_image)
    if weight_type == "uniform":
        weights = keras.ops.ones_like(actual)
    else:
        present = actual > 0.0
        safe_actual = keras.ops.where(present, actual, 1.0)
        inverse = 1.0 / (safe_actual * safe_actual if weight_type == "square" else safe_actual)
        inverse = keras.ops.where(present, inverse, 0.0)
        largest = keras.ops.max(inverse, axis=-1, keepdims=True)
        weights = keras.ops.where(present, inverse, largest)
    channel_weights = class_weight_vector(config)
    if any(weight != 1.0 for weight in channel_weights):
        weights = weights * keras.ops.convert_to_tensor(channel_weights, dtype=weights.dtype)
    weights = keras.ops.stop_gradient(weights)
    numerator = 2.0 * keras.ops.sum(weights * tp, axis=-1) + smooth_nr
    denominator = keras.ops.sum(weights * (predicted + actual), axis=-1) + smooth_dr
    return 1.0 - numerator / denominator


def generalized_dice_term(
    inputs: MultiClassInputs, config: SegmentationLossConfig, per_image: bool
) -> Any:
    """:func:`generalized_dice_loss` with square weights and ``config.smooth`` as both smooths."""
    return generalized_dice_loss(inputs, config, per_image, "square", config.smooth, config.smooth)
