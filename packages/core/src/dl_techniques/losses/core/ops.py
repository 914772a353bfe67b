"""Fused primitives for the hot paths of losses, native on each backend.

A chain of ``keras.ops`` runs one kernel per op in eager PyTorch (and in eager
TensorFlow or JAX), plus one per op of its backward pass; the frameworks have
fused kernels for a few primitives that losses use on large tensors. Each
function here computes one such primitive with the current backend's native
kernel where one exists, and otherwise with its ``*_reference`` twin, written
in ``keras.ops`` (which XLA fuses under ``jax.jit`` and ``jit_compile``). Both
paths give the same values and gradients (tested on every backend), so a loss
calls the primitive and never imports a framework itself.

Native kernels (:func:`native_backends` lists them per primitive):

- ``softmax_cross_entropy``: ``torch.nn.functional.cross_entropy`` (ignore index
  and smoothing inside the kernel); ``tf.nn.sparse_softmax_cross_entropy_with_logits``.
- ``sigmoid_cross_entropy``: ``torch.nn.functional.binary_cross_entropy_with_logits``;
  ``tf.nn.sigmoid_cross_entropy_with_logits``.
- ``lgamma``: ``torch.lgamma``, ``tf.math.lgamma``, ``jax.lax.lgamma`` (Keras
  has no op; the reference is Lanczos' approximation).
- ``softmax_expectation``: jax: the ratio of two sums of ``exp(x - max)``, one
  division per row (the reference divides every exponential, and XLA's CPU
  backend writes that broadcast reciprocal out).
- ``huber`` and ``huber_mean``: ``torch.nn.functional.huber_loss`` (``reduction``
  ``"none"`` and ``"mean"``).
- ``lovasz_absolute_errors``: ``torch.sort`` a few classes at a time in one
  autograd function that keeps only each pixel's slope for the backward pass.
- ``pairwise_where``: ``torch.nonzero`` of the mask, the function on the
  gathered pairs only, and one ``index_put`` per value into its fill.
- ``rowwise_where``: the same for single rows: ``torch.nonzero`` of the mask,
  the function on the gathered rows only, one ``index_put`` into the fill.
- ``overlap_sums``: torch: one autograd function, the per-class sums taken over
  blocks of rows viewed as one wide row, and one ``addcmul`` per input in the
  backward pass; TensorFlow: the same block sums in ``tf`` ops.
- ``sort``: TensorFlow: XLA's own sort (``tf2xla``'s ``xla.sort``); ``tf.sort``
  runs through ``top_k``, a stable sort of the negated values with a
  greater-than comparator that XLA's CPU backend runs about 3x slower.
- ``sort_descending``: ``torch.sort`` and one gather per carried tensor. (On
  XLA's CPU backend one ``jax.lax.sort`` carrying every tensor as an operand
  was 1.4x slower than the argsort and gathers of the reference, measured on
  Lovasz-softmax at 4x128x128x19, so jax runs the reference.)

:func:`mean` is ``keras.ops.mean`` written as a sum times ``1/n``, whose
backward in eager torch broadcasts a view instead of writing a full-size
gradient.

Every function works eagerly and under ``tf.function``, ``jax.jit`` and
``torch.compile``.
"""

import functools
import math
from collections.abc import Callable
from typing import Any

import keras

_LANCZOS_SHIFT = 5.5
_LANCZOS_SERIES_START = 1.000000000190015
_LANCZOS_COEFFICIENTS = (
    76.18009172947146,
    -86.50532032941677,
    24.01409824083091,
    -1.231739572450155,
    1.208650973866179e-3,
    -5.395239384953e-6,
)

__all__ = [
    "huber",
    "lovasz_absolute_errors",
    "lovasz_absolute_errors_reference",
    "huber_mean",
    "huber_mean_reference",
    "huber_reference",
    "lgamma",
    "lgamma_increment",
    "lgamma_reference",
    "mean",
    "native_backends",
    "overlap_sums",
    "overlap_sums_reference",
    "pairwise_where",
    "pairwise_where_reference",
    "rowwise_where",
    "rowwise_where_reference",
    "sigmoid_cross_entropy",
    "sigmoid_cross_entropy_reference",
    "softmax_expectation",
    "softmax_expectation_reference",
    "softmax_cross_entropy",
    "softmax_cross_entropy_reference",
    "sort",
    "sort_reference",
    "sort_descending",
    "sort_descending_reference",
]


