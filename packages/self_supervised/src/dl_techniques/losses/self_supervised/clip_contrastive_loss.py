"""CLIP's symmetric image-text contrastive loss."""

from typing import Any

import keras

from dl_techniques.losses.core import ops, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.self_supervised import _contrastive


@register_serializable
class CLIPContrastiveLoss(PerSampleLoss):
    """Symmetric InfoNCE loss of CLIP over a batch of B image-text pairs.

    Sample ``i``'s image should match text ``i`` and no other text of the
    batch, and the other way round. With similarities ``S = I T^T`` divided by
    the temperature, and cross-entropy ``CE`` against the labels
    ``arange(B)`` smoothed as Keras does (``(1 - e) one_hot + e / B``):

    ```
    logits_per_image = S / temperature,  logits_per_text = logits_per_image^T
    loss_i = (CE(logits_per_image[i], i) + CE(logits_per_text[i], i)) / 2
    loss   = mean_i loss_i
    ```

    `y_pred` takes one of four forms:

    - a ``(B, B)`` matrix, read as ``logits_per_image``; ``logits_per_text``
      is its transpose;
    - a dict ``{"logits_per_image", "logits_per_text"}`` or a 2-tuple of them;
    - a dict ``{"image_embeddings", "text_embeddings"}`` of ``(B, D)``
      embeddings, L2-normalised inside, ``S = I T^T``.

    Every form is divided by ``temperature``; pass ``temperature=None`` when
    the model applies its own logit scale (e.g. ``ContrastiveLogitsLayer``),
    and the matrices are used as they are. `y_true` is ignored: pass nothing
    or any dummy array with a batch axis.

    ``call`` returns ``loss_i`` per sample, so ``sample_weight`` weights
    sample ``i``'s two cross-entropy terms (its negatives still count in the
    other rows). With the embeddings form under ``tf.distribute`` or torch
    DDP, every replica gathers the other replicas' embeddings (with gradient)
    and returns the values of its own samples against the global batch, so N
    replicas train as one device with the global batch. A logits matrix
    cannot be gathered: under those engines it is the replica's own batch.
    Under ``keras.distribution`` on jax the loss sees the global batch in
    every form.

    Reference:
        Radford, A., et al. (2021). Learning Transferable Visual Models From
        Natural Language Supervision. ICML. (``open_clip.loss.ClipLoss``.)

    Args:
        temperature: Positive float dividing the similarities, or ``None`` to
            use them as logits. Defaults to 0.07.
        label_smoothing: Float in ``[0, 1)``, Keras label smoothing of the
            ``arange(B)`` labels. Defaults to 0.0.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"clip_contrastive_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = CLIPContrastiveLoss(temperature=None)
    logits = [[2.0, 0.0], [0.0, 2.0]]  # each CE = log(1 + e^-2) = 0.1269
    loss(None, logits)                 # 0.1269

    embeddings = {
        "image_embeddings": keras.random.normal((8, 16)),
        "text_embeddings": keras.random.normal((8, 16)),
    }
    CLIPContrastiveLoss(temperature=0.07)(None, embeddings)
    ```
    """

    def __init__(
        self,
        temperature: float | None = 0.07,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "clip_contrastive_loss",
        dtype: Any = None,
    ) -> None:
        if temperature is not None:
            validation.check_positive("CLIPContrastiveLoss", "temperature", temperature)
        if not validation.is_real_number(label_smoothing) or not 0 <= label_smoothing < 1:
            raise ValueError(
                "CLIPContrastiveLoss: `label_smoothing` must be a number in [0, 1); "
                f"got label_smoothing={label_smoothing!r}."
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = None if temperature is None else float(temperature)
        self.label_smoothing = float(label_smoothing)

    # Keras' Loss.__call__ converts y_true to a tensor, which fails for the ignored None.
    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        return super().__call__(_contrastive.ignored_target(y_true), y_pred, sample_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        batch = _contrastive.parse_prediction(type(self).__name__, y_pred, need_text_rows=True)
        inverse_temperature = 1.0 if self.temperature is None else 1.0 / self.temperature
        image_rows = _scaled(batch.image_rows, inverse_temperature)
        if batch.own_on_diagonal:
            # Sample i's pair is column i: the labels are arange(B), and the
            # cross-entropy is the fused kernel of core.ops.
            labels = keras.ops.arange(keras.ops.shape(image_rows)[0], dtype="int32")
            text_rows = keras.ops.transpose(image_rows)
            if batch.text_rows is not None:
                text_rows = _scaled(batch.text_rows, inverse_temperature)
            smoothing = self.label_smoothing
            image_loss = ops.softmax_cross_entropy(labels, image_rows, label_smoothing=smoothing)
            text_loss = ops.softmax_cross_entropy(labels, text_rows, label_smoothing=smoothing)
            return 0.5 * (image_loss + text_loss)
        # A replica's own rows against the global batch (embeddings under
        # tf.distribute or torch DDP): the own pair is scored locally, and
        # its column among the gathered ones is never needed.
        positives = _scaled(batch.positives, inverse_temperature)
        text_rows = _scaled(batch.text_rows, inverse_temperature)
        image_loss = self._smoothed_cross_entropy(image_rows, positives)
        text_loss = self._smoothed_cross_entropy(text_rows, positives)
        return 0.5 * (image_loss + text_loss)

    def _smoothed_cross_entropy(self, scores, positives):
        # -sum_j y_j log_softmax_j with y = (1 - e) one_hot + e / N over the
        # N global columns, from the positive's score alone.
        cross_entropy = keras.ops.logsumexp(scores, axis=-1) - positives
        if self.label_smoothing == 0.0:
            return cross_entropy
        entries = keras.ops.cast(keras.ops.shape(scores)[-1], scores.dtype)
        mean_logit = keras.ops.sum(scores, axis=-1) / entries
        return cross_entropy + self.label_smoothing * (positives - mean_logit)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "temperature": self.temperature,
            "label_smoothing": self.label_smoothing,
        }


def _scaled(values: Any, factor: float) -> Any:
    return values if factor == 1.0 else values * factor
