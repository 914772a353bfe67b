"""Token cross-entropies, masks and weighted token means shared by the language losses.

Every language loss here is batch-level: it returns one scalar, the mean over
the valid tokens of the batch, and applies ``sample_weight`` inside that mean
(each token of row ``b`` counts ``w_b`` times), so Keras' reduction never
averages a second time. Ignored positions are replaced by the safe class 0
before any cross-entropy op sees them and are then zero-weighted, so an
``ignore_index`` such as -100 never indexes a logit on any backend.
"""

import numbers
from typing import Any

import keras

from dl_techniques.losses.core import distributed, numerics, ops, shapes, validation

LM_LOSS_TYPES = ("stable_max", "softmax")


def check_ignore_index(owner: str, ignore_index: Any) -> int:
    """Raises ``ValueError`` unless ``ignore_index`` is an int."""
    if not isinstance(ignore_index, numbers.Integral) or isinstance(ignore_index, bool):
        raise ValueError(
            f"{owner}: `ignore_index` must be an int; got ignore_index={ignore_index!r}."
        )
    return int(ignore_index)


def token_inputs(
    owner: str,
    labels: Any,
    logits: Any,
    dtype: str,
    labels_name: str = "y_true",
    logits_name: str = "y_pred",
) -> tuple[Any, Any]:
    """Returns ``(labels, logits)``, the logits cast to ``dtype``, shapes checked.

    ``logits`` must be ``(B, ..., V)`` and ``labels`` the same shape without
    the vocabulary axis; unknown (``None``) dimensions match anything. The
    labels keep their fractions (float32 for float ids, int32 otherwise) so
    that ``check_ids`` can reject a float id such as 1.5 instead of
    truncating it.
    """
    logits = keras.ops.cast(keras.ops.convert_to_tensor(logits), dtype)
    labels = keras.ops.convert_to_tensor(labels)
    is_float = "float" in keras.backend.standardize_dtype(labels.dtype)
    labels = keras.ops.cast(labels, "float32" if is_float else "int32")
    label_shape, logit_shape = shapes.static_shape(labels), shapes.static_shape(logits)
    if not (len(label_shape) >= 1 and shapes.shapes_match(label_shape, logit_shape[:-1])):
        raise ValueError(
            f"{owner}: `{logits_name}` must be logits of shape (batch, ..., vocab) and "
            f"`{labels_name}` token ids of shape (batch, ...) matching it without the vocab "
            f"axis; got {labels_name} shape {label_shape} and {logits_name} shape {logit_shape}."
        )
    return labels, logits


def check_ids(
    owner: str,
    labels: Any,
    vocab_size: int | None,
    ignore_index: int,
    labels_name: str = "y_true",
) -> None:
    """Raises ``ValueError`` unless ``labels`` are integer ids in ``[0, vocab_size)``.

    ``ignore_index`` is accepted anywhere; a float id with a fraction is
    rejected rather than truncated. A value check of ``core.validation``: it
    reads values on eager calls only, and inside a loss decorated with
    ``validation.checks_values`` on its first eager call only. Unchecked
    (under ``tf.function``, ``jax.jit`` or ``torch.compile``), an id outside
    the vocabulary scores as the safe class 0, zero-weighted like an ignored
    one.
    """
    validation.check_integers(
        owner, labels_name, labels, low=0, high=vocab_size, ignore=ignore_index
    )


def valid_and_safe_labels(labels: Any, ids_in_range: Any, ignore_index: int) -> tuple[Any, Any]:
    """Returns ``(valid, safe_labels)``: a bool mask and ids with 0 at ignored positions."""
    valid = keras.ops.not_equal(labels, ignore_index)
    if ids_in_range is not None:
        valid = keras.ops.logical_and(
            valid, keras.ops.logical_and(labels >= 0, labels < ids_in_range)
        )
    return valid, keras.ops.where(valid, labels, keras.ops.zeros_like(labels))


def softmax_cross_entropy(safe_labels: Any, logits: Any, label_smoothing: float = 0.0) -> Any:
    """Per-token softmax cross-entropy, with Keras' label smoothing.

    ```
    ce = logsumexp(x) - x_y
    smoothed = (1 - s) ce + s (logsumexp(x) - mean_v x_v) = ce + s (x_y - mean_v x_v)
    ```
    """
    return ops.softmax_cross_entropy(safe_labels, logits, label_smoothing=label_smoothing)


