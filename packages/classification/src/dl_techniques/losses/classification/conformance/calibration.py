"""Conformance-kit cases for the calibration losses.

``dl-losses check dl-techniques-losses-classification`` and the family's
``tests/test_conformance_calibration.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.classification.brier_score_loss import BrierScoreLoss
from dl_techniques.losses.classification.combined_calibration_loss import CombinedCalibrationLoss
from dl_techniques.losses.classification.spiegelhalter_z_loss import SpiegelhalterZLoss
from dl_techniques.losses.core.testing import LossCase

_BATCH = 6
_CLASSES = 3


def conformance_cases():
    """Returns the calibration cases, on small fixed inputs.

    ``BrierScoreLoss`` is per sample. ``SpiegelhalterZLoss`` and
    ``CombinedCalibrationLoss`` are batch-level and weight inside their
    sums (``"batch"``). Predictions stay away from 0, 0.5 and 1 so that the
    Z statistic and its gradient are non-zero.
    """
    rng = np.random.default_rng(20240617)
    labels = rng.integers(0, _CLASSES, size=_BATCH)
    one_hot = np.eye(_CLASSES, dtype="float32")[labels]
    logits = rng.normal(scale=1.5, size=(_BATCH, _CLASSES)).astype("float32")
    binary_labels = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0], dtype="float32")
    binary_probs = np.array([0.9, 0.35, 0.2, 0.7, 0.15, 0.6], dtype="float32")
    bool_errors = ({"from_logits": "yes"}, {"from_logits": 1})
    return [
        LossCase(
            loss_class=BrierScoreLoss,
            init_kwargs={"from_logits": True},
            y_true=one_hot,
            y_pred=logits,
            invalid_kwargs=bool_errors,
            sample_weight="per_sample",
            case_id="brier_multiclass_logits",
        ),
        LossCase(
            loss_class=SpiegelhalterZLoss,
            init_kwargs={"use_squared": True, "from_logits": False},
            y_true=binary_labels[:, None],
            y_pred=binary_probs[:, None],
            invalid_kwargs=(*bool_errors, {"use_squared": None}),
            sample_weight="batch",
            case_id="spiegelhalter_binary_probabilities",
        ),
        LossCase(
            loss_class=SpiegelhalterZLoss,
            init_kwargs={"use_squared": False, "from_logits": True},
            y_true=one_hot,
            y_pred=logits,
            invalid_kwargs=({"use_squared": "no"},),
            sample_weight="batch",
            case_id="spiegelhalter_multiclass_absolute_logits",
        ),
        LossCase(
            loss_class=CombinedCalibrationLoss,
            init_kwargs={"alpha": 0.3, "use_squared": False, "from_logits": True},
            y_true=one_hot,
            y_pred=logits,
            invalid_kwargs=(
                {"alpha": -0.1},
                {"alpha": 1.5},
                {"alpha": float("nan")},
                {"alpha": "0.5"},
                {"alpha": True},
                {"use_squared": 0},
            ),
            sample_weight="batch",
            case_id="combined_multiclass_logits",
        ),
    ]
