"""Conformance-kit cases for the Wasserstein and WGAN-GP losses.

``dl-losses check dl-techniques-losses-generative`` and the family's
``tests/test_conformance_wasserstein.py`` run the core kit over these cases.
"""

import keras
import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.generative.wasserstein_gradient_penalty_loss import (
    WassersteinGradientPenaltyLoss,
)
from dl_techniques.losses.generative.wasserstein_loss import WassersteinLoss

_FEATURES = 3


def conformance_cases():
    """Returns the Wasserstein cases, on small fixed inputs.

    The critic loss is batch-level (``"batch"`` weighting inside the group
    means) and sees an unbalanced batch, four real and two fake samples.
    A trainable offset shared by all scores gets no gradient from it (the
    two group means move together), so its fit model is a ``Dense(1)`` critic
    with unit kernel whose scores are the feature sums. The generator loss is
    per sample; the gradient-penalty loss rejects ``sample_weight``.
    """
    rng = np.random.default_rng(20240621)
    labels = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 1.0], dtype="float32")
    features = rng.normal(size=(labels.size, _FEATURES)).astype("float32")
    critic_scores = features.sum(axis=1, keepdims=True)
    gradients = rng.normal(scale=0.8, size=(labels.size, _FEATURES)).astype("float32")
    return [
        LossCase(
            loss_class=WassersteinLoss,
            init_kwargs={"for_critic": True},
            y_true=labels,
            y_pred=critic_scores,
            invalid_kwargs=({"for_critic": "yes"}, {"for_critic": 1}),
            sample_weight="batch",
            case_id="wasserstein_critic_unbalanced",
            build_model=_dense_critic(features),
        ),
        LossCase(
            loss_class=WassersteinLoss,
            init_kwargs={"for_critic": False},
            y_true=np.zeros_like(labels),
            y_pred=critic_scores,
            invalid_kwargs=({"for_critic": None},),
            sample_weight="per_sample",
            case_id="wasserstein_generator",
        ),
        LossCase(
            loss_class=WassersteinGradientPenaltyLoss,
            init_kwargs={"lambda_gp": 5.0},
            y_true=2.0 * labels - 1.0,
            y_pred={"scores": critic_scores, "interpolate_gradients": gradients},
            invalid_kwargs=(
                {"lambda_gp": -1.0},
                {"lambda_gp": float("nan")},
                {"lambda_gp": "10"},
                {"lambda_gp": True},
            ),
            sample_weight="rejected",
            case_id="wgan_gp_critic_plus_minus_one_labels",
        ),
    ]


def _dense_critic(features):
    def build_model(case):
        model = keras.Sequential(
            [
                keras.Input((features.shape[1],)),
                keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros"),
            ]
        )
        return model, features

    return build_model