def softmax_cross_entropy(
    labels: Any,
    logits: Any,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
) -> Any:
    """Per-position softmax cross-entropy of integer labels, from logits.

    With ``x`` the logits of one position, ``y`` its label and ``V`` classes:

    ```
    ce(x, y)  = logsumexp(x) - x_y
    smoothed  = (1 - s) ce(x, y) + s (logsumexp(x) - mean_v x_v)
    ```

    the cross-entropy against the smoothed target ``(1 - s) onehot(y) + s / V``
    (Szegedy et al., 2016, "Rethinking the Inception Architecture", the
    smoothing of ``keras.losses`` and ``torch.nn.functional.cross_entropy``).
    A position whose label equals ``ignore_index`` gives 0 and no gradient.

    Args:
        labels: Integer class ids, shape ``(...)``, each in ``[0, V)`` or equal
            to ``ignore_index``.
        logits: Float logits, shape ``(..., V)``.
        ignore_index: A label value that marks positions to leave out, or None.
        label_smoothing: ``s`` in ``[0, 1]``.

    Returns:
        The cross-entropy per position, shape ``(...)``, dtype of ``logits``.
    """
    return _dispatch("softmax_cross_entropy", softmax_cross_entropy_reference)(
        labels, logits, ignore_index, label_smoothing
    )


def softmax_cross_entropy_reference(
    labels: Any,
    logits: Any,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
) -> Any:
    """:func:`softmax_cross_entropy` in ``keras.ops``."""
    logits = keras.ops.convert_to_tensor(logits)
    labels = keras.ops.cast(labels, "int32")
    valid, safe_labels = _valid_and_safe(labels, ignore_index)
    log_normaliser = keras.ops.logsumexp(logits, axis=-1)
    label_logits = keras.ops.squeeze(
        keras.ops.take_along_axis(logits, keras.ops.expand_dims(safe_labels, -1), axis=-1),
        axis=-1,
    )
    values = log_normaliser - label_logits
    if label_smoothing:
        smoothing = keras.ops.cast(label_smoothing, logits.dtype)
        values = values + smoothing * (label_logits - keras.ops.mean(logits, axis=-1))
    if valid is None:
        return values
    return keras.ops.where(valid, values, keras.ops.zeros_like(values))


def sigmoid_cross_entropy(labels: Any, logits: Any) -> Any:
    """Elementwise binary cross-entropy of (soft) labels ``z`` from logits ``x``.

    ```
    bce(x, z) = -z log sigmoid(x) - (1 - z) log sigmoid(-x) = softplus(x) - x z
    ```

    finite for every finite logit.

    Args:
        labels: Targets in ``[0, 1]``, the shape of ``logits``.
        logits: Float logits.

    Returns:
        A tensor of the shape and dtype of ``logits``.
    """
    return _dispatch("sigmoid_cross_entropy", sigmoid_cross_entropy_reference)(labels, logits)


def sigmoid_cross_entropy_reference(labels: Any, logits: Any) -> Any:
    """:func:`sigmoid_cross_entropy` in ``keras.ops``."""
    logits = keras.ops.convert_to_tensor(logits)
    labels = keras.ops.cast(labels, logits.dtype)
    # softplus(x) - x z: no log of a probability that rounds to 0, and the
    # exact slope sigmoid(x) - z everywhere, x = 0 included.
    return keras.ops.softplus(logits) - logits * labels


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


def sort(values: Any) -> Any:
    """``values`` sorted ascending along the last axis, as constants (no gradient).

    Args:
        values: Integer or float tensor ``(..., N)``; NaN has no defined place.

    Returns:
        The sorted tensor, the shape and dtype of ``values``.
    """
    return _dispatch("sort", sort_reference)(values)


