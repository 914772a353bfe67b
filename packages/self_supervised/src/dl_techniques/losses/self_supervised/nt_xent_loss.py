"""SimCLR's normalised-temperature cross-entropy (NT-Xent, InfoNCE over two views)."""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops, validation
from dl_techniques.losses.core.distributed import all_gather, replica_count
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.core.shapes import shapes_match, static_shape
from dl_techniques.losses.self_supervised import _contrastive

VIEWS = ("view1", "view2")


@register_serializable
class NTXentLoss(PerSampleLoss):
    """NT-Xent loss of SimCLR: each view must find its other view among 2B - 1 candidates.

    With ``z`` the 2B L2-normalised embeddings of B samples seen twice
    (``z_i`` and ``z_{i+B}`` are the two views of sample ``i``), ``s_ij =
    z_i . z_j / temperature`` and ``p(a)`` the other view of anchor ``a``:

    ```
    l_a  = -log( exp(s_{a p(a)}) / sum_{k != a} exp(s_ak) )
    loss = mean over the 2B anchors of l_a
    ```

    Each anchor has one positive and 2B - 2 negatives (every embedding of
    the other samples, in both views). This equals pytorch-metric-learning's
    ``NTXentLoss`` with labels ``[0..B-1, 0..B-1]``.

    `y_pred` is a dict ``{"view1", "view2"}`` of ``(B, D)`` embeddings, or
    one ``(2B, D)`` tensor stacked ``[view1; view2]``; embeddings are
    L2-normalised inside. `y_true` is ignored. ``call`` returns one value per
    sample of the input: ``(B,)`` means of the two anchors of each pair for
    the dict form, ``(2B,)`` anchor values for the stacked form, so
    ``sample_weight`` weights pairs (resp. anchors); their negatives still
    count in the other rows.

    Under ``tf.distribute`` and torch DDP every replica gathers the other
    replicas' embeddings (with gradient) and returns the values of its own
    anchors against the global batch, so N replicas train as one device on
    the global batch; under ``keras.distribution`` on jax the loss sees the
    global batch. With ``chunk_size`` the candidates are scored in blocks of
    that many columns, each recomputed in the backward pass, so memory is
    O(B x chunk) instead of O(B^2).

    Reference:
        Chen, T., Kornblith, S., Norouzi, M., & Hinton, G. (2020). A Simple
        Framework for Contrastive Learning of Visual Representations. ICML.
        https://arxiv.org/abs/2002.05709

    Args:
        temperature: Positive float dividing the cosine similarities.
            Defaults to 0.5.
        chunk_size: Positive int, the number of candidate columns scored at
            once, or ``None`` for one block. Defaults to ``None``.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"nt_xent_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = NTXentLoss(temperature=1.0)
    views = {"view1": [[1.0, 0.0], [0.0, 1.0]], "view2": [[1.0, 0.0], [0.0, 1.0]]}
    loss(None, views)  # -log(e / (e + 1 + 1)) = 0.5514
    NTXentLoss(chunk_size=2)(None, keras.random.normal((8, 16)))  # stacked views
    ```
    """

    def __init__(
        self,
        temperature: float = 0.5,
        chunk_size: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str = "nt_xent_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_positive("NTXentLoss", "temperature", temperature)
        if chunk_size is not None:
            validation.check_positive_int("NTXentLoss", "chunk_size", chunk_size)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = float(temperature)
        self.chunk_size = None if chunk_size is None else int(chunk_size)

    # Keras' Loss.__call__ converts y_true to a tensor, which fails for the ignored None.
    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        return super().__call__(_contrastive.ignored_target(y_true), y_pred, sample_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        stacked = not isinstance(y_pred, dict)
        first, second = two_views("NTXentLoss", y_pred)
        first = ops.l2_normalize(first)
        second = ops.l2_normalize(second)
        anchors = keras.ops.concatenate([first, second], axis=0)
        gathered_first = all_gather(first)
        candidates = keras.ops.concatenate([gathered_first, all_gather(second)], axis=0)
        own_columns, total = _own_columns(first, gathered_first)
        total_columns = candidates.shape[0]
        if self.chunk_size is None or total_columns is None or total_columns <= self.chunk_size:
            # One block (also for a batch known only at run time: TensorFlow
            # traces `fit` with an unknown batch): one fused cross-entropy.
            logits = _contrastive.masked_logits(
                anchors, candidates, 0, own_columns, self.temperature
            )
            positive_columns = keras.ops.concatenate(
                [own_columns[: local_count(first)] + total, own_columns[: local_count(first)]]
            )
            losses = ops.softmax_cross_entropy(positive_columns, logits)
        else:
            positives = keras.ops.sum(first * second, axis=-1) / self.temperature
            positives = keras.ops.concatenate([positives, positives], axis=0)
            chunked = self._chunked_logsumexp(anchors, candidates, own_columns, self.chunk_size)
            losses = chunked - positives
        if stacked:
            return losses
        local = local_count(first)
        return 0.5 * (losses[:local] + losses[local:])

    def _chunked_logsumexp(self, anchors, candidates, own_columns, chunk_size: int):
        """``logsumexp_k s_ak`` over every candidate but the anchor itself, in column blocks.

        Each block is recomputed in the backward pass, so neither pass holds
        more than ``(2b, chunk_size)`` logits.
        """
        temperature = self.temperature

        def block_logsumexp(block, start, anchors, own_columns):
            logits = _contrastive.masked_logits(anchors, block, start, own_columns, temperature)
            return keras.ops.logsumexp(logits, axis=-1)

        return _contrastive.reduce_column_blocks(
            block_logsumexp, (candidates,), chunk_size, keras.ops.logaddexp, anchors, own_columns
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "temperature": self.temperature,
            "chunk_size": self.chunk_size,
        }


def two_views(owner: str, y_pred: Any) -> tuple[Any, Any]:
    """Returns the two ``(B, D)`` views of a ``{"view1", "view2"}`` dict or a stacked tensor.

    Half-precision inputs are upcast to float32; shapes are checked statically.
    """
    if isinstance(y_pred, dict):
        if set(y_pred) != set(VIEWS):
            raise ValueError(
                f"{owner}: a dict `y_pred` must have the keys {list(VIEWS)}; got keys "
                f"{sorted(y_pred)}."
            )
        first = numerics.upcast_half(keras.ops.convert_to_tensor(y_pred["view1"]))
        second = numerics.as_float(
            numerics.upcast_half(keras.ops.convert_to_tensor(y_pred["view2"])), first
        )
        first_shape, second_shape = static_shape(first), static_shape(second)
        if len(first_shape) != 2 or not shapes_match(first_shape, second_shape):
            raise ValueError(
                f"{owner}: `view1` and `view2` must both have shape (B, D); got view1 shape "
                f"{first_shape} and view2 shape {second_shape}."
            )
        return first, second
    stacked = numerics.upcast_half(keras.ops.convert_to_tensor(y_pred))
    shape = static_shape(stacked)
    if len(shape) != 2 or (shape[0] is not None and shape[0] % 2):
        raise ValueError(
            f"{owner}: a tensor `y_pred` must have shape (2B, D), the two views stacked "
            f'[view1; view2], or be a dict {{"view1", "view2"}} of (B, D); got shape {shape}.'
        )
    first, second = keras.ops.split(stacked, 2, axis=0)
    return first, second


def local_count(first: Any) -> Any:
    """The number of local samples (static where known, else a tensor)."""
    count = first.shape[0]
    return keras.ops.shape(first)[0] if count is None else count


def _own_columns(first: Any, gathered_first: Any) -> tuple[Any, Any]:
    """Returns, per anchor, the candidate column holding the anchor itself, and ``N``.

    Anchors are ``[view1; view2]`` of the local ``b`` samples; candidates are
    ``[view1; view2]`` of the ``N = R b`` gathered samples, in replica order,
    the local samples in the block that ``_contrastive.local_block`` finds.
    """
    local = local_count(first)
    rows = keras.ops.arange(local, dtype="int32")
    total = replica_count() * local
    own = _contrastive.local_block(first, gathered_first) * local + rows
    return keras.ops.concatenate([own, own + total], axis=0), total
