"""Conformance-kit cases for the embedding losses: KoLeo, feature alignment, clustering.

``dl-losses check dl-techniques-losses-self-supervised`` and the family's
``tests/test_conformance_embedding.py`` run the core kit over them.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.self_supervised.clustering_loss import ClusteringLoss
from dl_techniques.losses.self_supervised.feature_alignment_loss import FeatureAlignmentLoss
from dl_techniques.losses.self_supervised.koleo_loss import KoLeoLoss

_BATCH = 6


def conformance_cases():
    """Returns one ``LossCase`` per embedding loss, on small fixed inputs.

    ``KoLeoLoss`` and ``FeatureAlignmentLoss`` return one value per sample.
    ``ClusteringLoss`` shares batch statistics (cluster frequencies, mean
    assignment) between samples and treats ``sample_weight`` as a frequency
    weight inside them, so it is checked with the ``"batch"`` semantics.
    """
    # With this seed every row's nearest neighbour beats the runner-up by more
    # than 0.17 in cosine, and every feature position is more than 0.08 from
    # the margin, so rounding to float16 or bfloat16 changes no neighbour and
    # no counted position.
    rng = np.random.default_rng(20240732)
    embeddings = rng.normal(size=(_BATCH, 5)).astype("float32")
    target_features = rng.normal(size=(_BATCH, 2, 2, 3)).astype("float32")
    # Positions near their target (above the margin) and far from it.
    predicted_features = target_features + rng.normal(
        scale=np.array([0.1, 1.5])[None, :, None, None], size=target_features.shape
    ).astype("float32")
    logits = rng.normal(scale=1.5, size=(_BATCH, 4))
    assignments = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype("float32")
    ignored = np.zeros((_BATCH,), "float32")
    return [
        LossCase(
            loss_class=KoLeoLoss,
            init_kwargs={"epsilon": 1e-6},
            y_true=ignored,
            y_pred=embeddings,
            invalid_kwargs=({"epsilon": 0.0}, {"epsilon": -1.0}, {"epsilon": float("nan")}),
            sample_weight="per_sample",
            case_id="koleo",
        ),
        LossCase(
            loss_class=FeatureAlignmentLoss,
            init_kwargs={"margin": 0.7},
            y_true=target_features,
            y_pred=predicted_features,
            invalid_kwargs=({"margin": -1.0}, {"margin": 1.2}, {"margin": float("nan")}),
            sample_weight="per_sample",
            case_id="feature_alignment_dense",
        ),
        LossCase(
            loss_class=ClusteringLoss,
            init_kwargs={"distance_weight": 0.8, "distribution_weight": 0.3, "target_power": 3.0},
            y_true=ignored,
            y_pred=assignments,
            invalid_kwargs=(
                {"distance_weight": -0.1},
                {"distribution_weight": float("inf")},
                {"target_power": 0.0},
            ),
            sample_weight="batch",
            case_id="clustering",
        ),
    ]
