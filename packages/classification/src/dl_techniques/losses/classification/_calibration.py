"""Input handling and statistics shared by the calibration losses and metrics.

Every calibration object sees its inputs as a ``(B, C)`` pair: binary inputs
``(B,)`` or ``(B, 1)`` become one column, one-hot multi-class inputs keep their
C columns. The Spiegelhalter statistic of each column is one-vs-rest.
"""

import math
import numbers
from typing import Any

import keras

from dl_techniques.losses.core import numerics, validation

SPIEGELHALTER_EPSILON = 1e-7
"""The constant under the square root of the Spiegelhalter denominator."""


def check_bool(owner, argument, value):
    """Raises ``ValueError`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: `{argument}` must be a bool; got {argument}={value!r}.")


def check_alpha(owner, alpha):
    """Raises ``ValueError`` unless ``alpha`` is a real number in [0, 1]."""
    is_real = isinstance(alpha, numbers.Real) and not isinstance(alpha, bool)
    if not (is_real and math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"{owner}: `alpha` must be a number in [0, 1]; got alpha={alpha!r}.")


def check_num_classes(owner, num_classes):
    """Raises ``ValueError`` unless ``num_classes`` is a positive int."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(
            f"{owner}: `num_classes` must be a positive int (1 for binary); "
            f"got num_classes={num_classes!r}."
        )


def static_shape(tensor):
    """Returns the static shape as a tuple, ``None`` where unknown."""
    return tuple(None if dim is None else int(dim) for dim in tensor.shape)


def as_class_columns(owner, y_true, y_pred):
    """Returns ``(y_true, y_pred)`` as float ``(B, C)`` tensors, C = 1 for binary.

    Half-precision inputs are computed in float32. ``(B,)`` and ``(B, 1)`` are
    interchangeable; anything else must match exactly.

    Raises:
        ValueError: For a rank other than 1 or 2, an unknown class axis, or
            shapes that cannot match.
    """
    y_pred = numerics.upcast_half(y_pred)
    y_true = numerics.as_float(keras.ops.convert_to_tensor(y_true), y_pred)
    true_shape, pred_shape = static_shape(y_true), static_shape(y_pred)
    if len(pred_shape) not in (1, 2) or len(true_shape) not in (1, 2):
        raise ValueError(
            f"{owner}: `y_true` and `y_pred` must have shape (batch,) or (batch, 1) "
            f"for binary or (batch, classes) for one-hot multi-class; got y_true "
            f"shape {true_shape} and y_pred shape {pred_shape}."
        )
    if len(pred_shape) == 1:
        y_pred = keras.ops.expand_dims(y_pred, axis=-1)
    if len(true_shape) == 1:
        y_true = keras.ops.expand_dims(y_true, axis=-1)
    columns_true, columns_pred = static_shape(y_true), static_shape(y_pred)
    matches = all(
        a is None or b is None or a == b for a, b in zip(columns_true, columns_pred, strict=True)
    )
    if not matches:
        raise ValueError(
            f"{owner}: `y_true` and `y_pred` must have the same shape ((batch,) and "
            f"(batch, 1) count as the same); got y_true shape {true_shape} and "
            f"y_pred shape {pred_shape}."
        )
    if columns_pred[-1] is None:
        raise ValueError(
            f"{owner}: the class axis of `y_pred` must have a known size; got y_pred "
            f"shape {pred_shape}."
        )
    return y_true, y_pred


def probabilities(y_pred, from_logits):
    """Returns probabilities from ``(B, C)`` predictions.

    Logits go through a sigmoid for a single column and a softmax over the
    class axis for several.
    """
    if not from_logits:
        return y_pred
    if y_pred.shape[-1] == 1:
        return keras.ops.sigmoid(y_pred)
    return keras.ops.softmax(y_pred, axis=-1)


def check_value_ranges(owner: str, y_true: Any, y_pred: Any, from_logits: bool) -> None:
    """Raises ``ValueError`` for targets, or probabilities, outside [0, 1].

    Targets may be soft (any value in [0, 1]); predictions are checked only
    when ``from_logits=False``. These are value checks of
    ``dl_techniques.losses.core.validation``: they run on eager calls (the
    first one of a loss or metric instance, every one with
    ``DL_LOSSES_VALIDATE=always``) and are skipped under ``tf.function``,
    ``jax.jit`` or ``torch.compile``. NaN is not out of range: it propagates.
    """
    validation.check_in_range(owner, "y_true", y_true, 0.0, 1.0)
    if not from_logits:
        validation.check_probabilities(owner, "y_pred", y_pred)


