"""Shape checks and the common form the segmentation terms compute on.

Every multi-class loss sees its inputs flattened to ``(B, P, C)`` (P pixels)
with a weight per pixel that is 0 for ignored pixels and carries the
``sample_weight`` of a batch-pooled loss (None when every pixel weighs 1); the
binary Lovasz hinge sees logits and 0/1 labels as ``(B, P)``.
"""

import collections
import functools
from collections.abc import Callable
from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops, validation
from dl_techniques.losses.core.shapes import shapes_match, static_shape
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig

# Where probabilities are given, log p is taken of p clipped to this floor,
# as Keras' own categorical cross-entropy does.
PROBABILITY_FLOOR = 1e-7

LOSS_LABEL = "SegmentationLoss"


class MultiClassInputs:
    """Probabilities, labels and pixel weights of a multi-class loss, flattened.

    Attributes:
        probabilities: ``(B, P, C)`` class probabilities.
        labels: ``(B, P, C)`` one-hot (or soft) labels.
        weights: ``(B, P)`` pixel weights, or None when every pixel weighs 1
            (no ``ignore_index`` and no ``sample_weight``).
    """

    def __init__(
        self,
        probabilities: Any,
        labels: Any,
        weights: Any | None,
        log_probabilities: Callable[[], Any],
    ) -> None:
        self.probabilities = probabilities
        self.labels = labels
        self.weights = weights
        self._log_probabilities = log_probabilities

    @functools.cached_property
    def log_probabilities(self) -> Any:
        """``(B, P, C)`` log-probabilities, computed on first use (the region terms need none)."""
        return self._log_probabilities()


BinaryInputs = collections.namedtuple("BinaryInputs", ["logits", "labels", "weights"])


def prepare_multiclass(
    config: SegmentationLossConfig, y_true: Any, y_pred: Any, sample_weight: Any | None
) -> MultiClassInputs:
    """Checks the inputs and returns :class:`MultiClassInputs`, flattened to ``(B, P, C)``.

    ``y_pred`` is a floating tensor in the dtype of the computation.
    ``sample_weight`` (None for a per-image loss, whose weights Keras applies)
    is a scalar, ``(B,)``, ``(B, 1)`` or one weight per pixel.
    """
    pred_shape, true_shape = static_shape(y_pred), static_shape(y_true)
    classes = config.num_classes
    if len(pred_shape) < 3:
        raise ValueError(
            f"{LOSS_LABEL}: `y_pred` must have shape (batch, height, width, classes); "
            f"got y_pred shape {pred_shape}."
        )
    if pred_shape[-1] is not None and pred_shape[-1] != classes:
        raise ValueError(
            f"{LOSS_LABEL}: `y_pred` has {pred_shape[-1]} channels but the config has "
            f"num_classes={classes}; got y_pred shape {pred_shape}."
        )
    spatial = pred_shape[:-1]
    if len(true_shape) == len(pred_shape) and true_shape[-1] == classes and classes > 1:
        sparse = False
    elif len(true_shape) == len(spatial) or (
        len(true_shape) == len(pred_shape) and true_shape[-1] == 1
    ):
        sparse = True
    else:
        sparse = None
    if sparse is None or not shapes_match(true_shape[: len(spatial)], spatial):
        raise ValueError(
            f"{LOSS_LABEL}: `y_true` must hold one-hot labels shaped like y_pred or class "
            f"ids of shape {spatial} (optionally with a trailing 1); got y_true shape "
            f"{true_shape} and y_pred shape {pred_shape}."
        )
    if sparse:
        if len(true_shape) == len(pred_shape):
            y_true = keras.ops.squeeze(y_true, axis=-1)
        labels, valid = _sparse_labels(config, y_true, y_pred.dtype)
    else:
        labels, valid = _one_hot_labels(config, y_true, y_pred.dtype)

    if config.from_logits:
        probabilities = ops.softmax(y_pred, axis=-1)

        def log_probabilities():
            return _flatten(keras.ops.log_softmax(y_pred, axis=-1), classes)

    else:
        validation.check_probabilities(LOSS_LABEL, "y_pred", y_pred)
        probabilities = y_pred

        def log_probabilities():
            floored = keras.ops.clip(y_pred, PROBABILITY_FLOOR, float("inf"))
            return _flatten(keras.ops.log(floored), classes)

    weights = valid
    if sample_weight is not None:
        pixel_weights = _pixel_weights(sample_weight, probabilities[..., 0])
        weights = pixel_weights if valid is None else valid * pixel_weights
    return MultiClassInputs(
        probabilities=_flatten(probabilities, classes),
        labels=_flatten(labels, classes),
        weights=None if weights is None else _flatten(weights),
        log_probabilities=log_probabilities,
    )


