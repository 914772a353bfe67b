"""Reductions over axes: the mean as a sum times ``1/n``, and the softmax expectation."""

from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch


def mean(values: Any, axis: int | tuple[int, ...]) -> Any:
    """The mean of ``values`` over ``axis``: ``sum(values, axis) * (1 / n)``.

    ``n``, the number of values averaged, is read from the static shape; with
    an unknown size on ``axis`` this is ``keras.ops.mean``. Same value as
    ``keras.ops.mean``, but the gradient of a sum is a broadcast view of the
    incoming gradient, where eager torch writes a full-size tensor of
    ``1/n`` for the gradient of a mean. On torch (``native_backends``) the
    sum and the product are torch calls.

    Args:
        values: A tensor.
        axis: An axis or a tuple of axes.

    Returns:
        ``values`` reduced over ``axis``.
    """
    return _dispatch("mean", mean_reference)(values, axis)


def mean_reference(values: Any, axis: int | tuple[int, ...]) -> Any:
    """:func:`mean` in ``keras.ops``."""
    values = keras.ops.convert_to_tensor(values)
    axes, count = averaged_axes(values, axis)
    if count is None:
        return keras.ops.mean(values, axis=axes)
    return keras.ops.sum(values, axis=axes) * (1.0 / count)


def averaged_axes(values: Any, axis: int | tuple[int, ...]) -> tuple[tuple[int, ...], int | None]:
    """``axis`` as a tuple, and the number of values a mean over it averages (None if unknown)."""
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    count = 1
    for index in axes:
        size = values.shape[index]
        if size is None:
            return axes, None
        count *= int(size)
    return axes, count


def softmax_expectation(logits: Any) -> Any:
    """The expected bin index under the softmax of ``logits`` over the last axis.

    ```
    E(x) = sum_j j softmax(x)_j = sum_j j exp(x_j) / sum_k exp(x_k),   j = 0 .. n - 1
    ```

    the soft-argmax that decodes a distribution over ``n`` bins into a
    distance (Li et al., 2020, Generalized Focal Loss; YOLOv8's DFL head).

    Args:
        logits: Float logits ``(..., n)``.

    Returns:
        ``(...)`` in the dtype of ``logits``.
    """
    return _dispatch("softmax_expectation", softmax_expectation_reference)(logits)


def softmax_expectation_reference(logits: Any) -> Any:
    """:func:`softmax_expectation` in ``keras.ops``: the softmax times the bin indices, summed."""
    probabilities = keras.ops.softmax(keras.ops.convert_to_tensor(logits), axis=-1)
    bins = keras.ops.arange(probabilities.shape[-1], dtype=probabilities.dtype)
    return keras.ops.sum(probabilities * bins, axis=-1)


def softmax(logits: Any, axis: int = -1) -> Any:
    """``keras.ops.softmax`` whose whole row is NaN where one of its logits is, on every backend.

    ```
    softmax(x)_i = exp(x_i - max_j x_j) / sum_j exp(x_j - max_j x_j)
    ```

    TensorFlow's eager kernel (``tf.nn.softmax``) gives 0, not NaN, beside a
    NaN logit, so a loss that then drops the NaN's class (a background
    channel) would turn NaN input into a finite value. On TensorFlow the
    row's maximum, NaN for such a row, replaces the row; jax, torch and XLA
    propagate the NaN themselves.

    Args:
        logits: Float logits.
        axis: The class axis.

    Returns:
        Probabilities of the shape and dtype of ``logits``.
    """
    logits = keras.ops.convert_to_tensor(logits)
    probabilities = keras.ops.softmax(logits, axis=axis)
    if keras.backend.backend() != "tensorflow":
        return probabilities
    row_max = keras.ops.max(logits, axis=axis, keepdims=True)
    return keras.ops.where(keras.ops.isnan(row_max), row_max, probabilities)
