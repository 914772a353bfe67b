"""Conformance-kit cases for AnyLoss and the metric losses built on it.

``dl-losses check dl-techniques-losses-classification`` and the family's
``tests/test_conformance_any_loss.py`` run the core kit over these cases.
"""

import keras
import numpy as np

from dl_techniques.losses.classification.accuracy_loss import AccuracyLoss
from dl_techniques.losses.classification.any_loss import AnyLoss
from dl_techniques.losses.classification.balanced_accuracy_loss import BalancedAccuracyLoss
from dl_techniques.losses.classification.f1_loss import F1Loss
from dl_techniques.losses.classification.fbeta_loss import FBetaLoss
from dl_techniques.losses.classification.geometric_mean_loss import GeometricMeanLoss
from dl_techniques.losses.classification.mcc_loss import MCCLoss
from dl_techniques.losses.classification.precision_loss import PrecisionLoss
from dl_techniques.losses.classification.recall_loss import RecallLoss
from dl_techniques.losses.classification.specificity_loss import SpecificityLoss
from dl_techniques.losses.core.testing import LossCase

_BATCH = 8
_LABELS = 3
_SHARED_INVALID = (
    {"amplifying_scale": 0.0},
    {"amplifying_scale": -5.0},
    {"average": "weighted"},
    {"from_logits": "yes"},
)


@keras.saving.register_keras_serializable(package="dl_techniques_conformance")
def jaccard_index(tp, fn, fp, tn):
    """The Jaccard index (critical success index) ``TP / (TP + FN + FP)``.

    A metric outside the named losses, for ``AnyLoss``'s conformance case;
    it reloads in a fresh process because ``AnyLoss`` imports the library
    module that defines a registered metric function.
    """
    return tp / (tp + fn + fp + 1e-5)


def conformance_cases():
    """Returns one ``LossCase`` per AnyLoss-family loss, on small fixed inputs.

    The losses are batch-level and weight every confusion-matrix sum by
    ``sample_weight``, so they are checked with the ``"batch"`` semantics.
    Predictions stay within 0.15 of 0.5 and ``amplifying_scale`` is lowered
    to 8, where the approximation function has a gradient a fit step sees.
    Binary cases use ``(B, 1)``; multi-label cases ``(B, 3)``, some with
    ``average="macro"``, one on logits.
    """
    rng = np.random.default_rng(20240607)
    binary_true = np.array([[1.0], [0.0], [1.0], [1.0], [0.0], [0.0], [1.0], [0.0]], "float32")
    binary_pred = rng.uniform(0.35, 0.65, size=(_BATCH, 1)).astype("float32")
    multi_true = rng.integers(0, 2, size=(_BATCH, _LABELS)).astype("float32")
    # Every column holds both classes, so every per-column rate is defined.
    multi_true[0], multi_true[1] = 1.0, 0.0
    multi_pred = rng.uniform(0.35, 0.65, size=(_BATCH, _LABELS)).astype("float32")
    multi_logits = rng.uniform(-0.6, 0.6, size=(_BATCH, _LABELS)).astype("float32")
    scale = {"amplifying_scale": 8.0}

    def case(loss_class, init_kwargs, y_true, y_pred, case_id, invalid=()):
        return LossCase(
            loss_class=loss_class,
            init_kwargs=init_kwargs,
            y_true=y_true,
            y_pred=y_pred,
            invalid_kwargs=(*_SHARED_INVALID, *invalid),
            sample_weight="batch",
            case_id=case_id,
        )

    return [
        case(
            AnyLoss,
            {"metric_fn": jaccard_index, **scale, "average": "macro"},
            multi_true,
            multi_pred,
            "any_loss_jaccard_macro",
            invalid=({"metric_fn": "jaccard_index"}, {"metric_fn": None}),
        ),
        case(AccuracyLoss, scale, binary_true, binary_pred, "accuracy_loss"),
        case(PrecisionLoss, {**scale, "average": "macro"}, multi_true, multi_pred, "precision"),
        case(RecallLoss, scale, multi_true, multi_pred, "recall_loss_micro"),
        case(SpecificityLoss, scale, binary_true, binary_pred, "specificity_loss"),
        case(F1Loss, {**scale, "from_logits": True}, multi_true, multi_logits, "f1_logits"),
        case(
            FBetaLoss,
            {"beta": 2.0, **scale, "average": "macro"},
            multi_true,
            multi_pred,
            "fbeta_loss_macro",
            invalid=({"beta": 0.0}, {"beta": -1.0}, {"beta": float("nan")}, {"beta": True}),
        ),
        case(BalancedAccuracyLoss, scale, binary_true, binary_pred, "balanced_accuracy_loss"),
        case(GeometricMeanLoss, {**scale, "average": "macro"}, multi_true, multi_pred, "g_mean"),
        case(MCCLoss, scale, binary_true, binary_pred, "mcc_loss"),
    ]
