"""Supervised contrastive loss (SupCon, L_out): every sample of the same label is a positive."""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops, validation
from dl_techniques.losses.core.distributed import all_gather, all_mean
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.core.shapes import check_same_batch, static_shape
from dl_techniques.losses.self_supervised import _contrastive

_OWNER = "SupConLoss"


@register_serializable
class SupConLoss(PerSampleLoss):
    """Supervised contrastive loss of Khosla et al. (L_out, the authors' SupContrast form).

    The ``B x V`` embeddings (``V`` views of ``B`` samples) are L2-normalised
    and every one of them is an anchor. With ``s_ia = z_i . z_a / tau`` and
    ``P(i)`` the other embeddings whose sample shares a label with anchor
    ``i``'s (``i`` itself excluded; the other views of ``i``'s sample
    included):

    ```
    L_i  = -(tau / base_tau) * mean_{p in P(i)} log( exp(s_ip) / sum_{a != i} exp(s_ia) )
    loss = mean of L_i over the anchors with P(i) non-empty
    ```

    The denominator runs over every other embedding, positives included.
    Anchors without a positive are left out of the mean; when no anchor has
    one the loss is 0, with zero gradient (NaN in `y_pred` still gives NaN).
    The logsumexp subtracts each row's maximum, as the authors' code does.

    `y_true` holds the labels: integers ``(B,)`` (or ``(B, 1)``), or
    multi-hot ``(B, C)`` with entries 0 and 1, where two samples are
    positives when they share at least one label (a sample with no label has
    no positive, not even its own other views). `y_pred` holds embeddings
    ``(B, D)``, or views ``(B, V, D)``. ``call`` returns one value per sample,
    shape ``(B,)``: the mean of its ``V`` anchors' ``L_i``, each multiplied by
    ``B V / |A|`` with ``|A|`` the number of anchors that have a positive
    (and 0 for those that have none), so that the mean over the batch is the
    loss above. Where every anchor has a positive (``V >= 2``, or every label
    appearing at least twice) the factor is 1. ``sample_weight`` weights these
    per-sample values; the other samples still count in every denominator.

    Under ``tf.distribute`` and torch DDP every replica gathers the other
    replicas' embeddings (with gradient) and labels, and returns the values
    of its own samples against the global batch, ``|A|`` counted over the
    global batch, so N replicas train as one device on the global batch;
    under ``keras.distribution`` on jax the loss sees the global batch. With
    ``chunk_size`` the candidates are scored in blocks of that many
    embeddings, each recomputed in the backward pass, so memory is
    O(B V x chunk) instead of O((B V)^2), with the same value.

    Reference:
        Khosla, P., Teterwak, P., Wang, C., Sarna, A., Tian, Y., Isola, P.,
        Maschinot, A., Liu, C., & Krishnan, D. (2020). Supervised Contrastive
        Learning. NeurIPS. https://arxiv.org/abs/2004.11362

    Args:
        temperature: Positive float ``tau`` dividing the cosine similarities.
            Defaults to 0.07.
        base_temperature: Positive float; the loss is scaled by
            ``temperature / base_temperature``. Defaults to 0.07.
        chunk_size: Positive int, the number of candidate embeddings scored
            at once, or ``None`` for one block. Defaults to ``None``.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"supcon_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = SupConLoss(temperature=1.0, base_temperature=1.0)
    embeddings = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    loss([0, 0, 1], embeddings)  # anchors 0 and 1: -log(e / (e + 1)) = 0.3133
    views = keras.random.normal((8, 2, 16))  # 8 samples, 2 views each
    SupConLoss(chunk_size=4)(keras.ops.arange(8) % 3, views)
    ```
    """

    def __init__(
        self,
        temperature: float = 0.07,
        base_temperature: float = 0.07,
        chunk_size: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str = "supcon_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_positive(_OWNER, "temperature", temperature)
        validation.check_positive(_OWNER, "base_temperature", base_temperature)
        if chunk_size is not None:
            validation.check_positive_int(_OWNER, "chunk_size", chunk_size)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = float(temperature)
        self.base_temperature = float(base_temperature)
        self.chunk_size = None if chunk_size is None else int(chunk_size)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        if y_true is None:
            raise ValueError(
                f"{_OWNER}: `y_true` must hold the labels, integers (B,) or multi-hot (B, C); "
                "got None."
            )
        return super().__call__(y_true, y_pred, sample_weight)

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels, embeddings = _labels_and_views(y_true, y_pred)
        samples, views, features = (_size(embeddings, axis) for axis in range(3))
        embeddings = ops.l2_normalize(embeddings)
        # One row per sample, gathered once: its views' embeddings, then its labels.
        rows = keras.ops.concatenate(
            [keras.ops.reshape(embeddings, (-1, views * features)), labels], axis=-1
        )
        gathered = all_gather(rows)
        anchors = keras.ops.reshape(embeddings, (-1, features))
        anchor_labels = keras.ops.repeat(labels, views, axis=0)
        candidates = keras.ops.reshape(gathered[:, : views * features], (-1, features))
        candidate_labels = keras.ops.repeat(gathered[:, views * features :], views, axis=0)
        local_anchors = samples * views
        own_columns = _contrastive.local_block(rows, gathered) * local_anchors
        own_columns = own_columns + keras.ops.arange(local_anchors, dtype="int32")

        temperature, multi_hot = self.temperature, labels.shape[-1] != 1

        def block_statistics(block, block_labels, start, anchors, anchor_labels, own_columns):
            own = _contrastive.own_column_mask(start, keras.ops.shape(block)[0], own_columns)
            logits = keras.ops.matmul(anchors, keras.ops.transpose(block)) / temperature
            logits = keras.ops.where(own, _contrastive.MASKED_LOGIT, logits)
            if multi_hot:
                shared = keras.ops.matmul(anchor_labels, keras.ops.transpose(block_labels)) > 0
            else:
                shared = keras.ops.equal(anchor_labels, keras.ops.transpose(block_labels))
            positive = keras.ops.logical_and(shared, keras.ops.logical_not(own))
            positive_logits = keras.ops.where(positive, logits, keras.ops.zeros_like(logits))
            return keras.ops.stack(
                [
                    keras.ops.logsumexp(logits, axis=-1),
                    keras.ops.sum(positive_logits, axis=-1),
                    keras.ops.sum(keras.ops.cast(positive, logits.dtype), axis=-1),
                ]
            )

        arguments = (anchors, anchor_labels, own_columns)
        total_columns = candidates.shape[0]
        if self.chunk_size is None or total_columns is None or total_columns <= self.chunk_size:
            # One block, also for a batch known only at run time (TensorFlow
            # traces `fit` with an unknown batch size).
            statistics = block_statistics(candidates, candidate_labels, 0, *arguments)
        else:
            statistics = _contrastive.reduce_column_blocks(
                block_statistics,
                (candidates, candidate_labels),
                self.chunk_size,
                _merge_block_statistics,
                *arguments,
            )
        log_normalizer, positive_sum, positive_count = keras.ops.unstack(statistics)
        has_positive = positive_count > 0
        anchor_losses = (self.temperature / self.base_temperature) * (
            log_normalizer - positive_sum / keras.ops.maximum(positive_count, 1.0)
        )
        # 0 * loss rather than 0, so that NaN in the embeddings stays NaN.
        anchor_losses = keras.ops.where(has_positive, anchor_losses, 0.0 * anchor_losses)
        share = all_mean(keras.ops.mean(keras.ops.cast(has_positive, anchor_losses.dtype)))
        anchor_losses = anchor_losses / keras.ops.where(share > 0, share, 1.0)
        return keras.ops.mean(keras.ops.reshape(anchor_losses, (-1, views)), axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "temperature": self.temperature,
            "base_temperature": self.base_temperature,
            "chunk_size": self.chunk_size,
        }


def _labels_and_views(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Returns labels ``(B, 1)`` or ``(B, C)`` and embeddings ``(B, V, D)``, checked.

    Half-precision embeddings are upcast to float32, the labels cast to the
    embeddings' dtype.
    """
    embeddings = numerics.upcast_half(keras.ops.convert_to_tensor(y_pred))
    labels = keras.ops.convert_to_tensor(y_true)
    embedding_shape, label_shape = static_shape(embeddings), static_shape(labels)
    if len(embedding_shape) not in (2, 3):
        raise ValueError(
            f"{_OWNER}: `y_pred` must be embeddings of shape (B, D) or views of shape "
            f"(B, V, D); got y_pred shape {embedding_shape}."
        )
    if len(label_shape) not in (1, 2):
        raise ValueError(
            f"{_OWNER}: `y_true` must be integer labels of shape (B,) or multi-hot labels "
            f"of shape (B, C); got y_true shape {label_shape} for y_pred shape "
            f"{embedding_shape}."
        )
    check_same_batch(_OWNER, {"y_true": labels, "y_pred": embeddings})
    if len(label_shape) == 1 or label_shape[-1] == 1:
        validation.check_integers(_OWNER, "y_true", labels)
        labels = keras.ops.reshape(labels, (-1, 1))
    else:
        validation.check_binary(_OWNER, "y_true", labels, what="multi-hot labels")
    if len(embedding_shape) == 2:
        embeddings = keras.ops.expand_dims(embeddings, axis=1)
    return numerics.as_float(labels, embeddings), embeddings


def _size(tensor: Any, axis: int) -> Any:
    """The length of ``axis``: static where known, else a tensor."""
    size = tensor.shape[axis]
    return keras.ops.shape(tensor)[axis] if size is None else size


def _merge_block_statistics(total: Any, block: Any) -> Any:
    """Merges ``(log normaliser, positive logit sum, positive count)`` of two column blocks."""
    return keras.ops.concatenate(
        [keras.ops.logaddexp(total[:1], block[:1]), total[1:] + block[1:]], axis=0
    )
