"""SigLIP's pairwise sigmoid image-text loss, optionally chunked over texts."""

from typing import Any

import keras

from dl_techniques.losses.core import ops, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.self_supervised import _contrastive


@register_serializable
class SigLIPContrastiveLoss(PerSampleLoss):
    """Pairwise sigmoid loss of SigLIP over a batch of B image-text pairs.

    Every image-text pair is an independent binary problem: the B matching
    pairs are positives (``z = +1``), the ``B^2 - B`` others negatives
    (``z = -1``). With similarities ``S``, temperature ``t`` and bias ``b``:

    ```
    logits = t * S + b,    z = 2 I - 1
    loss   = -sum_ij log_sigmoid(z_ij logits_ij) / B     (divided by B, not B^2)
    loss_i = sum_j softplus(logits_ij) - logits_ii         (= image i's row)
    ```

    `y_pred` takes the forms of ``CLIPContrastiveLoss``: a ``(B, B)``
    similarity matrix (rows are images), a dict or 2-tuple
    ``(logits_per_image, logits_per_text)`` of which the first is used, or a
    dict ``{"image_embeddings", "text_embeddings"}`` L2-normalised inside.
    ``bias=None`` leaves out the offset. ``temperature=None`` declares the
    matrix final logits (e.g. from a ``ContrastiveLogitsLayer`` holding the
    learnable ``t = exp(t')`` and ``b``) and requires ``bias=None``: the
    default ``bias=-10`` added to logits that already hold a learned bias
    would shift them silently, so ``SigLIPContrastiveLoss(temperature=None)``
    raises ``ValueError``. To add a fixed bias to logits that carry their own
    scale, pass ``temperature=1.0`` and the bias. `y_true` is ignored.

    ``chunk_size`` scores the texts in blocks of that many columns and sums
    the blocks, so the embeddings form never holds more than a
    ``(B, chunk_size)`` block of logits in the forward pass; the value is
    the same. ``call`` returns ``loss_i``, image ``i``'s row of pairs, so
    ``sample_weight`` weights rows. Under ``tf.distribute`` or torch DDP the
    embeddings form gathers the texts of every replica (with gradient) and
    scores the local images against them, so N replicas train as one device
    with the global batch; a logits matrix is the replica's own batch.

    Reference:
        Zhai, X., Mustafa, B., Kolesnikov, A., & Beyer, L. (2023). Sigmoid
        Loss for Language Image Pre-Training. ICCV.
        (``open_clip.loss.SigLipLoss``, big_vision.)

    Args:
        temperature: Positive float ``t`` multiplying the similarities
            (the paper learns ``t = exp(t')`` from ``t' = log 10``), or
            ``None``. Defaults to 10.0.
        bias: Float ``b`` added to the logits, or ``None``; must be ``None``
            when ``temperature`` is. Defaults to -10.0.
        chunk_size: Positive int, the number of text columns scored at once,
            or ``None`` for one block. Defaults to ``None``.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"siglip_contrastive_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = SigLIPContrastiveLoss(temperature=None, bias=None)
    logits = [[0.0, 0.0], [0.0, 0.0]]  # four pairs of log(2), divided by B = 2
    loss(None, logits)                 # 2 * log(2) = 1.3863

    embeddings = {
        "image_embeddings": keras.random.normal((8, 16)),
        "text_embeddings": keras.random.normal((8, 16)),
    }
    SigLIPContrastiveLoss(chunk_size=4)(None, embeddings)
    ```
    """

    def __init__(
        self,
        temperature: float | None = 10.0,
        bias: float | None = -10.0,
        chunk_size: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str = "siglip_contrastive_loss",
        dtype: Any = None,
    ) -> None:
        if temperature is not None:
            validation.check_positive("SigLIPContrastiveLoss", "temperature", temperature)
        if bias is not None and not validation.is_real_number(bias):
            raise ValueError(
                f"SigLIPContrastiveLoss: `bias` must be a finite number or None; got bias={bias!r}."
            )
        if temperature is None and bias is not None:
            # temperature=None declares y_pred final logits, which (from a
            # ContrastiveLogitsLayer) may already hold a learnable bias; the
            # default -10 added on top would shift them silently.
            raise ValueError(
                "SigLIPContrastiveLoss: `bias` must be None when `temperature` is None, "
                "since y_pred is then used as final logits (e.g. from "
                "ContrastiveLogitsLayer, which holds its own bias); got temperature=None "
                f"and bias={bias!r}. Pass bias=None, or temperature=1.0 to add a fixed "
                "bias to logits that already carry their scale."
            )
        if chunk_size is not None:
            validation.check_positive_int("SigLIPContrastiveLoss", "chunk_size", chunk_size)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = None if temperature is None else float(temperature)
        self.bias = None if bias is None else float(bias)
        self.chunk_size = None if chunk_size is None else int(chunk_size)

    # Keras' Loss.__call__ converts y_true to a tensor, which fails for the ignored None.
    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        return super().__call__(_contrastive.ignored_target(y_true), y_pred, sample_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        batch = _contrastive.parse_prediction(type(self).__name__, y_pred, need_text_rows=False)
        positives = self._logits(batch.positives)
        if batch.from_embeddings:
            columns = batch.texts
        else:
            columns = keras.ops.transpose(batch.image_rows)
        return self._row_softplus_sum(batch.image, columns) - positives

    def _logits(self, similarities):
        if self.temperature is not None:
            similarities = similarities * self.temperature
        if self.bias is not None:
            similarities = similarities + self.bias
        return similarities

    def _row_softplus_sum(self, image, columns):
        """``sum_j softplus(logits_ij)`` for each row, over blocks of columns.

        ``columns`` holds one column per row: the text embeddings ``(N, D)``
        scored against ``image``, or the transposed similarity matrix when
        ``image`` is ``None``.
        """
        chunk, total_columns = self.chunk_size, columns.shape[0]
        if chunk is None or total_columns is None or total_columns <= chunk:
            # A batch size known only at run time (TensorFlow traces `fit`
            # with an unknown batch) is scored in one block: a loop over a
            # run-time block count has no gradient under XLA.
            similarities = keras.ops.transpose(columns)
            if image is not None:
                similarities = keras.ops.matmul(image, similarities)
            return self._softplus_row_sum(similarities)
        if image is not None:
            return ops.blockwise_softplus_sums(image, columns, self.temperature, self.bias, chunk)
        # Recomputing each block in the backward pass keeps its (B, chunk)
        # softplus terms out of the saved activations. The block count is
        # static: one traced block per chunk.
        recomputed = keras.remat(lambda block: self._softplus_row_sum(keras.ops.transpose(block)))
        total = None
        for start in range(0, total_columns, chunk):
            block = recomputed(columns[start : start + chunk])
            total = block if total is None else total + block
        return total

    def _softplus_row_sum(self, similarities):
        return keras.ops.sum(keras.ops.softplus(self._logits(similarities)), axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "temperature": self.temperature,
            "bias": self.bias,
            "chunk_size": self.chunk_size,
        }