def stablemax_cross_entropy(safe_labels: Any, logits: Any) -> Any:
    """Per-token stablemax cross-entropy ``log(sum_v s(x_v)) - log s(x_y)``.

    ``s(x) = x + 1`` for ``x >= 0`` and ``1 / (1 - x)`` for ``x < 0``; ``s``
    grows only linearly, so neither the sum nor its log overflows for logits
    of magnitude 1e4 in float32.
    """
    label_logits = gather_labels(logits, safe_labels)
    return keras.ops.log(keras.ops.sum(stablemax_s(logits), axis=-1)) - log_stablemax_s(
        label_logits
    )


def stablemax_s(x: Any) -> Any:
    """``s(x)``, each branch fed only values where it is finite, so its gradient is too."""
    non_negative = x >= 0
    zeros = keras.ops.zeros_like(x)
    positive_part = keras.ops.where(non_negative, x, zeros)
    negative_part = keras.ops.where(non_negative, zeros, x)
    return keras.ops.where(non_negative, positive_part + 1.0, 1.0 / (1.0 - negative_part))


def log_stablemax_s(x: Any) -> Any:
    """``log s(x)`` as ``log1p(x)`` or ``-log1p(-x)``, exact near 0."""
    non_negative = x >= 0
    zeros = keras.ops.zeros_like(x)
    positive_part = keras.ops.where(non_negative, x, zeros)
    negative_part = keras.ops.where(non_negative, zeros, x)
    return keras.ops.where(
        non_negative, keras.ops.log1p(positive_part), -keras.ops.log1p(-negative_part)
    )


def gather_labels(logits: Any, safe_labels: Any) -> Any:
    """Returns ``logits[..., safe_labels]``, shape of ``safe_labels``."""
    picked = keras.ops.take_along_axis(logits, keras.ops.expand_dims(safe_labels, -1), axis=-1)
    return keras.ops.squeeze(picked, axis=-1)


def row_weights(owner: str, sample_weight: Any | None, batch_size: Any, dtype: str) -> Any:
    """Returns ``sample_weight`` as a ``(B,)`` tensor; ones when it is None.

    Raises:
        ValueError: For a weight that is not a scalar, ``(B,)`` or ``(B, 1)``.
    """
    if sample_weight is None:
        return keras.ops.ones((batch_size,), dtype=dtype)
    weights = keras.ops.cast(keras.ops.convert_to_tensor(sample_weight), dtype)
    shape = shapes.static_shape(weights)
    static_batch = batch_size if isinstance(batch_size, int) else None
    valid = len(shape) == 0 or (
        len(shape) in (1, 2)
        and (shape[0] is None or static_batch is None or shape[0] == static_batch)
        and (len(shape) == 1 or shape[1] in (1, None))
    )
    if not valid:
        raise ValueError(
            f"{owner}: `sample_weight` must have shape (batch,) or (batch, 1); got "
            f"sample_weight shape {shape} for a batch of {batch_size}."
        )
    return keras.ops.broadcast_to(keras.ops.reshape(weights, (-1,)), (batch_size,))


def weighted_token_mean(per_token: Any, valid: Any, weights: Any) -> Any:
    """Mean of ``per_token`` over valid tokens, token of row b counted ``w_b`` times.

    ```
    mean = sum_{b,t} w_b v_bt l_bt / sum_{b,t} w_b v_bt      (0 when nothing is valid)
    ```

    The denominator is averaged over replicas (``tf.distribute``, torch DDP),
    so the replica gradients, averaged as those strategies do, are the
    gradient of the global token mean; with one replica it is unchanged.
    """
    token_weights = keras.ops.cast(valid, per_token.dtype) * expand_to_rank(
        weights, len(per_token.shape)
    )
    total = distributed.all_mean(keras.ops.sum(token_weights))
    return numerics.safe_divide(keras.ops.sum(per_token * token_weights), total)


def weighted_row_mean(per_row: Any, weights: Any) -> Any:
    """``sum_b w_b l_b / sum_b w_b``, 0 for an all-zero weight, replica-averaged like above."""
    total = distributed.all_mean(keras.ops.sum(weights))
    return numerics.safe_divide(keras.ops.sum(per_row * weights), total)


def expand_to_rank(weights: Any, rank: int) -> Any:
    """Reshapes ``(B,)`` weights to ``(B, 1, ..., 1)`` of the given rank."""
    return keras.ops.reshape(weights, (-1,) + (1,) * (rank - 1))
