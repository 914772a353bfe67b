"""Dtype, shape checks and reductions shared by the forecasting losses."""

import math
import numbers

import keras

from dl_techniques.losses.core import numerics


def as_float_pair(y_true, y_pred):
    """Returns both tensors in the compute dtype: float32 for half inputs."""
    y_pred = numerics.upcast_half(y_pred)
    y_true = numerics.as_float(keras.ops.convert_to_tensor(y_true), y_pred)
    return y_true, y_pred


def static_shape(tensor):
    """Returns the static shape as a tuple, ``None`` where unknown."""
    return tuple(None if dim is None else int(dim) for dim in tensor.shape)


def shapes_match(first, second):
    """Whether two static shapes can be equal, treating ``None`` as a wildcard."""
    return len(first) == len(second) and all(
        a is None or b is None or a == b for a, b in zip(first, second, strict=True)
    )


def squeeze_trailing_unit_axis(y_true, y_pred):
    """Drops a trailing axis of length 1 from the tensor with one axis more.

    Keras' own losses accept ``(B, H)`` against ``(B, H, 1)``; so do these.
    """
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
        y_true = keras.ops.squeeze(y_true, axis=-1)
    elif pred_rank == true_rank + 1 and y_pred.shape[-1] == 1:
        y_pred = keras.ops.squeeze(y_pred, axis=-1)
    return y_true, y_pred


def check_min_rank(loss_name, argument, tensor, min_rank, layout):
    """Raises ``ValueError`` when ``tensor`` has fewer than ``min_rank`` axes."""
    if len(tensor.shape) < min_rank:
        raise ValueError(
            f"{loss_name}: `{argument}` must have shape {layout}; got shape {static_shape(tensor)}."
        )


def check_same_shape(loss_name, y_true, y_pred, true_argument="y_true"):
    """Raises ``ValueError`` when the two static shapes cannot be equal."""
    true_shape, pred_shape = static_shape(y_true), static_shape(y_pred)
    if not shapes_match(true_shape, pred_shape):
        raise ValueError(
            f"{loss_name}: `{true_argument}` and `y_pred` must have the same "
            f"shape; got {true_argument} shape {true_shape} and y_pred shape "
            f"{pred_shape}."
        )


def mean_over_non_batch_axes(values):
    """Reduces ``(B, ...)`` to ``(B,)``; a rank-1 tensor is already per sample."""
    rank = len(values.shape)
    if rank <= 1:
        return values
    return keras.ops.mean(values, axis=tuple(range(1, rank)))


def is_real_number(value):
    """Whether ``value`` is a finite real number (booleans excluded)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
