"""The Huber loss, elementwise and as the mean over every element."""

from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch
from dl_techniques.losses.core.ops._reductions import mean


def huber(y_true: Any, y_pred: Any, delta: float) -> Any:
    """Elementwise Huber loss of the error ``e = y_pred - y_true``.

    ```
    huber(e) = 0.5 e^2                   if |e| <= delta
               delta (|e| - 0.5 delta)   otherwise
    ```

    (Huber, 1964, "Robust Estimation of a Location Parameter"); smooth-L1 with
    ``beta`` is ``huber(..., delta=beta) / beta``.

    Args:
        y_true: Targets.
        y_pred: Predictions, the shape of ``y_true``.
        delta: Positive float where the loss turns from quadratic to linear.

    Returns:
        A tensor of the shape and dtype of ``y_pred``.
    """
    return _dispatch("huber", huber_reference)(y_true, y_pred, delta)


def huber_reference(y_true: Any, y_pred: Any, delta: float) -> Any:
    """:func:`huber` in ``keras.ops``."""
    y_pred = keras.ops.convert_to_tensor(y_pred)
    y_true = keras.ops.cast(y_true, y_pred.dtype)
    abs_error = keras.ops.abs(y_pred - y_true)
    delta_tensor = keras.ops.cast(delta, y_pred.dtype)
    quadratic = 0.5 * keras.ops.square(abs_error)
    linear = delta_tensor * (abs_error - 0.5 * delta_tensor)
    return keras.ops.where(abs_error <= delta_tensor, quadratic, linear)


def huber_mean(y_true: Any, y_pred: Any, delta: float) -> Any:
    """The mean of :func:`huber` over every element, a scalar.

    One fused reduction where the backend has one: no elementwise tensor is
    written in the forward pass.

    Args:
        y_true: Targets.
        y_pred: Predictions, the shape of ``y_true``.
        delta: Positive float where the loss turns from quadratic to linear.

    Returns:
        A scalar of the dtype of ``y_pred``.
    """
    return _dispatch("huber_mean", huber_mean_reference)(y_true, y_pred, delta)


def huber_mean_reference(y_true: Any, y_pred: Any, delta: float) -> Any:
    """:func:`huber_mean` in ``keras.ops``."""
    values = huber_reference(y_true, y_pred, delta)
    return mean(values, axis=tuple(range(len(values.shape))))
