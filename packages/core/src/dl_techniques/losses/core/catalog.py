"""The first-party families and the public names each one publishes.

Core knows these names without the families being installed, so that asking
for ``F1Loss`` with only core installed says which extra to install.
``FAMILY_NAMES`` is generated from the entry points of each family's
pyproject.toml by ``tools/generate.py``; edit those, then run the tool.
"""

# generated: FAMILY_NAMES, from the families' entry points by tools/generate.py
FAMILY_NAMES: dict[str, tuple[str, ...]] = {
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
    "forecasting": (
        "HuberLoss",
        "MASELoss",
        "SMAPELoss",
        "MQLoss",
        "CRPSLoss",
        "GaussianNLL",
        "StudentTNLL",
        "PoissonNLL",
        "NegativeBinomialNLL",
        "TweedieLoss",
    ),
    "generative": (
        "WassersteinLoss",
        "compute_gradient_penalty",
        "WassersteinGradientPenaltyLoss",
        "create_wgan_gp_losses",
        "WGANGPModel",
        "NanoVLMLoss",
        "HRMLoss",
        "StableMaxCrossEntropy",
        "create_hrm_loss",
        "HingeGANLoss",
        "NonSaturatingGANLoss",
        "r1_penalty",
    ),
    "metric_learning": (
        "TripletLoss",
        "ContrastivePairLoss",
        "ArcFace",
        "CosFace",
        "SubCenterArcFace",
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
        "NTXentLoss",
        "SupConLoss",
        "VICRegLoss",
        "BarlowTwinsLoss",
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
        "BoxIoULoss",
        "VarifocalLoss",
        "GeneralizedDiceLoss",
        "GeneralizedDiceFocalLoss",
        "SoftCLDiceLoss",
        "SoftDiceCLDiceLoss",
        "BoundaryLoss",
        "signed_distance_map",
    ),
}
# end generated

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
