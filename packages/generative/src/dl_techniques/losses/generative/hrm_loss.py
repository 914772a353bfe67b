"""The Hierarchical Reasoning Model loss: token cross-entropy plus halting Q-learning terms."""

from typing import Any

import keras

from dl_techniques.losses.core import ops, shapes, validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.generative import _language

_TRUE_KEYS = ("labels", "target_q_continue")
_PRED_KEYS = ("logits", "q_halt_logits", "q_continue_logits")


@register_serializable
class HRMLoss(BatchLoss):
    """Language-model loss plus the two adaptive-halting Q losses of HRM.

    With token ids ``y`` ``(B, L)``, logits ``x`` ``(B, L, V)``, halting
    logits ``h`` and ``c`` ``(B,)``, the Q-learning target ``g`` ``(B,)`` in
    [0, 1] and sample weights ``w`` (1 without ``sample_weight``):

    ```
    valid_bt   = (y_bt != ignore_index)
    correct_b  = all_t (not valid_bt or argmax_v x_btv == y_bt)
    lm         = sum_bt w_b valid_bt ce(x_bt, y_bt) / sum_bt w_b valid_bt
    bce(z, q)  = softplus(z) - q z
    q_halt     = sum_b w_b bce(h_b, correct_b) / sum_b w_b
    q_continue = sum_b w_b bce(c_b, g_b) / sum_b w_b
    loss = lm + q_loss_weight (q_halt + q_continue)
    ```

    ``ce`` is the stablemax cross-entropy (see ``StableMaxCrossEntropy``) for
    ``lm_loss_type="stable_max"`` and the softmax cross-entropy for
    ``"softmax"``; both are means over the valid tokens of the batch, so the
    two options are on the same scale. ``correct_b`` (``sequence_is_correct``)
    is computed inside from the logits and carries no gradient; a row without
    valid tokens counts as correct, and an argmax tie goes to the lowest id.
    Ignored positions are scored against the safe id 0 and weighted 0, so
    ``ignore_index`` never indexes the logits. Unlike the reference code,
    which sums the BCE terms over the batch, they are averaged here, so the
    loss does not grow with the batch size.

    Inputs are dicts: ``y_true = {"labels", "target_q_continue"}`` and
    ``y_pred = {"logits", "q_halt_logits", "q_continue_logits"}``; the
    ``(B,)`` tensors may also be ``(B, 1)``. The loss is batch-level and
    returns one scalar: ``reduction`` has no effect and ``sample_weight``
    (``(B,)`` or ``(B, 1)``) weights every term of its row inside the means,
    so an integer weight ``k`` equals repeating the row ``k`` times.
    Float16/bfloat16 inputs are computed in float32.

    Label ids outside ``[0, V)`` other than ``ignore_index``, float ids with a
    fraction, and ``target_q_continue`` outside [0, 1] raise ``ValueError``
    on the first eager call of an instance (every eager call with
    ``DL_LOSSES_VALIDATE=always``); under ``jit`` nothing is read. A NaN
    target gives a NaN loss.

    Reference:
        Wang, G., Li, J., Sun, Y., Chen, X., Liu, C., Wu, Y., Lu, M., Song,
        S., Abbasi Yadkori, Y. (2025). Hierarchical Reasoning Model.
        https://arxiv.org/abs/2506.21734

    Args:
        q_loss_weight: Float >= 0 weighting the sum of the two Q losses.
            Defaults to 0.5.
        lm_loss_type: ``"stable_max"`` or ``"softmax"``, the cross-entropy of
            the language-model term. Defaults to ``"stable_max"``.
        ignore_index: Int; label id of positions without a target. Defaults
            to -100.
        reduction: Accepted for Keras compatibility; no effect.
        name: Name of the loss instance. Defaults to ``"hrm_loss"``.
        dtype: Dtype of the returned value. Defaults to
            ``keras.backend.floatx()``.

    Example:

    ```python
    loss = HRMLoss(lm_loss_type="softmax")
    y_true = {"labels": [[1, -100]], "target_q_continue": [0.0]}
    y_pred = {
        "logits": keras.ops.zeros((1, 2, 4)),
        "q_halt_logits": [0.0],
        "q_continue_logits": [0.0],
    }
    loss(y_true, y_pred)  # log(4) + 0.5 * (log(2) + log(2)) = 2.0794
    ```
    """

    def __init__(
        self,
        q_loss_weight: float = 0.5,
        lm_loss_type: str = "stable_max",
        ignore_index: int = -100,
        reduction: str | None = "sum_over_batch_size",
        name: str = "hrm_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_non_negative("HRMLoss", "q_loss_weight", q_loss_weight)
        validation.check_choice("HRMLoss", "lm_loss_type", lm_loss_type, _language.LM_LOSS_TYPES)
        ignore_index = _language.check_ignore_index("HRMLoss", ignore_index)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.q_loss_weight = float(q_loss_weight)
        self.lm_loss_type = lm_loss_type
        self.ignore_index = ignore_index

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        dtype = self.compute_dtype
        _check_keys("y_true", y_true, _TRUE_KEYS)
        _check_keys("y_pred", y_pred, _PRED_KEYS)
        labels, logits = _language.token_inputs(
            "HRMLoss",
            y_true["labels"],
            y_pred["logits"],
            dtype,
            labels_name='y_true["labels"]',
            logits_name='y_pred["logits"]',
        )
        batch_size = logits.shape[0]
        q_halt_logits = _per_row("y_pred", "q_halt_logits", y_pred, batch_size, dtype)
        q_continue_logits = _per_row("y_pred", "q_continue_logits", y_pred, batch_size, dtype)
        target_q_continue = _per_row("y_true", "target_q_continue", y_true, batch_size, dtype)
        vocab_size = logits.shape[-1]
        _language.check_ids(
            "HRMLoss", labels, vocab_size, self.ignore_index, labels_name='y_true["labels"]'
        )
        labels = keras.ops.cast(labels, "int32")
        validation.check_in_range(
            "HRMLoss",
            'y_true["target_q_continue"]',
            target_q_continue,
            0.0,
            1.0,
            hint="It is the Q-learning target of continuing, a probability.",
        )
        in_range = vocab_size if vocab_size is not None else keras.ops.shape(logits)[-1]
        valid, safe_labels = _language.valid_and_safe_labels(labels, in_range, self.ignore_index)

        if self.lm_loss_type == "stable_max":
            per_token = _language.stablemax_cross_entropy(safe_labels, logits)
        else:
            per_token = _language.softmax_cross_entropy(safe_labels, logits)
        weights = _language.row_weights("HRMLoss", sample_weight, keras.ops.shape(labels)[0], dtype)
        lm_loss = _language.weighted_token_mean(per_token, valid, weights)

        correct = sequence_is_correct(logits, labels, valid, dtype)
        q_halt_loss = _language.weighted_row_mean(
            ops.sigmoid_cross_entropy(correct, q_halt_logits), weights
        )
        q_continue_loss = _language.weighted_row_mean(
            ops.sigmoid_cross_entropy(target_q_continue, q_continue_logits), weights
        )
        return lm_loss + self.q_loss_weight * (q_halt_loss + q_continue_loss)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "q_loss_weight": self.q_loss_weight,
            "lm_loss_type": self.lm_loss_type,
            "ignore_index": self.ignore_index,
        }


