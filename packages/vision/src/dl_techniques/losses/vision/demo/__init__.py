"""The vision family's entry for ``dl-losses demo``.

Two experiments on generated images:

1. Segmentation of discs, squares and rare triangles on noise, one small
   encoder-decoder per loss (``cross_entropy``, ``dice_ce``,
   ``focal_tversky``, ``lovasz``, ``generalized_dice_focal`` from
   ``create_segmentation_loss_function``):
   held-out per-class IoU and mIoU, and a PNG of predictions.
2. Depth of generated scenes whose targets carry a random scale and shift
   per image: ``AffineInvariantLoss`` against an L1-trained baseline, scored
   by the held-out AbsRel after least-squares scale-and-shift alignment.
"""

import dataclasses
import pathlib

from dl_techniques.losses.vision.demo.depth import run_depth_demo
from dl_techniques.losses.vision.demo.detection import run_detection_demo
from dl_techniques.losses.vision.demo.segmentation import LOSS_NAMES, run_segmentation_demo


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """How much data and training each experiment gets.

    Attributes:
        image_size: Height and width of the generated images (even).
        train_images: Generated training images per experiment.
        test_images: Held-out images per experiment.
        epochs: Training epochs per loss.
        segmentation_losses: Factory names trained in the segmentation
            experiment.
        detection_seconds: Training time of the YOLOv12 detection
            experiment (at least one epoch runs).
        detection_images: Generated training images of the detection
            experiment (a quarter as many are held out).
    """

    image_size: int = 24
    train_images: int = 256
    test_images: int = 128
    epochs: int = 10
    segmentation_losses: tuple = LOSS_NAMES
    detection_seconds: float = 60.0
    detection_images: int = 512


def run_demo(output_dir, progress, settings=None):
    """Runs both experiments and returns their rows for the summary table.

    Args:
        output_dir: Folder for the PNG of segmentation predictions.
        progress: The ``Progress`` display of ``dl-losses demo``.
        settings: A ``DemoSettings``; the defaults when None. Tests pass
            a tiny one.
    """
    settings = settings or DemoSettings()
    output_dir = pathlib.Path(output_dir)
    rows = run_segmentation_demo(output_dir, progress, settings)
    rows.extend(run_depth_demo(output_dir, progress, settings))
    rows.extend(
        run_detection_demo(
            output_dir,
            progress,
            train_seconds=settings.detection_seconds,
            train_images=settings.detection_images,
            test_images=max(settings.detection_images // 4, 1),
        )
    )
    return rows
