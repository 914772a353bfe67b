"""The Lovasz extension of the Jaccard loss at absolute errors.

With the tie-aware increments of its ``keras.ops`` reference: a sort, a binary
search and segment sums.
"""

from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch
from dl_techniques.losses.core.ops._sorting import sort


def lovasz_absolute_errors(labels: Any, predictions: Any, weights: Any | None = None) -> Any:
    """The Lovasz extension of the Jaccard loss at the errors ``|labels - predictions|``.

    For every group ``g`` and class ``k`` of ``(G, N, K)`` inputs, over the N
    pixels, with ``m_i = |y_ik - p_ik|`` (0 where ``w_i = 0``), ``fg`` weighing
    ``w_i y_ik`` and ``bg`` weighing ``w_i (1 - y_ik)``:

    ```
    m_(1) >= m_(2) >= ...        the errors sorted descending
    J_k = 1 - (|fg| - fg_k) / (|fg| + bg_k)     fg_k, bg_k: weights among the k largest
    value = sum_k m_(k) (J_k - J_(k-1)),   J_0 = 0, an empty union giving J = 0
    ```

    (Berman, Rannen Triki & Blaschko, 2018, "The Lovasz-Softmax Loss"). The
    increments are constants of the gradient, which flows to ``predictions``
    only. Where errors tie exactly, the reference path splits the increment of
    the tied pixels among them in proportion to their weights, and torch's
    native path gives each pixel the increment of its place in a stable sort;
    values agree, and gradients agree wherever the errors are distinct.

    Args:
        labels: Foreground labels ``(G, N, K)``, 0/1 or soft.
        predictions: Float predictions ``(G, N, K)``.
        weights: Non-negative pixel weights ``(G, N)``, or None for weight 1
            everywhere.

    Returns:
        The value per group and class, shape ``(G, K)``.
    """
    return _dispatch("lovasz_absolute_errors", lovasz_absolute_errors_reference)(
        labels, predictions, weights
    )


def lovasz_absolute_errors_reference(
    labels: Any, predictions: Any, weights: Any | None = None
) -> Any:
    """:func:`lovasz_absolute_errors` in ``keras.ops``.

    The errors are sorted by :func:`sort` as the integers of their bits (the
    order of non-negative floats), one operand alone, which XLA's CPU sort
    runs several times faster than a float sort carrying a permutation (and
    TensorFlow's XLA faster still through its own sort). A binary search
    finds each pixel's place among the sorted errors, and segment sums gather
    the label weights there for the cumulative sums.
    """
    predictions = keras.ops.convert_to_tensor(predictions)
    labels = keras.ops.cast(labels, predictions.dtype)
    errors = keras.ops.abs(labels - predictions)
    if weights is not None:
        weights = keras.ops.expand_dims(keras.ops.cast(weights, predictions.dtype), axis=-1)
        errors = errors * keras.ops.cast(weights > 0.0, errors.dtype)
    rows = keras.ops.transpose(errors, (0, 2, 1))
    increments = _tied_jaccard_increments(
        keras.ops.stop_gradient(rows),
        keras.ops.transpose(labels, (0, 2, 1)),
        None if weights is None else keras.ops.transpose(weights, (0, 2, 1)),
    )
    return keras.ops.sum(rows * keras.ops.stop_gradient(increments), axis=-1)


def _tied_jaccard_increments(errors, labels, weights):
    """Each pixel's share of the Jaccard increment of its block of equal errors, ``(G, K, N)``."""
    shape = keras.ops.shape(errors)
    count = shape[-1]
    rows = shape[0] * shape[1]
    keys = keras.ops.reshape(errors, (rows, -1))
    if None not in errors.shape:
        # Non-negative floats order as their bits do (keras.ops.view needs a
        # static shape on tensorflow; a float sort is the same order, slower).
        keys = keras.ops.view(keys, _INTEGER_OF_FLOAT[keras.backend.standardize_dtype(keys.dtype)])
    # Negated, ascending is largest first.
    keys = -keys
    offsets = keras.ops.reshape(keras.ops.arange(rows, dtype="int32") * count, (-1, 1))
    starts = keras.ops.reshape(_search_first(sort(keys), keys) + offsets, (-1,))
    if weights is None:
        foreground, background = labels, 1.0 - labels
    else:
        foreground = weights * labels
        background = weights - foreground

    def at_block_starts(values):
        flat = keras.ops.reshape(values, (-1,))
        return keras.ops.reshape(keras.ops.segment_sum(flat, starts, rows * count), shape)

    block_foreground = at_block_starts(foreground)
    block_background = at_block_starts(background)
    total = keras.ops.sum(foreground, axis=-1, keepdims=True)
    foreground_through = keras.ops.cumsum(block_foreground, axis=-1)
    background_through = keras.ops.cumsum(block_background, axis=-1)
    after = _jaccard_loss(total, foreground_through, background_through)
    before = _jaccard_loss(
        total, foreground_through - block_foreground, background_through - block_background
    )
    share = _safe_ratio(after - before, block_foreground + block_background)
    shares = keras.ops.reshape(keras.ops.take(keras.ops.reshape(share, (-1,)), starts), shape)
    return shares if weights is None else shares * weights


def _jaccard_loss(total, foreground_seen, background_seen):
    # 1 - |fg - S| / |fg U S|; an empty union is a perfect match, loss 0.
    union = total + background_seen
    intersection = total - foreground_seen
    return 1.0 - keras.ops.where(union > 0.0, intersection, 1.0) / keras.ops.where(
        union > 0.0, union, 1.0
    )


def _safe_ratio(numerator, denominator):
    positive = denominator > 0.0
    return keras.ops.where(positive, numerator, 0.0) / keras.ops.where(positive, denominator, 1.0)


def _search_first(ordered, queries):
    """The first index of each of ``queries`` in its row of ``ordered``.

    ``ordered`` and ``queries`` are ``(R, N)``; every row of ``ordered`` is
    ascending and holds every query of its row. A binary search, each step one
    gather from the flattened rows.
    """
    rows, count = keras.ops.shape(ordered)
    # A size unknown while tracing takes the steps of the largest int32 size;
    # once the bounds meet, further steps leave them unchanged.
    steps = 31 if ordered.shape[-1] is None else max(ordered.shape[-1] - 1, 0).bit_length()
    flat = keras.ops.reshape(ordered, (-1,))
    offsets = keras.ops.reshape(keras.ops.arange(rows, dtype="int32") * count, (-1, 1))

    def step(_, bounds):
        low, high = bounds
        middle = keras.ops.right_shift(low + high, 1)
        below = keras.ops.take(flat, middle + offsets) < queries
        return keras.ops.where(below, middle + 1, low), keras.ops.where(below, high, middle)

    bounds = (
        keras.ops.zeros((rows, count), dtype="int32"),
        keras.ops.full((rows, count), count - 1, dtype="int32"),
    )
    return keras.ops.fori_loop(0, steps, step, bounds)[0]


_INTEGER_OF_FLOAT = {
    "float16": "int16",
    "bfloat16": "int16",
    "float32": "int32",
    "float64": "int64",
}