def create_hrm_loss(
    q_loss_weight: float = 0.5,
    lm_loss_type: str = "stable_max",
    ignore_index: int = -100,
    **kwargs: Any,
) -> HRMLoss:
    """Returns an ``HRMLoss`` with the HRM paper's defaults.

    Args:
        q_loss_weight: Weight of the summed halting Q losses. Defaults to 0.5.
        lm_loss_type: ``"stable_max"`` or ``"softmax"``. Defaults to
            ``"stable_max"``.
        ignore_index: Label id of positions without a target. Defaults to
            -100.
        **kwargs: Further ``HRMLoss`` arguments (``name``, ``dtype``).

    Example:

    ```python
    loss = create_hrm_loss(lm_loss_type="softmax")
    model.compile(optimizer="adam", loss=loss)
    ```
    """
    return HRMLoss(
        q_loss_weight=q_loss_weight, lm_loss_type=lm_loss_type, ignore_index=ignore_index, **kwargs
    )


def sequence_is_correct(logits: Any, labels: Any, valid: Any, dtype: str) -> Any:
    """1.0 for rows whose every valid token has its label as the argmax, else 0.0."""
    predicted = keras.ops.cast(keras.ops.argmax(logits, axis=-1), labels.dtype)
    wrong = keras.ops.logical_and(valid, keras.ops.not_equal(predicted, labels))
    any_wrong = keras.ops.any(wrong, axis=tuple(range(1, len(labels.shape))))
    return keras.ops.cast(keras.ops.logical_not(any_wrong), dtype)


def _check_keys(argument: str, structure: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(structure, dict) or any(key not in structure for key in keys):
        found = sorted(structure) if isinstance(structure, dict) else type(structure).__name__
        raise ValueError(f"HRMLoss: `{argument}` must be a dict with keys {keys}; got {found}.")


def _per_row(argument: str, key: str, structure: Any, batch_size: int | None, dtype: str) -> Any:
    tensor = keras.ops.cast(keras.ops.convert_to_tensor(structure[key]), dtype)
    given_shape = shapes.static_shape(tensor)
    shape = given_shape
    if len(shape) == 2 and shape[1] == 1:
        tensor = keras.ops.squeeze(tensor, axis=1)
        shape = shape[:1]
    if len(shape) != 1 or (None not in (shape[0], batch_size) and shape[0] != batch_size):
        raise ValueError(
            f'HRMLoss: `{argument}["{key}"]` must have shape (batch,) or (batch, 1) with '
            f"batch {batch_size} as in the logits; got shape {given_shape}."
        )
    return tensor
