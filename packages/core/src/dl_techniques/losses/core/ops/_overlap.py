"""Per-class overlap sums of labels and predictions: the terms of Dice and Tversky.

With the check of the summed axes and the row blocks that the native kernels share.
"""

import math
from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch


def overlap_sums(
    labels: Any,
    predictions: Any,
    weights: Any | None = None,
    axis: int | tuple[int, ...] = -2,
) -> tuple[Any, Any, Any]:
    """Per-class sums of the overlap of labels and predictions over the rows.

    For labels ``y`` and predictions ``p`` of shape ``(..., K)``, row
    weights ``w`` of shape ``(...)`` (1 everywhere when None) and the sums
    over the rows ``n`` that ``axis`` spans, per class ``k``:

    ```
    intersection[k] = sum_n w[n] y[n, k] p[n, k]
    predicted[k]    = sum_n w[n] p[n, k]
    actual[k]       = sum_n w[n] y[n, k]
    ```

    the soft true positives and the predicted and actual mass of Dice and
    Tversky (``FP = predicted - intersection``, ``FN = actual - intersection``;
    Milletari et al., 2016, V-Net). A sum over many rows of only K values
    each runs several times slower than a full reduction in eager torch and
    in TensorFlow's XLA; the native paths first sum blocks of rows viewed as
    one row of a few hundred values, which changes only the order of the
    float additions. The gradient reaches ``labels`` and ``predictions``;
    ``weights`` are constants.

    Args:
        labels: Labels ``(..., K)``, one-hot or soft.
        predictions: Float predictions, the shape of ``labels``.
        weights: Non-negative row weights, the shape of ``labels`` without
            its last axis, or None.
        axis: The axes summed over: consecutive axes that end at the
            second to last (``-2``, ``(0, 1)`` of a ``(B, N, K)`` input).

    Returns:
        ``(intersection, predicted, actual)``, each of the input shape
        without ``axis``, in the dtype of ``predictions``.
    """
    return _dispatch("overlap_sums", overlap_sums_reference)(labels, predictions, weights, axis)


def overlap_sums_reference(
    labels: Any,
    predictions: Any,
    weights: Any | None = None,
    axis: int | tuple[int, ...] = -2,
) -> tuple[Any, Any, Any]:
    """:func:`overlap_sums` in ``keras.ops``: three sums over ``axis``."""
    predictions = keras.ops.convert_to_tensor(predictions)
    first = _first_summed_axis(len(predictions.shape), axis)
    axes = tuple(range(first, len(predictions.shape) - 1))
    labels = keras.ops.cast(labels, predictions.dtype)
    weighted_predictions, weighted_labels = predictions, labels
    if weights is not None:
        weights = keras.ops.stop_gradient(keras.ops.cast(weights, predictions.dtype))
        weights = keras.ops.expand_dims(weights, axis=-1)
        weighted_predictions, weighted_labels = predictions * weights, labels * weights
    return (
        keras.ops.sum(weighted_predictions * labels, axis=axes),
        keras.ops.sum(weighted_predictions, axis=axes),
        keras.ops.sum(weighted_labels, axis=axes),
    )


def _first_summed_axis(rank: int, axis: int | tuple[int, ...]) -> int:
    """The first of the consecutive ``axis`` that end at ``rank - 2``; ValueError otherwise."""
    axes = sorted(index % rank for index in ((axis,) if isinstance(axis, int) else axis))
    if not axes or axes != list(range(axes[0], rank - 1)):
        raise ValueError(
            f"overlap_sums: `axis` must be consecutive axes ending at the second to last "
            f"of the rank-{rank} inputs; got axis={axis!r}."
        )
    return axes[0]


def _row_block(count: int, classes: int) -> int:
    """Rows summed as one wide row by the native :func:`overlap_sums`: a power of two.

    The smallest block of at least ``_BLOCK_VALUES`` values that divides the
    ``count`` rows; fewer rows when ``count`` has fewer factors of two.
    """
    block = 1
    while block * classes < _BLOCK_VALUES and block < count:
        block *= 2
    return math.gcd(count, block)


# Values per row of the blocks the native overlap_sums sums first.
_BLOCK_VALUES = 512