def sort_reference(values: Any) -> Any:
    """:func:`sort` in ``keras.ops``."""
    return keras.ops.stop_gradient(keras.ops.sort(values, axis=-1))


def sort_descending(values: Any, *carried: Any) -> tuple[Any, ...]:
    """Sorts ``values`` along the last axis, largest first, and permutes ``carried`` alike.

    Equal values keep their original order (a stable sort of ``-values``).
    The sorted values carry the gradient of ``values``; the carried tensors
    are permuted as data, without gradient.

    Args:
        values: Float tensor ``(..., N)``.
        *carried: Tensors of the same shape, permuted like ``values``.

    Returns:
        ``(sorted_values, *sorted_carried)``.
    """
    return _dispatch("sort_descending", sort_descending_reference)(values, *carried)


def sort_descending_reference(values: Any, *carried: Any) -> tuple[Any, ...]:
    """:func:`sort_descending` in ``keras.ops``: one argsort and one gather per tensor."""
    values = keras.ops.convert_to_tensor(values)
    order = keras.ops.argsort(-values, axis=-1)
    sorted_values = keras.ops.take_along_axis(values, order, axis=-1)
    return (
        sorted_values,
        *(
            keras.ops.stop_gradient(keras.ops.take_along_axis(tensor, order, axis=-1))
            for tensor in carried
        ),
    )


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


def lgamma(x: Any) -> Any:
    """``log Gamma(x)`` elementwise, for ``x > 0``; its gradient is the digamma function.

    Args:
        x: Positive floats.

    Returns:
        A tensor of the shape and dtype of ``x``.
    """
    return _dispatch("lgamma", lgamma_reference)(x)


def lgamma_reference(x: Any) -> Any:
    """:func:`lgamma` in ``keras.ops``: Lanczos' approximation, ``g = 5``, six terms.

    ```
    log Gamma(x) = (x + 0.5) log(x + 5.5) - (x + 5.5)
                   + log(sqrt(2 pi) (c_0 + sum_j c_j / (x + j)) / x)
    ```

    relative error below 2e-10 for every ``x > 0`` (Press et al., Numerical
    Recipes, 2nd ed., section 6.1; Lanczos, 1964, SIAM J. Numer. Anal. B 1).
    """
    x = keras.ops.convert_to_tensor(x)
    shifted = x + _LANCZOS_SHIFT
    return (
        (x + 0.5) * keras.ops.log(shifted)
        - shifted
        + keras.ops.log(math.sqrt(2.0 * math.pi) * _lanczos_series(x) / x)
    )


def lgamma_increment(x: Any, increment: Any) -> Any:
    """``log Gamma(x + d) - log Gamma(x)`` for ``x > 0``, ``d >= 0``, at float32 precision.

    The difference of two Lanczos approximations, rearranged so that their
    large common part cancels exactly instead of in float32:

    ```
    (x + 0.5) log(1 + d / (x + 5.5)) + d log(x + 5.5 + d) - d
        + log(series(x + d) / series(x)) - log(1 + d / x)
    ```

    For ``x = 1e4`` the difference of two float32 values of ``lgamma`` near
    8e4 keeps about 0.01; this keeps float32 precision of the result, and is
    exactly 0 at ``d = 0``. No backend has a fused kernel for it.

    Args:
        x: Positive floats.
        increment: Non-negative floats ``d``, broadcastable with ``x``.
    """
    x = keras.ops.convert_to_tensor(x)
    shifted = x + _LANCZOS_SHIFT
    return (
        (x + 0.5) * keras.ops.log1p(increment / shifted)
        + increment * keras.ops.log(shifted + increment)
        - increment
        + keras.ops.log(_lanczos_series(x + increment) / _lanczos_series(x))
        - keras.ops.log1p(increment / x)
    )


def _lanczos_series(x: Any) -> Any:
    series = keras.ops.full_like(x, _LANCZOS_SERIES_START)
    for offset, coefficient in enumerate(_LANCZOS_COEFFICIENTS, start=1):
        series = series + coefficient / (x + float(offset))
    return series


