"""Softmax cross-entropy of integer labels and sigmoid cross-entropy, from logits."""

from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch


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


def _valid_and_safe(labels, ignore_index):
    if ignore_index is None:
        return None, labels
    valid = keras.ops.not_equal(labels, ignore_index)
    return valid, keras.ops.where(valid, labels, keras.ops.zeros_like(labels))
