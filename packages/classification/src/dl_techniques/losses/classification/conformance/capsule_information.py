"""Conformance-kit cases for the capsule margin and information-theoretic losses.

``dl-losses check dl-techniques-losses-classification`` and the family's
``tests/test_conformance_capsule_information.py`` run the core kit over them.
"""

import numpy as np

from dl_techniques.losses.classification.capsule_margin_loss import CapsuleMarginLoss
from dl_techniques.losses.classification.decoupled_information_loss import (
    DecoupledInformationLoss,
)
from dl_techniques.losses.classification.focal_uncertainty_loss import FocalUncertaintyLoss
from dl_techniques.losses.classification.goodhart_aware_loss import GoodhartAwareLoss
from dl_techniques.losses.core.testing import LossCase

_BATCH = 6
_CLASSES = 4
_CAPSULE_DIM = 8


def conformance_cases():
    """Returns one ``LossCase`` per loss of this group, on small fixed inputs.

    ``CapsuleMarginLoss`` and ``FocalUncertaintyLoss`` are per-sample losses.
    ``DecoupledInformationLoss`` and ``GoodhartAwareLoss`` share batch
    statistics between samples and treat ``sample_weight`` as a frequency
    weight inside them, so they are checked with the ``"batch"`` semantics.
    """
    rng = np.random.default_rng(20240617)
    labels = rng.integers(0, _CLASSES, size=_BATCH)
    one_hot = np.eye(_CLASSES, dtype="float32")[labels]
    logits = rng.normal(scale=1.5, size=(_BATCH, _CLASSES)).astype("float32")
    # Capsules of length about 0.1 to 0.9, so every class sits inside a margin.
    directions = rng.normal(size=(_BATCH, _CLASSES, _CAPSULE_DIM))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    lengths = rng.uniform(0.15, 0.85, size=(_BATCH, _CLASSES, 1))
    capsules = (directions * lengths).astype("float32")
    return [
        LossCase(
            loss_class=CapsuleMarginLoss,
            init_kwargs={"positive_margin": 0.8, "negative_margin": 0.2, "downweight": 0.7},
            y_true=one_hot,
            y_pred=capsules,
            invalid_kwargs=(
                {"positive_margin": 1.0},
                {"negative_margin": 0.0},
                {"positive_margin": 0.3, "negative_margin": 0.4},
                {"downweight": 0.0},
                {"downweight": 1.5},
            ),
            sample_weight="per_sample",
            case_id="capsule_margin_vectors",
        ),
        LossCase(
            loss_class=FocalUncertaintyLoss,
            init_kwargs={
                "gamma": 1.5,
                "alpha": [0.25, 0.5, 0.75, 1.0],
                "uncertainty_weight": 0.3,
                "label_smoothing": 0.1,
                "from_logits": True,
            },
            y_true=one_hot,
            y_pred=logits,
            invalid_kwargs=(
                {"gamma": -1.0},
                {"alpha": -0.5},
                {"alpha": [0.5, -0.1, 0.2, 0.3]},
                {"uncertainty_weight": -0.1},
                {"label_smoothing": 1.0},
            ),
            sample_weight="per_sample",
            case_id="focal_uncertainty",
        ),
        LossCase(
            loss_class=DecoupledInformationLoss,
            init_kwargs={
                "uncertainty_weight": 0.3,
                "diversity_weight": 0.5,
                "label_smoothing": 0.1,
                "from_logits": True,
            },
            y_true=one_hot,
            y_pred=logits,
            invalid_kwargs=(
                {"uncertainty_weight": -0.2},
                {"diversity_weight": float("nan")},
                {"label_smoothing": -0.1},
            ),
            sample_weight="batch",
            case_id="decoupled_information",
        ),
        LossCase(
            loss_class=GoodhartAwareLoss,
            init_kwargs={
                "entropy_weight": 0.2,
                "mi_weight": 0.5,
                "label_smoothing": 0.05,
                "from_logits": True,
            },
            y_true=one_hot,
            y_pred=logits,
            invalid_kwargs=(
                {"entropy_weight": -1.0},
                {"mi_weight": -0.01},
                {"label_smoothing": 1.5},
            ),
            sample_weight="batch",
            case_id="goodhart_aware",
        ),
    ]
