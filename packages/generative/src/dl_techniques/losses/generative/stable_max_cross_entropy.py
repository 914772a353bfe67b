"""Cross-entropy under stablemax, the softmax replacement of the HRM and grokking papers."""

from typing import Any

import keras

from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.generative import _language


@register_serializable
class StableMaxCrossEntropy(BatchLoss):
    """Stablemax cross-entropy, averaged over the valid tokens of the batch.

    Stablemax replaces the exponential of softmax by a function that grows
    linearly for positive logits and decays like ``1 / |x|`` for negative
    ones, so large logits neither overflow nor collapse the probabilities to
    exactly 0 or 1:

    ```
    s(x) = x + 1          (x >= 0)
           1 / (1 - x)    (x < 0)
    p_v = s(x_v) / sum_u s(x_u)
    ce_t = log(sum_u s(x_tu)) - log s(x_t[y_t])
    loss = sum_bt w_b valid_bt ce_bt / sum_bt w_b valid_bt    (0 if no token is valid)
    ```

    ``log s`` is computed as ``log1p(x)`` or ``-log1p(-x)``, in float32 for
    float16/bfloat16 logits; the value and gradient stay finite for logits of
    magnitude 1e4 and beyond. ``valid_bt`` is 0 where the label equals
    ``ignore_index``; those positions are scored against the safe id 0 and
    weighted 0, so the ignored id never indexes the logits. Ids outside
    ``[0, V)`` other than ``ignore_index``, and float ids with a fraction,
    raise ``ValueError`` on the first eager call of an instance (every eager
    call with ``DL_LOSSES_VALIDATE=always``); under ``jit`` nothing is read
    and an id outside ``[0, V)`` counts as ignored.

    Logits are ``(B, ..., V)`` and labels ``(B, ...)``: ``(B, V)`` with
    ``(B,)`` for classification, ``(B, L, V)`` with ``(B, L)`` for tokens.
    The loss is batch-level and returns the scalar token mean, so
    ``reduction`` has no effect and ``sample_weight`` (shape ``(B,)`` or
    ``(B, 1)``) weights every token of its row inside the mean: an integer
    weight ``k`` equals repeating the row ``k`` times.

    Reference:
        Prieto, L., Barsbey, M., Mediano, P. A. M., Birdal, T. (2025).
        Grokking at the Edge of Numerical Stability. ICLR 2025.
        https://arxiv.org/abs/2501.04697

    Args:
        ignore_index: Int; label id of positions without a target.
            Defaults to -100.
        reduction: Accepted for Keras compatibility; no effect.
        name: Name of the loss instance. Defaults to
            ``"stable_max_cross_entropy"``.
        dtype: Dtype of the returned value. Defaults to
            ``keras.backend.floatx()``.

    Example:

    ```python
    loss = StableMaxCrossEntropy()
    # s = (2, 1, 0.5), p_0 = 2 / 3.5, loss = log(3.5 / 2) = 0.5596
    loss([0], [[1.0, 0.0, -1.0]])
    ```
    """

    def __init__(
        self,
        ignore_index: int = -100,
        reduction: str | None = "sum_over_batch_size",
        name: str = "stable_max_cross_entropy",
        dtype: Any = None,
    ) -> None:
        ignore_index = _language.check_ignore_index("StableMaxCrossEntropy", ignore_index)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.ignore_index = ignore_index

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        owner = "StableMaxCrossEntropy"
        labels, logits = _language.token_inputs(owner, y_true, y_pred, self.compute_dtype)
        vocab_size = logits.shape[-1]
        _language.check_ids(owner, labels, vocab_size, self.ignore_index)
        labels = keras.ops.cast(labels, "int32")
        in_range = vocab_size if vocab_size is not None else keras.ops.shape(logits)[-1]
        valid, safe_labels = _language.valid_and_safe_labels(labels, in_range, self.ignore_index)
        per_token = _language.stablemax_cross_entropy(safe_labels, logits)
        weights = _language.row_weights(
            owner, sample_weight, keras.ops.shape(labels)[0], per_token.dtype
        )
        return _language.weighted_token_mean(per_token, valid, weights)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "ignore_index": self.ignore_index,
        }
