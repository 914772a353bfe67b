"""Conformance-kit cases for the metric-learning losses.

``dl-losses check dl-techniques-losses-metric-learning`` and the family's own
``tests/test_conformance.py`` run the core kit over these cases. The margin
heads are layers, not losses; their tests sit in ``tests/test_margin_heads.py``.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.metric_learning.contrastive_pair_loss import ContrastivePairLoss
from dl_techniques.losses.metric_learning.triplet_loss import TripletLoss

_LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1], dtype="int32")
_DIM = 4


def conformance_cases() -> list[LossCase]:
    """Returns the ``LossCase`` list: each mining mode once, with each distance once.

    Both losses are a mean over what they mine from the batch, so a
    ``sample_weight`` is rejected. The embeddings are spread so that every
    case has active triplets or pairs, hence a non-zero gradient.
    """
    rng = np.random.default_rng(20240615)
    embeddings = (0.6 * rng.normal(size=(len(_LABELS), _DIM))).astype("float32")
    triplet_invalid = (
        {"margin": -0.1},
        {"margin": float("nan")},
        {"mining": "hardest"},
        {"distance": "manhattan"},
    )
    settings = (
        ("semi_hard", "euclidean"),
        ("batch_hard", "cosine"),
        ("batch_all", "squared_euclidean"),
    )
    cases = [
        LossCase(
            loss_class=TripletLoss,
            init_kwargs={"margin": 0.7, "mining": mining, "distance": distance},
            y_true=_LABELS,
            y_pred=embeddings,
            invalid_kwargs=triplet_invalid,
            sample_weight="rejected",
            case_id=f"triplet_{mining}_{distance}",
        )
        for mining, distance in settings
    ]
    cases.append(
        LossCase(
            loss_class=ContrastivePairLoss,
            init_kwargs={"margin": 1.3, "distance": "euclidean"},
            y_true=_LABELS,
            y_pred=embeddings,
            invalid_kwargs=({"margin": -1.0}, {"distance": "l1"}),
            sample_weight="rejected",
            case_id="contrastive_pair_euclidean",
        )
    )
    return cases