def mean(values: Any, axis: int | tuple[int, ...]) -> Any:
    """The mean of ``values`` over ``axis``: ``sum(values, axis) * (1 / n)``.

    ``n``, the number of values averaged, is read from the static shape; with
    an unknown size on ``axis`` this is ``keras.ops.mean``. Same value as
    ``keras.ops.mean``, but the gradient of a sum is a broadcast view of the
    incoming gradient, where eager torch writes a full-size tensor of
    ``1/n`` for the gradient of a mean.

    Args:
        values: A tensor.
        axis: An axis or a tuple of axes.

    Returns:
        ``values`` reduced over ``axis``.
    """
    values = keras.ops.convert_to_tensor(values)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    count = 1
    for index in axes:
        size = values.shape[index]
        if size is None:
            return keras.ops.mean(values, axis=axes)
        count *= int(size)
    return keras.ops.sum(values, axis=axes) * (1.0 / count)


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


def pairwise_where(
    mask: Any,
    function: Callable[[Any, Any], Any],
    first: Any,
    second: Any,
    fill: float | tuple[float, ...] = 0.0,
) -> Any:
    """``function`` of each masked pair of rows, ``fill`` elsewhere: ``(B, N, M)``.

    ```
    out[b, i, j] = function(first[b, i], second[b, j])   where mask[b, i, j]
                 = fill                                   elsewhere
    ```

    ``function`` maps rows ``(..., F1)`` and ``(..., F2)`` to ``(...)``, each
    pair from its own two rows alone. ``first`` and ``second`` may each be a
    tuple of tensors (rows of several widths and dtypes, such as boxes and
    class ids); ``function`` then receives tuples of rows, in the same order.
    It may return a tuple of values, each of which becomes one ``(B, N, M)``
    output with its own ``fill``. The native path gathers the masked pairs (a
    dynamic count) and calls ``function`` on them only, so a sparse mask costs
    the pairs it holds rather than ``B N M``; the reference calls it on every
    pair by broadcasting (rows ``(B, N, 1, ...)`` and ``(B, 1, M, ...)``). Both
    paths apply the same elementwise operations to each pair; the gradient
    reaches ``first`` and ``second`` through the masked pairs.

    Args:
        mask: ``(B, N, M)`` boolean.
        function: ``function(first_rows, second_rows) -> values`` (or a tuple
            of values).
        first: ``(B, N, F1)``, or a tuple of ``(B, N, ...)`` tensors.
        second: ``(B, M, F2)``, or a tuple of ``(B, M, ...)`` tensors.
        fill: The value off the mask: one number, or one per value that
            ``function`` returns.

    Returns:
        ``(B, N, M)`` in the dtype of ``function``'s values, or a tuple of
        them where ``function`` returns a tuple.
    """
    return _dispatch("pairwise_where", pairwise_where_reference)(
        mask, function, first, second, fill
    )


def pairwise_where_reference(
    mask: Any,
    function: Callable[[Any, Any], Any],
    first: Any,
    second: Any,
    fill: float | tuple[float, ...] = 0.0,
) -> Any:
    """:func:`pairwise_where` in ``keras.ops``: ``function`` on every pair, then a ``where``."""
    first = keras.tree.map_structure(
        lambda rows: keras.ops.expand_dims(keras.ops.convert_to_tensor(rows), 2), first
    )
    second = keras.tree.map_structure(
        lambda rows: keras.ops.expand_dims(keras.ops.convert_to_tensor(rows), 1), second
    )
    return _each_output(
        function(first, second),
        fill,
        lambda values, value: keras.ops.where(mask, values, keras.ops.cast(value, values.dtype)),
    )