def column_weights(owner, sample_weight, like):
    """Returns ``sample_weight`` as a ``(B, 1)`` tensor in the dtype of ``like``.

    A ``(B,)`` weight becomes a column so that it scales rows of ``(B, C)``
    values instead of broadcasting to ``(B, B)``. ``None`` gives ones.

    Raises:
        ValueError: For a weight that is neither a scalar, ``(B,)`` nor
            ``(B, 1)``.
    """
    batch = keras.ops.shape(like)[0]
    if sample_weight is None:
        return keras.ops.ones((batch, 1), dtype=like.dtype)
    weights = numerics.as_float(keras.ops.convert_to_tensor(sample_weight), like)
    weight_shape, batch_size = static_shape(weights), static_shape(like)[0]
    valid = len(weight_shape) == 0 or (
        len(weight_shape) in (1, 2)
        and (weight_shape[0] is None or batch_size is None or weight_shape[0] == batch_size)
        and (len(weight_shape) == 1 or weight_shape[1] in (1, None))
    )
    if not valid:
        raise ValueError(
            f"{owner}: `sample_weight` must have shape (batch,) or (batch, 1); got "
            f"sample_weight shape {weight_shape} for predictions of shape "
            f"{static_shape(like)}."
        )
    return keras.ops.broadcast_to(keras.ops.reshape(weights, (-1, 1)), (batch, 1))


def brier_per_sample(y_true, probs):
    """Returns ``sum_c (y_c - p_c)^2`` per row of ``(B, C)`` inputs, shape ``(B,)``."""
    return keras.ops.sum(keras.ops.square(y_true - probs), axis=-1)


def spiegelhalter_sums(y_true, probs, weights):
    """Returns the weighted per-class numerator and variance sums, each ``(C,)``.

    ```
    numerator_c = sum_i w_i (y_ic - p_ic) (1 - 2 p_ic)
    variance_c  = sum_i w_i (1 - 2 p_ic)^2 p_ic (1 - p_ic)
    ```
    """
    slope = 1.0 - 2.0 * probs
    # p (1 - p) dips below 0 only for probabilities outside [0, 1], which the
    # value check cannot see under jit; clamping keeps the square root real.
    spread = keras.ops.maximum(probs * (1.0 - probs), 0.0)
    numerator = keras.ops.sum(weights * (y_true - probs) * slope, axis=0)
    variance = keras.ops.sum(weights * keras.ops.square(slope) * spread, axis=0)
    return numerator, variance


def z_statistic(numerator, variance):
    """Returns Spiegelhalter's ``Z = numerator / sqrt(variance + eps)``."""
    return numerator / keras.ops.sqrt(variance + SPIEGELHALTER_EPSILON)


def z_loss(numerator, variance, total_weight, use_squared):
    """Returns the class mean of ``Z^2 / N`` (or ``|Z| / sqrt(N)``); 0 when N = 0."""
    z = z_statistic(numerator, variance)
    has_weight = total_weight > 0.0
    safe_total = keras.ops.where(has_weight, total_weight, keras.ops.ones_like(total_weight))
    if use_squared:
        per_class = keras.ops.square(z) / safe_total
    else:
        # Z has a finite denominator everywhere, so |Z| has a bounded
        # subgradient at Z = 0 on every backend (unlike sqrt(Z^2)).
        per_class = keras.ops.abs(z) / keras.ops.sqrt(safe_total)
    value = keras.ops.mean(per_class)
    return keras.ops.where(has_weight, value, keras.ops.zeros_like(value))


def weighted_mean(values, weights, total_weight):
    """Returns ``sum_i w_i v_i / sum_i w_i`` for ``(B,)`` values; 0 when the sum is 0."""
    has_weight = total_weight > 0.0
    safe_total = keras.ops.where(has_weight, total_weight, keras.ops.ones_like(total_weight))
    mean = keras.ops.sum(keras.ops.squeeze(weights, axis=-1) * values) / safe_total
    return keras.ops.where(has_weight, mean, keras.ops.zeros_like(mean))


def batch_level_call(loss, y_true, y_pred, sample_weight, compute):
    """Runs a batch-level loss the way ``keras.losses.Loss.__call__`` would.

    Inputs are converted to the loss dtype as Keras does; ``compute(y_true,
    y_pred, weights)`` receives the ``(B, C)`` pair and ``(B, 1)`` weights and
    returns one scalar, which comes back in the loss dtype. Keras' own
    weighting and reduction are not applied: the weights act inside the
    statistic.
    """
    owner = type(loss).__name__
    with keras.name_scope(loss.name):
        y_pred = keras.ops.convert_to_tensor(y_pred, dtype=loss.dtype)
        y_true = keras.ops.convert_to_tensor(y_true, dtype=loss.dtype)
        y_true, y_pred = as_class_columns(owner, y_true, y_pred)
        check_value_ranges(owner, y_true, y_pred, loss.from_logits)
        weights = column_weights(owner, sample_weight, y_pred)
        return keras.ops.cast(compute(y_true, y_pred, weights), loss.dtype)
