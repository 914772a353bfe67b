"""Conformance-kit cases for the hinge and non-saturating GAN losses.

``dl-losses check dl-techniques-losses-generative`` and the family's
``tests/test_conformance_adversarial.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.generative.conformance.wasserstein import _dense_critic
from dl_techniques.losses.generative.hinge_gan_loss import HingeGANLoss
from dl_techniques.losses.generative.non_saturating_gan_loss import NonSaturatingGANLoss

_FEATURES = 3


def conformance_cases():
    """Returns a critic and a generator case per loss, on small fixed inputs.

    The critic losses are batch-level (``"batch"`` weighting inside the group
    means) and see an unbalanced batch with 1/-1 labels, four real and two
    fake samples; their fit model is a ``Dense(1)`` critic over the features.
    Scores stay inside the hinge margin, where every sample has a gradient.
    The generator losses are per sample.
    """
    rng = np.random.default_rng(20260105)
    labels = np.array([1.0, 1.0, -1.0, 1.0, -1.0, 1.0], dtype="float32")
    features = rng.uniform(-0.25, 0.25, size=(labels.size, _FEATURES)).astype("float32")
    scores = features.sum(axis=1, keepdims=True)
    cases = []
    for loss_class, stem in ((HingeGANLoss, "hinge"), (NonSaturatingGANLoss, "non_saturating")):
        cases.append(
            LossCase(
                loss_class=loss_class,
                init_kwargs={"for_critic": True},
                y_true=labels,
                y_pred=scores,
                invalid_kwargs=({"for_critic": "yes"}, {"for_critic": 1}),
                sample_weight="batch",
                case_id=f"{stem}_critic_unbalanced",
                build_model=_dense_critic(features),
            )
        )
        cases.append(
            LossCase(
                loss_class=loss_class,
                init_kwargs={"for_critic": False},
                y_true=np.zeros_like(labels),
                y_pred=scores,
                invalid_kwargs=({"for_critic": None},),
                sample_weight="per_sample",
                case_id=f"{stem}_generator",
            )
        )
    return cases
