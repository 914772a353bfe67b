"""Generative-model losses: Wasserstein, WGAN-GP, hinge, non-saturating, R1, language models."""

from dl_techniques.losses.generative.gradient_penalty import compute_gradient_penalty
from dl_techniques.losses.generative.hinge_gan_loss import HingeGANLoss
from dl_techniques.losses.generative.hrm_loss import HRMLoss, create_hrm_loss
from dl_techniques.losses.generative.nano_vlm_loss import NanoVLMLoss
from dl_techniques.losses.generative.non_saturating_gan_loss import NonSaturatingGANLoss
from dl_techniques.losses.generative.r1_penalty import r1_penalty
from dl_techniques.losses.generative.stable_max_cross_entropy import StableMaxCrossEntropy
from dl_techniques.losses.generative.wasserstein_gradient_penalty_loss import (
    WassersteinGradientPenaltyLoss,
    create_wgan_gp_losses,
)
from dl_techniques.losses.generative.wasserstein_loss import WassersteinLoss
from dl_techniques.losses.generative.wgan_gp_model import WGANGPModel

# The entry points of pyproject.toml, written by tools/generate.py.
__all__ = [
    "HRMLoss",
    "HingeGANLoss",
    "NanoVLMLoss",
    "NonSaturatingGANLoss",
    "StableMaxCrossEntropy",
    "WGANGPModel",
    "WassersteinGradientPenaltyLoss",
    "WassersteinLoss",
    "compute_gradient_penalty",
    "create_hrm_loss",
    "create_wgan_gp_losses",
    "r1_penalty",
]