def rowwise_where(mask: Any, function: Callable[..., Any], *rows: Any, fill: float = 0.0) -> Any:
    """``function`` of each masked row, ``fill`` elsewhere: the shape of ``mask``.

    ```
    out[i] = function(rows[0][i], rows[1][i], ...)   where mask[i]
           = fill                                     elsewhere
    ```

    ``function`` maps rows ``(..., F1)``, ``(..., F2)``, ... to ``(...)``,
    each value from its own rows alone. The native path gathers the masked
    rows (a dynamic count) and calls ``function`` on them only, so a sparse
    mask costs the rows it holds; the reference calls it on every row. Both
    paths apply the same operations to each row; the gradient reaches the
    rows through the masked ones only.

    Args:
        mask: Boolean, shape ``S``.
        function: ``function(*row_values) -> values``.
        *rows: Tensors of shape ``S + (F,)`` (or more trailing axes).
        fill: The value off the mask.

    Returns:
        A tensor of shape ``S`` in the dtype of ``function``'s values.
    """
    return _dispatch("rowwise_where", rowwise_where_reference)(mask, function, *rows, fill=fill)


def rowwise_where_reference(
    mask: Any, function: Callable[..., Any], *rows: Any, fill: float = 0.0
) -> Any:
    """:func:`rowwise_where` in ``keras.ops``: ``function`` on every row, then a ``where``."""
    values = function(*(keras.ops.convert_to_tensor(tensor) for tensor in rows))
    return keras.ops.where(mask, values, keras.ops.cast(fill, values.dtype))


def native_backends(primitive: str) -> tuple[str, ...]:
    """The backends on which ``primitive`` (a function name here) runs a native kernel."""
    if primitive not in _NATIVE_NAMES:
        raise ValueError(
            f"native_backends: unknown primitive {primitive!r}; "
            f"expected one of {sorted(_NATIVE_NAMES)}."
        )
    return tuple(sorted(_NATIVE_NAMES[primitive]))


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


def _valid_and_safe(labels, ignore_index):
    if ignore_index is None:
        return None, labels
    valid = keras.ops.not_equal(labels, ignore_index)
    return valid, keras.ops.where(valid, labels, keras.ops.zeros_like(labels))


def _each_output(values, fill, place):
    """``place(values, fill)`` for one value, or per value and fill of a tuple."""
    if not isinstance(values, tuple):
        return place(values, fill)
    fills = fill if isinstance(fill, tuple) else (fill,) * len(values)
    if len(fills) != len(values):
        raise ValueError(
            f"pairwise_where: {len(fills)} fill values for the {len(values)} values that "
            "`function` returns; give one fill, or one per value."
        )
    return tuple(place(value, value_fill) for value, value_fill in zip(values, fills, strict=True))


def _dispatch(primitive: str, reference: Callable[..., Any]) -> Callable[..., Any]:
    backend = keras.backend.backend()
    if backend not in _NATIVE_NAMES[primitive]:
        return reference
    return _NATIVE_LOADERS[backend]()[primitive]


