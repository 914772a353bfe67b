"""Vision losses: affine-invariant depth, segmentation, box regression, YOLOv12 multi-task."""

from dl_techniques.losses.vision.affine_invariant_loss import AffineInvariantLoss
from dl_techniques.losses.vision.boundary_loss import BoundaryLoss, signed_distance_map
from dl_techniques.losses.vision.box_iou_loss import BoxIoULoss
from dl_techniques.losses.vision.generalized_dice_focal_loss import GeneralizedDiceFocalLoss
from dl_techniques.losses.vision.generalized_dice_loss import GeneralizedDiceLoss
from dl_techniques.losses.vision.multi_task_model import MultiTaskModel
from dl_techniques.losses.vision.segmentation_loss import (
    SegmentationLoss,
    create_segmentation_loss_function,
)
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig
from dl_techniques.losses.vision.segmentation_losses import SegmentationLosses
from dl_techniques.losses.vision.soft_cldice_loss import SoftCLDiceLoss
from dl_techniques.losses.vision.soft_dice_cldice_loss import SoftDiceCLDiceLoss
from dl_techniques.losses.vision.uncertainty_weighting_layer import UncertaintyWeightingLayer
from dl_techniques.losses.vision.varifocal_loss import VarifocalLoss
from dl_techniques.losses.vision.yolov12_multitask_loss import (
    YOLOv12MultiTaskLoss,
    create_yolov12_multitask_loss,
)

# The entry points of pyproject.toml, written by tools/generate.py.
__all__ = [
    "AffineInvariantLoss",
    "BoundaryLoss",
    "BoxIoULoss",
    "GeneralizedDiceFocalLoss",
    "GeneralizedDiceLoss",
    "MultiTaskModel",
    "SegmentationLoss",
    "SegmentationLossConfig",
    "SegmentationLosses",
    "SoftCLDiceLoss",
    "SoftDiceCLDiceLoss",
    "UncertaintyWeightingLayer",
    "VarifocalLoss",
    "YOLOv12MultiTaskLoss",
    "create_segmentation_loss_function",
    "create_yolov12_multitask_loss",
    "signed_distance_map",
]