def prepare_binary(
    config: SegmentationLossConfig, y_true: Any, y_pred: Any, sample_weight: Any | None
) -> BinaryInputs:
    """Checks the inputs of the Lovasz hinge and returns :class:`BinaryInputs` ``(B, P)``.

    ``y_pred`` is a floating tensor holding one logit per pixel, ``(B, H, W)``
    or ``(B, H, W, 1)``, or a probability that is turned into its logit when
    ``from_logits`` is False; labels are 0/1 or ``ignore_index``.
    """
    given_pred = y_pred
    pred_shape = static_shape(y_pred)
    if len(pred_shape) == 4 and pred_shape[-1] == 1:
        y_pred = keras.ops.squeeze(y_pred, axis=-1)
    elif len(pred_shape) != 3:
        raise ValueError(
            f"{LOSS_LABEL}: 'lovasz_hinge' takes one logit per pixel, `y_pred` of shape "
            f"(batch, height, width) or (batch, height, width, 1); got y_pred shape "
            f"{pred_shape}."
        )
    true_shape = static_shape(y_true)
    if len(true_shape) == 4 and true_shape[-1] == 1:
        y_true = keras.ops.squeeze(y_true, axis=-1)
    if not shapes_match(static_shape(y_true), static_shape(y_pred)):
        raise ValueError(
            f"{LOSS_LABEL}: `y_true` of 'lovasz_hinge' must hold one 0/1 label per pixel "
            f"of y_pred; got y_true shape {true_shape} and y_pred shape {pred_shape}."
        )
    if not config.from_logits:
        validation.check_probabilities(LOSS_LABEL, "y_pred", given_pred)
    ids = numerics.as_float(y_true, y_pred)
    validation.check_integers(LOSS_LABEL, "y_true", ids, 0, 2, ignore=config.ignore_index)
    valid = _valid_ids(config, ids)
    labels = keras.ops.cast(keras.ops.equal(ids, 1.0), y_pred.dtype) * valid
    logits = y_pred
    if not config.from_logits:
        clipped = keras.ops.clip(y_pred, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
        logits = keras.ops.log(clipped) - keras.ops.log1p(-clipped)
    weights = valid
    if sample_weight is not None:
        weights = valid * _pixel_weights(sample_weight, valid)
    return BinaryInputs(_flatten(logits), _flatten(labels), _flatten(weights))


def _sparse_labels(config, y_true, dtype):
    """One-hot labels and the pixel validity (None without ``ignore_index``)."""
    ids = keras.ops.cast(y_true, dtype)
    validation.check_integers(
        LOSS_LABEL, "y_true", ids, 0, config.num_classes, ignore=config.ignore_index
    )
    if config.ignore_index is None:
        labels = keras.ops.one_hot(keras.ops.cast(ids, "int32"), config.num_classes, dtype=dtype)
        return labels, None
    valid = _valid_ids(config, ids)
    # Ignored ids are replaced before one_hot: torch's one_hot rejects
    # negative ids, and the pixel's weight is 0 anyway.
    safe_ids = keras.ops.where(valid > 0, ids, 0.0)
    labels = keras.ops.one_hot(keras.ops.cast(safe_ids, "int32"), config.num_classes, dtype=dtype)
    return labels, valid


def _one_hot_labels(config, y_true, dtype):
    labels = keras.ops.cast(y_true, dtype)
    validation.check_in_range(
        LOSS_LABEL, "y_true", labels, 0.0, 1.0, hint="They are read as one-hot labels."
    )
    ignore = config.ignore_index
    if ignore is None:
        valid = None
    elif 0 <= ignore < config.num_classes:
        valid = keras.ops.cast(labels[..., ignore] < 0.5, dtype)
    else:
        valid = keras.ops.cast(keras.ops.sum(labels, axis=-1) > 0.0, dtype)
    return labels, valid


def _valid_ids(config, ids):
    if config.ignore_index is None:
        return keras.ops.ones_like(ids)
    return keras.ops.cast(keras.ops.not_equal(ids, float(config.ignore_index)), ids.dtype)


def _pixel_weights(sample_weight, pixels):
    """``sample_weight`` broadcast to the shape of ``pixels``, in its dtype."""
    weights = numerics.as_float(keras.ops.convert_to_tensor(sample_weight), pixels)
    weight_shape, pixel_shape = static_shape(weights), static_shape(pixels)
    if len(weight_shape) == len(pixel_shape) + 1 and weight_shape[-1] == 1:
        weights = keras.ops.squeeze(weights, axis=-1)
        weight_shape = weight_shape[:-1]
    if len(weight_shape) == 2 and weight_shape[1] == 1:
        weights = keras.ops.squeeze(weights, axis=-1)
        weight_shape = weight_shape[:1]
    if len(weight_shape) == 1 and shapes_match(weight_shape, pixel_shape[:1]):
        weights = keras.ops.reshape(weights, (-1,) + (1,) * (len(pixel_shape) - 1))
    elif len(weight_shape) != 0 and not shapes_match(weight_shape, pixel_shape):
        raise ValueError(
            f"{LOSS_LABEL}: `sample_weight` must be a scalar, have shape (batch,) or one "
            f"weight per pixel {pixel_shape}; got sample_weight shape {static_shape(weights)}."
        )
    return keras.ops.broadcast_to(weights, keras.ops.shape(pixels))


def _flatten(tensor, classes=None):
    batch = keras.ops.shape(tensor)[0]
    if classes is None:
        return keras.ops.reshape(tensor, (batch, -1))
    return keras.ops.reshape(tensor, (batch, -1, classes))