@functools.cache
def _torch_natives() -> dict[str, Callable[..., Any]]:
    import torch
    import torch.nn.functional as functional

    def softmax_cross_entropy(labels, logits, ignore_index, label_smoothing):
        logits = keras.ops.convert_to_tensor(logits)
        labels = torch.as_tensor(labels, device=logits.device).long()
        classes = logits.shape[-1]
        values = functional.cross_entropy(
            logits.reshape(-1, classes),
            labels.reshape(-1),
            ignore_index=-100 if ignore_index is None else int(ignore_index),
            label_smoothing=float(label_smoothing),
            reduction="none",
        )
        return values.reshape(labels.shape)

    def sigmoid_cross_entropy(labels, logits):
        logits = keras.ops.convert_to_tensor(logits)
        labels = torch.as_tensor(labels, device=logits.device).to(logits.dtype)
        return functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")

    def huber(y_true, y_pred, delta):
        y_pred = keras.ops.convert_to_tensor(y_pred)
        y_true = torch.as_tensor(y_true, device=y_pred.device).to(y_pred.dtype)
        return functional.huber_loss(y_pred, y_true, reduction="none", delta=float(delta))

    def huber_mean(y_true, y_pred, delta):
        y_pred = keras.ops.convert_to_tensor(y_pred)
        y_true = torch.as_tensor(y_true, device=y_pred.device).to(y_pred.dtype)
        return functional.huber_loss(y_pred, y_true, reduction="mean", delta=float(delta))

    class LovaszAbsoluteErrors(torch.autograd.Function):
        # A few classes at a time: the sort's buffers stay small, and only the
        # slope of every pixel is kept for the backward pass.

        @staticmethod
        def forward(ctx, labels, predictions, weights):
            groups, count, classes = predictions.shape
            values = predictions.new_empty((groups, classes))
            slopes = torch.empty_like(predictions)
            step = max(1, min(classes, _LOVASZ_CHUNK_ELEMENTS // max(count, 1)))
            places = torch.arange(1, count + 1, dtype=predictions.dtype, device=predictions.device)
            for group in range(groups):
                valid = None if weights is None else weights[group] > 0.0
                for first in range(0, classes, step):
                    last = min(first + step, classes)
                    difference = (
                        labels[group, :, first:last] - predictions[group, :, first:last]
                    ).T
                    difference = difference.contiguous()
                    errors = difference.abs()
                    if valid is not None:
                        errors.mul_(valid)
                    ordered, order = torch.sort(errors, dim=-1, descending=True, stable=True)
                    foreground = labels[group, :, first:last].T.gather(-1, order)
                    if weights is None:
                        background_seen = places - foreground.cumsum(-1)
                    else:
                        pixel_weights = weights[group].expand_as(errors).gather(-1, order)
                        foreground.mul_(pixel_weights)
                        background_seen = (pixel_weights - foreground).cumsum_(-1)
                    total = foreground.sum(-1, keepdim=True)
                    union = background_seen.add_(total)
                    intersection = foreground.cumsum_(-1).neg_().add_(total)
                    increments = (
                        torch.where(union > 0.0, intersection / union, 1.0).neg_().add_(1.0)
                    )
                    increments[:, 1:] -= increments[:, :-1].clone()
                    values[group, first:last] = (ordered * increments).sum(-1)
                    del ordered, foreground, background_seen, union, intersection
                    slope = torch.empty_like(errors).scatter_(-1, order, increments)
                    slope.mul_(difference.sign_().neg_())
                    if valid is not None:
                        slope.mul_(valid)
                    slopes[group, :, first:last] = slope.T
            ctx.save_for_backward(slopes)
            return values

        @staticmethod
        def backward(ctx, gradient):
            (slopes,) = ctx.saved_tensors
            return None, slopes * gradient[:, None, :], None

    def lovasz_absolute_errors(labels, predictions, weights):
        predictions = keras.ops.convert_to_tensor(predictions)
        labels = torch.as_tensor(labels, device=predictions.device).to(predictions.dtype)
        if weights is not None:
            weights = torch.as_tensor(weights, device=predictions.device).to(predictions.dtype)
        return LovaszAbsoluteErrors.apply(labels.detach(), predictions, weights)

    def row_sums(values):
        *lead, count, classes = values.shape
        block = _row_block(count, classes)
        if block == 1:
            return values.sum(-2)
        wide = values.reshape(*lead, count // block, block * classes).sum(-2)
        return wide.reshape(*lead, block, classes).sum(-2)

    class OverlapSums(torch.autograd.Function):
        # On (..., N, K) inputs. The gradient of each input is one fused
        # multiply-add of the other input and the incoming gradients, times
        # the weights.

        @staticmethod
        def forward(ctx, labels, predictions, weights):
            weighted_predictions, weighted_labels = predictions, labels
            if weights is not None:
                weighted_predictions = predictions * weights
                weighted_labels = labels * weights
            ctx.save_for_backward(labels, predictions, weights)
            return (
                row_sums(weighted_predictions * labels),
                row_sums(weighted_predictions),
                row_sums(weighted_labels),
            )

        @staticmethod
        def backward(ctx, intersection, predicted, actual):
            labels, predictions, weights = ctx.saved_tensors
            intersection = intersection.unsqueeze(-2)

            def gradient(other, own_sum):
                values = torch.addcmul(own_sum.unsqueeze(-2), other, intersection)
                return values if weights is None else values.mul_(weights)

            return (
                gradient(predictions, actual) if ctx.needs_input_grad[0] else None,
                gradient(labels, predicted) if ctx.needs_input_grad[1] else None,
                None,
            )

    def overlap_sums(labels, predictions, weights, axis):
        predictions = keras.ops.convert_to_tensor(predictions)
        first = _first_summed_axis(predictions.dim(), axis)
        labels = torch.as_tensor(labels, device=predictions.device).to(predictions.dtype)
        # The summed axes as one axis of rows: (*lead, N, K).
        rows = (*predictions.shape[:first], -1, predictions.shape[-1])
        if weights is not None:
            weights = torch.as_tensor(weights, device=predictions.device).to(predictions.dtype)
            weights = weights.detach().reshape(rows[:-1]).unsqueeze(-1)
        return OverlapSums.apply(labels.reshape(rows), predictions.reshape(rows), weights)

    def sort_descending(values, *carried):
        values = keras.ops.convert_to_tensor(values)
        carried = tuple(torch.as_tensor(tensor, device=values.device) for tensor in carried)
        sorted_values, order = torch.sort(values, dim=-1, descending=True, stable=True)
        return (
            sorted_values,
            *(torch.gather(tensor, -1, order).detach() for tensor in carried),
        )

    def pairwise_where(mask, function, first, second, fill):
        device = keras.ops.convert_to_tensor(keras.tree.flatten(first)[0]).device
        mask = torch.as_tensor(mask, device=device).bool()
        batch, rows, columns = torch.nonzero(mask, as_tuple=True)
        first_rows = keras.tree.map_structure(
            lambda tensor: torch.as_tensor(tensor, device=device)[batch, rows], first
        )
        second_rows = keras.tree.map_structure(
            lambda tensor: torch.as_tensor(tensor, device=device)[batch, columns], second
        )
        return _each_output(
            function(first_rows, second_rows),
            fill,
            lambda values, value: values.new_full(mask.shape, value).index_put(
                (batch, rows, columns), values
            ),
        )

    def rowwise_where(mask, function, *rows, fill):
        device = keras.ops.convert_to_tensor(rows[0]).device
        mask = torch.as_tensor(mask, device=device).bool()
        where = torch.nonzero(mask, as_tuple=True)
        values = function(*(torch.as_tensor(tensor, device=device)[where] for tensor in rows))
        return values.new_full(mask.shape, fill).index_put(where, values)

    def lgamma(x):
        return torch.lgamma(keras.ops.convert_to_tensor(x))

    return {
        "lgamma": lgamma,
        "softmax_cross_entropy": softmax_cross_entropy,
        "sigmoid_cross_entropy": sigmoid_cross_entropy,
        "pairwise_where": pairwise_where,
        "rowwise_where": rowwise_where,
        "huber": huber,
        "huber_mean": huber_mean,
        "lovasz_absolute_errors": lovasz_absolute_errors,
        "overlap_sums": overlap_sums,
        "sort_descending": sort_descending,
    }


@functools.cache
def _tensorflow_natives() -> dict[str, Callable[..., Any]]:
    import tensorflow as tf

    def softmax_cross_entropy(labels, logits, ignore_index, label_smoothing):
        logits = tf.convert_to_tensor(logits)
        labels = tf.cast(labels, "int32")
        valid, safe_labels = _valid_and_safe(labels, ignore_index)
        values = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
        if label_smoothing:
            label_logits = tf.squeeze(
                tf.gather(logits, safe_labels[..., None], axis=-1, batch_dims=labels.shape.rank),
                axis=-1,
            )
            smoothing = tf.cast(label_smoothing, logits.dtype)
            values = values + smoothing * (label_logits - tf.reduce_mean(logits, axis=-1))
        if valid is None:
            return values
        return tf.where(valid, values, tf.zeros_like(values))

    def sigmoid_cross_entropy(labels, logits):
        logits = tf.convert_to_tensor(logits)
        labels = tf.cast(labels, logits.dtype)
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)

    def lgamma(x):
        return tf.math.lgamma(tf.convert_to_tensor(x))

    def sort(values):
        from tensorflow.compiler.tf2xla.python import xla

        return xla.sort(tf.stop_gradient(tf.convert_to_tensor(values)))

    def row_sums(values, first):
        shape = values.shape.as_list()
        axes = tuple(range(first, len(shape) - 1))
        if None in shape[first:]:
            return tf.reduce_sum(values, axis=axes)
        count, classes = math.prod(shape[first:-1]), shape[-1]
        block = _row_block(count, classes)
        if block == 1:
            return tf.reduce_sum(values, axis=axes)
        lead = tf.shape(values)[:first]
        wide = tf.reshape(values, tf.concat([lead, [count // block, block * classes]], 0))
        wide = tf.reduce_sum(wide, axis=-2)
        return tf.reduce_sum(tf.reshape(wide, tf.concat([lead, [block, classes]], 0)), axis=-2)

    def overlap_sums(labels, predictions, weights, axis):
        predictions = tf.convert_to_tensor(predictions)
        first = _first_summed_axis(predictions.shape.rank, axis)
        labels = tf.cast(labels, predictions.dtype)
        weighted_predictions, weighted_labels = predictions, labels
        if weights is not None:
            weights = tf.stop_gradient(tf.cast(weights, predictions.dtype))[..., None]
            weighted_predictions, weighted_labels = predictions * weights, labels * weights
        return (
            row_sums(weighted_predictions * labels, first),
            row_sums(weighted_predictions, first),
            row_sums(weighted_labels, first),
        )

    return {
        "lgamma": lgamma,
        "overlap_sums": overlap_sums,
        "sort": sort,
        "softmax_cross_entropy": softmax_cross_entropy,
        "sigmoid_cross_entropy": sigmoid_cross_entropy,
    }


# Values per row of the blocks the native overlap_sums sums first.
_BLOCK_VALUES = 512

# Elements of the classes the torch kernel sorts at once.
_LOVASZ_CHUNK_ELEMENTS = 2**19


@functools.cache
def _jax_natives() -> dict[str, Callable[..., Any]]:
    import jax

    def lgamma(x):
        return jax.lax.lgamma(keras.ops.convert_to_tensor(x))

    def softmax_expectation(logits):
        # One division per row after the two sums: dividing every exponential
        # first (the reference) made XLA's CPU backend write the broadcast
        # reciprocal out as a tensor of the logits' size.
        logits = keras.ops.convert_to_tensor(logits)
        peak = jax.lax.stop_gradient(jax.numpy.max(logits, axis=-1, keepdims=True))
        weights = jax.numpy.exp(logits - peak)
        bins = jax.numpy.arange(logits.shape[-1], dtype=logits.dtype)
        return jax.numpy.sum(weights * bins, axis=-1) / jax.numpy.sum(weights, axis=-1)

    return {"lgamma": lgamma, "softmax_expectation": softmax_expectation}


_NATIVE_LOADERS: dict[str, Callable[[], dict[str, Callable[..., Any]]]] = {
    "torch": _torch_natives,
    "tensorflow": _tensorflow_natives,
    "jax": _jax_natives,
}
_NATIVE_NAMES: dict[str, frozenset[str]] = {
    "softmax_cross_entropy": frozenset({"tensorflow", "torch"}),
    "sigmoid_cross_entropy": frozenset({"tensorflow", "torch"}),
    "softmax_expectation": frozenset({"jax"}),
    "huber": frozenset({"torch"}),
    "huber_mean": frozenset({"torch"}),
    "lgamma": frozenset({"jax", "tensorflow", "torch"}),
    "lovasz_absolute_errors": frozenset({"torch"}),
    "overlap_sums": frozenset({"tensorflow", "torch"}),
    "pairwise_where": frozenset({"torch"}),
    "rowwise_where": frozenset({"torch"}),
    "sort": frozenset({"tensorflow"}),
    "sort_descending": frozenset({"torch"}),
}
