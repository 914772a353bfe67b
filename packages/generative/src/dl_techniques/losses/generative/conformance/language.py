"""Conformance-kit cases for the language-model losses.

``dl-losses check dl-techniques-losses-generative`` and the family's
``tests/test_conformance_language.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.generative.hrm_loss import HRMLoss
from dl_techniques.losses.generative.nano_vlm_loss import NanoVLMLoss
from dl_techniques.losses.generative.stable_max_cross_entropy import StableMaxCrossEntropy

_BATCH = 4
_LENGTH = 5
_VOCAB = 7


def conformance_cases():
    """Returns the language-model cases, on small fixed inputs.

    Every loss here is a batch-level token mean that weights inside
    (``"batch"``). Each case uses a non-default ``ignore_index`` that occurs
    in its labels, so a config that loses the argument changes the value.
    """
    rng = np.random.default_rng(20240705)
    labels = rng.integers(0, _VOCAB, size=(_BATCH, _LENGTH))
    logits = rng.normal(scale=2.0, size=(_BATCH, _LENGTH, _VOCAB)).astype("float32")
    ignore_mask = np.zeros((_BATCH, _LENGTH), dtype=bool)
    ignore_mask[0, :2] = True
    ignore_mask[2, -1] = True
    hrm_labels = np.where(ignore_mask, -1, labels)
    hrm_true = {
        "labels": hrm_labels,
        "target_q_continue": np.array([0.2, 0.9, 0.5, 0.0], dtype="float32"),
    }
    hrm_pred = {
        "logits": logits,
        "q_halt_logits": np.array([0.3, -1.2, 2.0, -0.4], dtype="float32"),
        "q_continue_logits": np.array([-0.7, 0.8, 0.1, 1.5], dtype="float32"),
    }
    hrm_errors = (
        {"q_loss_weight": -0.5},
        {"q_loss_weight": float("nan")},
        {"lm_loss_type": "sparsemax"},
        {"ignore_index": 1.5},
    )
    return [
        LossCase(
            loss_class=NanoVLMLoss,
            init_kwargs={"ignore_index": 3, "label_smoothing": 0.1, "shift": True},
            y_true=labels,
            y_pred=logits,
            invalid_kwargs=(
                {"label_smoothing": -0.1},
                {"label_smoothing": 1.5},
                {"label_smoothing": "0.1"},
                {"shift": 1},
                {"ignore_index": None},
            ),
            sample_weight="batch",
            case_id="nano_vlm_shift_smoothing",
        ),
        LossCase(
            loss_class=StableMaxCrossEntropy,
            init_kwargs={"ignore_index": -1},
            y_true=hrm_labels,
            y_pred=10.0 * logits,
            invalid_kwargs=({"ignore_index": "none"}, {"ignore_index": True}),
            sample_weight="batch",
            case_id="stable_max_tokens",
        ),
        LossCase(
            loss_class=HRMLoss,
            init_kwargs={"q_loss_weight": 0.3, "lm_loss_type": "stable_max", "ignore_index": -1},
            y_true=hrm_true,
            y_pred=hrm_pred,
            invalid_kwargs=hrm_errors,
            sample_weight="batch",
            case_id="hrm_stable_max",
        ),
        LossCase(
            loss_class=HRMLoss,
            init_kwargs={"q_loss_weight": 1.0, "lm_loss_type": "softmax", "ignore_index": -1},
            y_true=hrm_true,
            y_pred=hrm_pred,
            invalid_kwargs=hrm_errors,
            sample_weight="batch",
            case_id="hrm_softmax",
        ),
    ]
