"""Next-token cross-entropy over the valid tokens of a batch, as nanoVLM trains with."""

from typing import Any

import keras

from dl_techniques.losses.core import shapes, validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.generative import _language


@register_serializable
class NanoVLMLoss(BatchLoss):
    """Next-token cross-entropy, averaged over the valid tokens of the batch.

    With logits ``x`` of shape ``(B, L, V)``, token ids ``y`` of shape
    ``(B, L)``, smoothing ``s`` and sample weights ``w`` (1 without
    ``sample_weight``), position ``t`` is scored against the id that follows
    it when ``shift=True`` (``x[:, :-1]`` against ``y[:, 1:]``) and against
    ``y[:, t]`` itself when ``shift=False``:

    ```
    ce_bt = logsumexp(x_bt) - x_bt[y] + s (x_bt[y] - mean_v x_bt[v])
    valid_bt = (target id of position t != ignore_index)
    loss = sum_bt w_b valid_bt ce_bt / sum_bt w_b valid_bt      (0 if no token is valid)
    ```

    The smoothing term is Keras' ``label_smoothing``: the one-hot target is
    replaced by ``(1 - s) one_hot + s / V``.

    Ignored ids never reach the cross-entropy op: their positions are
    scored against the safe id 0 and then weighted 0, so ``-100`` yields no
    NaN in the value or the gradient on any backend, and a batch with no
    valid token gives 0. Scored ids outside ``[0, V)`` other than
    ``ignore_index``, and float ids with a fraction (1.5 is not truncated to
    1), raise ``ValueError`` on the first eager call of an instance (every
    eager call with ``DL_LOSSES_VALIDATE=always``); with ``shift=True`` the
    first id of a row is never scored. Integer-valued float ids are fine.
    Under ``jit`` nothing is read, and an id outside ``[0, V)`` counts as
    ignored.

    The loss is batch-level and reduces once, itself: it returns the scalar
    token mean, so ``reduction`` has no effect, and ``sample_weight``
    (shape ``(B,)`` or ``(B, 1)``) weights every token of its row inside the
    mean: an integer weight ``k`` equals repeating the row ``k`` times, 0
    drops it. Keras masks are not read; mark padding with ``ignore_index``.
    Float16/bfloat16 logits are computed in float32.

    Reference:
        Wiedmann, L., Roy Gosthipaty, A., Marafioti, A. et al. (2025).
        nanoVLM: the simplest repository to train your VLM in pure PyTorch.
        Hugging Face, https://github.com/huggingface/nanoVLM

    Args:
        ignore_index: Int; label id that marks positions without a target
            (padding, image and prompt tokens). Defaults to -100.
        label_smoothing: Float in [0, 1]; Keras-style smoothing of the
            one-hot target. Defaults to 0.0.
        shift: Bool; whether logits at position t predict the label at
            t + 1 (causal language modelling). Defaults to True.
        reduction: Accepted for Keras compatibility; no effect.
        name: Name of the loss instance. Defaults to ``"nano_vlm_loss"``.
        dtype: Dtype of the returned value. Defaults to
            ``keras.backend.floatx()``.

    Example:

    ```python
    loss = NanoVLMLoss()
    labels = [[3, 1, -100]]              # only position 0 -> id 1 is scored
    logits = keras.ops.zeros((1, 3, 4))  # uniform over 4 ids
    loss(labels, logits)                 # log(4) = 1.3863
    ```
    """

    def __init__(
        self,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        shift: bool = True,
        reduction: str | None = "sum_over_batch_size",
        name: str = "nano_vlm_loss",
        dtype: Any = None,
    ) -> None:
        ignore_index = _language.check_ignore_index("NanoVLMLoss", ignore_index)
        validation.check_interval("NanoVLMLoss", "label_smoothing", label_smoothing, 0.0, 1.0)
        validation.check_bool("NanoVLMLoss", "shift", shift)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.ignore_index = ignore_index
        self.label_smoothing = float(label_smoothing)
        self.shift = shift

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        labels, logits = _language.token_inputs("NanoVLMLoss", y_true, y_pred, self.compute_dtype)
        if len(labels.shape) != 2:
            raise ValueError(
                "NanoVLMLoss: `y_true` must have shape (batch, length) and `y_pred` shape "
                f"(batch, length, vocab); got y_true shape {shapes.static_shape(labels)} "
                f"and y_pred shape {shapes.static_shape(logits)}."
            )
        vocab_size = logits.shape[-1]
        if self.shift:
            # Only the ids from position 1 on are scored; the check names that slice.
            _language.check_ids(
                "NanoVLMLoss", labels[:, 1:], vocab_size, self.ignore_index, "y_true[:, 1:]"
            )
        else:
            _language.check_ids("NanoVLMLoss", labels, vocab_size, self.ignore_index)
        labels = keras.ops.cast(labels, "int32")
        if self.shift:
            # Shifting the labels left (and ignoring the last position) scores
            # x[:, :-1] against y[:, 1:] without copying the large logits.
            padding = keras.ops.full_like(labels[:, :1], self.ignore_index)
            labels = keras.ops.concatenate([labels[:, 1:], padding], axis=1)
        in_range = vocab_size if vocab_size is not None else keras.ops.shape(logits)[-1]
        valid, safe_labels = _language.valid_and_safe_labels(labels, in_range, self.ignore_index)
        per_token = _language.softmax_cross_entropy(safe_labels, logits, self.label_smoothing)
        weights = _language.row_weights(
            "NanoVLMLoss", sample_weight, keras.ops.shape(labels)[0], per_token.dtype
        )
        return _language.weighted_token_mean(per_token, valid, weights)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "ignore_index": self.ignore_index,
            "label_smoothing": self.label_smoothing,
            "shift": self.shift,
        }
