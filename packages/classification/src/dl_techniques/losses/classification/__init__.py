"""Classification losses: AnyLoss metric losses, calibration, capsule margin, information theory."""

from dl_techniques.losses.classification.accuracy_loss import AccuracyLoss
from dl_techniques.losses.classification.any_loss import AnyLoss
from dl_techniques.losses.classification.balanced_accuracy_loss import BalancedAccuracyLoss
from dl_techniques.losses.classification.brier_score_loss import BrierScoreLoss
from dl_techniques.losses.classification.brier_score_metric import BrierScoreMetric
from dl_techniques.losses.classification.capsule_margin_loss import CapsuleMarginLoss
from dl_techniques.losses.classification.combined_calibration_loss import CombinedCalibrationLoss
from dl_techniques.losses.classification.decoupled_information_loss import (
    DecoupledInformationLoss,
)
from dl_techniques.losses.classification.f1_loss import F1Loss
from dl_techniques.losses.classification.fbeta_loss import FBetaLoss
from dl_techniques.losses.classification.focal_uncertainty_loss import FocalUncertaintyLoss
from dl_techniques.losses.classification.geometric_mean_loss import GeometricMeanLoss
from dl_techniques.losses.classification.goodhart_aware_loss import GoodhartAwareLoss
from dl_techniques.losses.classification.mcc_loss import MCCLoss
from dl_techniques.losses.classification.precision_loss import PrecisionLoss
from dl_techniques.losses.classification.recall_loss import RecallLoss
from dl_techniques.losses.classification.specificity_loss import SpecificityLoss
from dl_techniques.losses.classification.spiegelhalter_z_loss import SpiegelhalterZLoss
from dl_techniques.losses.classification.spiegelhalter_z_metric import SpiegelhalterZMetric

# The entry points of pyproject.toml, written by tools/generate.py.
__all__ = [
    "AccuracyLoss",
    "AnyLoss",
    "BalancedAccuracyLoss",
    "BrierScoreLoss",
    "BrierScoreMetric",
    "CapsuleMarginLoss",
    "CombinedCalibrationLoss",
    "DecoupledInformationLoss",
    "F1Loss",
    "FBetaLoss",
    "FocalUncertaintyLoss",
    "GeometricMeanLoss",
    "GoodhartAwareLoss",
    "MCCLoss",
    "PrecisionLoss",
    "RecallLoss",
    "SpecificityLoss",
    "SpiegelhalterZLoss",
    "SpiegelhalterZMetric",
]
