"""Input handling and statistics shared by the calibration losses and metrics.

Every calibration object sees its inputs as a ``(B, C)`` pair: binary inputs
``(B,)`` or ``(B, 1)`` become one column, one-hot multi-class inputs keep their
C columns. The Spiegelhalter statistic of each column is one-vs-rest.
"""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops, shapes, validation

SPIEGELHALTER_EPSILON = 1e-7
"""The constant under the square root of the Spiegelhalter denominator."""


def as_class_columns(owner: str, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Returns ``(y_true, y_pred)`` as float ``(B, C)`` tensors, C = 1 for binary.

    Half-precision inputs are computed in float32. ``(B,)`` and ``(B, 1)`` are
    interchangeable; anything else must match exactly.

    Raises:
        ValueError: For a rank other than 1 or 2, an unknown class axis, or
            shapes that cannot match.
    """
    y_pred = numerics.upcast_half(y_pred)
    y_true = numerics.as_float(keras.ops.convert_to_tensor(y_true), y_pred)
    true_shape, pred_shape = shapes.static_shape(y_true), shapes.static_shape(y_pred)
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
    columns_pred = shapes.static_shape(y_pred)
    if not shapes.shapes_match(shapes.static_shape(y_true), columns_pred):
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


def probabilities(y_pred: Any, from_logits: bool) -> Any:
    """Returns probabilities from ``(B, C)`` predictions.

    Logits go through a sigmoid for a single column and a softmax over the
    class axis for several.
    """
    if not from_logits:
        return y_pred
    if y_pred.shape[-1] == 1:
        return keras.ops.sigmoid(y_pred)
    return ops.softmax(y_pred, axis=-1)


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


def column_weights(owner: str, sample_weight: Any | None, like: Any) -> Any:
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
    weight_shape, batch_size = shapes.static_shape(weights), shapes.static_shape(like)[0]
    valid = len(weight_shape) == 0 or (
        len(weight_shape) in (1, 2)
        and not shapes.sizes_differ(weight_shape[0], batch_size)
        and (len(weight_shape) == 1 or weight_shape[1] in (1, None))
    )
    if not valid:
        raise ValueError(
            f"{owner}: `sample_weight` must have shape (batch,) or (batch, 1); got "
            f"sample_weight shape {weight_shape} for predictions of shape "
            f"{shapes.static_shape(like)}."
        )
    return keras.ops.broadcast_to(keras.ops.reshape(weights, (-1, 1)), (batch, 1))


def batch_columns(
    owner: str, y_true: Any, y_pred: Any, sample_weight: Any | None, from_logits: bool
) -> tuple[Any, Any, Any]:
    """Returns a batch-level loss's ``(targets, probabilities, weights)``.

    Targets and probabilities are ``(B, C)``, weights ``(B, 1)`` (ones without
    ``sample_weight``), after the shape and value checks of
    :func:`as_class_columns`, :func:`check_value_ranges` and
    :func:`column_weights`.
    """
    y_true, y_pred = as_class_columns(owner, y_true, y_pred)
    check_value_ranges(owner, y_true, y_pred, from_logits)
    weights = column_weights(owner, sample_weight, y_pred)
    return y_true, probabilities(y_pred, from_logits), weights


def brier_per_sample(y_true: Any, probs: Any) -> Any:
    """Returns ``sum_c (y_c - p_c)^2`` per row of ``(B, C)`` inputs, shape ``(B,)``."""
    return keras.ops.sum(keras.ops.square(y_true - probs), axis=-1)


def spiegelhalter_sums(y_true: Any, probs: Any, weights: Any) -> tuple[Any, Any]:
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


def z_statistic(numerator: Any, variance: Any) -> Any:
    """Returns Spiegelhalter's ``Z = numerator / sqrt(variance + eps)``."""
    return numerator / keras.ops.sqrt(variance + SPIEGELHALTER_EPSILON)


def z_loss(numerator: Any, variance: Any, total_weight: Any, use_squared: bool) -> Any:
    """Returns the class mean of ``Z^2 / N`` (or ``|Z| / sqrt(N)``); 0 when N = 0."""
    z = z_statistic(numerator, variance)
    if use_squared:
        return keras.ops.mean(numerics.safe_divide(keras.ops.square(z), total_weight))
    # sqrt has an infinite derivative at 0, so an empty batch takes the root of
    # 1 and safe_divide's 0 then stands for the empty ratio. Z has a finite
    # denominator everywhere, so |Z| has a bounded subgradient at Z = 0 on
    # every backend (unlike sqrt(Z^2)).
    has_weight = total_weight > 0.0
    root = keras.ops.sqrt(keras.ops.where(has_weight, total_weight, 1.0))
    root = keras.ops.where(has_weight, root, 0.0)
    return keras.ops.mean(numerics.safe_divide(keras.ops.abs(z), root))
