"""The soft confusion matrix of AnyLoss: amplified predictions summed against labels."""

from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch


def soft_confusion_counts(
    labels: Any,
    predictions: Any,
    amplifying_scale: float,
    from_logits: bool = False,
    weights: Any | None = None,
    axis: int | None = None,
) -> tuple[Any, Any, Any, Any]:
    """The weighted soft ``(TP, FN, FP, TN)`` of a batch (Han et al., 2024, AnyLoss).

    Probabilities ``p`` (``sigmoid(predictions)`` with ``from_logits``) are
    pushed towards 0 or 1 by the amplifier ``yhat = sigmoid(L (p - 0.5))``,
    ``L = amplifying_scale``; with labels ``y`` in {0, 1} and weights ``w``
    (1 everywhere when None), summed over ``axis``:

    ```
    TP = sum w y yhat          FN = max(sum w y - TP, 0)
    FP = sum w (1 - y) yhat    TN = max(sum w (1 - y) - FP, 0)
    ```

    Without weights ``FP = sum yhat - TP`` and ``TN = n - sum y - FP`` over
    the ``n`` cells summed, which needs no full-size product of ``1 - y``.
    The clamps at 0 only remove rounding error: no exact count is negative.
    The native kernels keep ``yhat`` for the backward pass and write the
    gradient of ``predictions`` in one pass over the batch, where a chain of
    ``keras.ops`` runs one eager kernel per operation and per derivative.

    Args:
        labels: Hard labels ``(N, C)``, 0 or 1, float.
        predictions: Probabilities, or logits with ``from_logits``, ``(N, C)``.
        amplifying_scale: The slope ``L > 0`` of the amplifier.
        from_logits: Whether ``predictions`` are logits.
        weights: Non-negative cell weights ``(N, C)``, or None.
        axis: None for one matrix over every cell (micro average), 0 for one
            per column (macro average).

    Returns:
        ``(TP, FN, FP, TN)``, scalars with ``axis=None`` and ``(C,)`` with
        ``axis=0``, in the dtype of ``predictions``.
    """
    if axis not in (None, 0):
        raise ValueError(f"soft_confusion_counts: `axis` must be None or 0; got axis={axis!r}.")
    return _dispatch("soft_confusion_counts", soft_confusion_counts_reference)(
        labels, predictions, amplifying_scale, from_logits, weights, axis
    )


def soft_confusion_counts_reference(
    labels: Any,
    predictions: Any,
    amplifying_scale: float,
    from_logits: bool = False,
    weights: Any | None = None,
    axis: int | None = None,
) -> tuple[Any, Any, Any, Any]:
    """:func:`soft_confusion_counts` in ``keras.ops``."""
    predictions = keras.ops.convert_to_tensor(predictions)
    labels = keras.ops.cast(labels, predictions.dtype)
    probabilities = keras.ops.sigmoid(predictions) if from_logits else predictions
    predicted_positive = keras.ops.sigmoid(amplifying_scale * (probabilities - 0.5))
    if weights is None:
        return _unweighted_counts(labels, predicted_positive, axis)
    weights = keras.ops.cast(weights, predictions.dtype)
    positives = weights * labels
    negatives = weights * (1.0 - labels)
    tp = keras.ops.sum(positives * predicted_positive, axis=axis)
    fp = keras.ops.sum(negatives * predicted_positive, axis=axis)
    fn = keras.ops.maximum(keras.ops.sum(positives, axis=axis) - tp, 0.0)
    tn = keras.ops.maximum(keras.ops.sum(negatives, axis=axis) - fp, 0.0)
    return tp, fn, fp, tn


def _unweighted_counts(labels: Any, predicted_positive: Any, axis: int | None) -> tuple:
    """``(TP, FN, FP, TN)`` with unit weights, from three full-size sums."""
    tp = keras.ops.sum(labels * predicted_positive, axis=axis)
    predicted = keras.ops.sum(predicted_positive, axis=axis)
    actual = keras.ops.sum(labels, axis=axis)
    shape = keras.ops.shape(labels)
    cells = shape[0] * shape[1] if axis is None else shape[0]
    count = keras.ops.cast(cells, actual.dtype)
    # FN and TN are clamped as in the weighted form; FP, a sum there, is not.
    fp = predicted - tp
    fn = keras.ops.maximum(actual - tp, 0.0)
    tn = keras.ops.maximum(count - actual - fp, 0.0)
    return tp, fn, fp, tn
