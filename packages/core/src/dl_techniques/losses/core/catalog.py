"""The first-party families and the public names each one publishes.

Core knows these names without the families being installed, so that asking
for ``F1Loss`` with only core installed says which extra to install. The
consistency check in ``tools/check_consistency.py`` fails when a family
package's entry points and this table disagree.
"""

FAMILY_NAMES = {
    "classification": (
        "AnyLoss",
        "AccuracyLoss",
        "PrecisionLoss",
        "RecallLoss",
        "SpecificityLoss",
        "F1Loss",
        "FBetaLoss",
        "BalancedAccuracyLoss",
        "GeometricMeanLoss",
        "MCCLoss",
        "BrierScoreLoss",
        "SpiegelhalterZLoss",
        "CombinedCalibrationLoss",
        "BrierScoreMetric",
        "SpiegelhalterZMetric",
        "CapsuleMarginLoss",
        "FocalUncertaintyLoss",
        "DecoupledInformationLoss",
        "GoodhartAwareLoss",
    ),
    "self_supervised": (
        "CLIPContrastiveLoss",
        "SigLIPContrastiveLoss",
        "ContrastiveLogitsLayer",
        "DINOLoss",
        "iBOTPatchLoss",
        "TeacherCenterLayer",
        "KoLeoLoss",
        "FeatureAlignmentLoss",
        "ClusteringLoss",
    ),
    "generative": (
        "WassersteinLoss",
        "WassersteinGradientPenaltyLoss",
        "compute_gradient_penalty",
        "create_wgan_gp_losses",
        "WGANGPModel",
        "NanoVLMLoss",
        "HRMLoss",
        "StableMaxCrossEntropy",
        "create_hrm_loss",
    ),
    "vision": (
        "AffineInvariantLoss",
        "SegmentationLossConfig",
        "SegmentationLoss",
        "SegmentationLosses",
        "create_segmentation_loss_function",
        "YOLOv12MultiTaskLoss",
        "create_yolov12_multitask_loss",
        "UncertaintyWeightingLayer",
        "MultiTaskModel",
    ),
    "forecasting": (
        "HuberLoss",
        "MASELoss",
        "SMAPELoss",
        "MQLoss",
    ),
}

META_DISTRIBUTION = "dl-techniques-losses"
CORE_DISTRIBUTION = "dl-techniques-losses-core"


def distribution_of(family):
    """Returns the distribution name of a first-party family."""
    return f"{META_DISTRIBUTION}-{family.replace('_', '-')}"


def extra_of(family):
    """Returns the meta-package extra that installs a first-party family."""
    return family.replace("_", "-")


FIRST_PARTY_DISTRIBUTIONS = {distribution_of(family): family for family in FAMILY_NAMES}

FAMILY_OF_NAME = {name: family for family, names in FAMILY_NAMES.items() for name in names}
