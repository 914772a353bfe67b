"""The vision entry of `dl-losses demo`, its metrics and its generated data."""

import io
import math

import numpy as np
import pytest

from dl_techniques.losses.core.demo import DemoRow, Progress
from dl_techniques.losses.vision import demo
from dl_techniques.losses.vision.demo import depth as depth_demo
from dl_techniques.losses.vision.demo import segmentation as segmentation_demo


def test_per_class_iou_matches_a_hand_count():
    labels = np.array([[[0, 1], [2, 2]]])
    predicted = np.array([[[0, 2], [2, 2]]])

    ious = segmentation_demo.per_class_iou(labels, predicted, 4)

    # class 0: 1/1; class 1: 0/1; class 2: 2 shared of 3 in the union;
    # class 3 is in neither, which scores 1.
    assert ious == pytest.approx([1.0, 0.0, 2 / 3, 1.0])


def test_aligned_error_ignores_scale_and_shift_but_not_structure():
    depth = np.array([[[2.0, 4.0], [6.0, 8.0]]])

    exact = depth_demo.aligned_absolute_relative_error((depth - 2.0) / 2.0 * 7.0 - 3.0, depth)
    two_levels = np.array([[[0.0, 0.0], [1.0, 1.0]]])
    coarse = depth_demo.aligned_absolute_relative_error(two_levels, depth)

    assert exact == pytest.approx(0.0, abs=1e-9)
    # The least-squares fit maps 0 -> 3 and 1 -> 7, the means of each group:
    # (1/2 + 1/4 + 1/6 + 1/8) / 4.
    assert coarse == pytest.approx((1 / 2 + 1 / 4 + 1 / 6 + 1 / 8) / 4)


def test_generated_shapes_make_the_triangle_the_rarest_foreground_class():
    images, labels = segmentation_demo.generate_shapes(np.random.default_rng(0), 200, 24)

    shares = np.bincount(labels.ravel(), minlength=4) / labels.size
    assert images.shape == (200, 24, 24, 1) and labels.shape == (200, 24, 24)
    assert np.all(shares > 0)
    assert shares[3] < shares[1] / 2 and shares[3] < shares[2] / 2
    # Discs are drawn bright, squares dark.
    assert images[..., 0][labels == 1].mean() > 0.5 > -0.5 > images[..., 0][labels == 2].mean()


def test_generated_depth_lies_between_the_near_and_far_planes():
    images, depth = depth_demo.generate_scenes(np.random.default_rng(0), 20, 16)

    assert images.shape == (20, 16, 16, 1) and depth.shape == (20, 16, 16)
    assert depth.min() >= 2.0 and depth.max() <= 8.0
    # The bottom row is the nearest ground; the top row is sky at the far plane.
    assert np.all(depth[:, -1, :] < depth[:, 0, :])


def test_tiny_demo_reports_iou_and_aligned_error_rows_and_writes_the_plot(tmp_path):
    settings = demo.DemoSettings(
        image_size=8,
        train_images=8,
        test_images=4,
        epochs=1,
        segmentation_losses=("lovasz",),
        detection_seconds=0.0,
        detection_images=8,
    )
    stream = io.StringIO()

    rows = demo.run_demo(tmp_path, Progress(stream=stream), settings)

    assert all(isinstance(row, DemoRow) and math.isfinite(row.value) for row in rows)
    metrics = {(row.demo, row.metric): row.value for row in rows}
    for class_name in segmentation_demo.CLASS_NAMES:
        assert 0.0 <= metrics[("vision segmentation: lovasz", f"held-out IoU, {class_name}")] <= 1.0
    assert ("vision segmentation: lovasz", "held-out mIoU (4 classes)") in metrics
    depth_rows = [row for row in rows if row.demo.startswith("vision depth")]
    assert [row.demo for row in depth_rows] == [
        "vision depth: AffineInvariantLoss",
        "vision depth: L1 (MeanAbsoluteError)",
    ]
    assert all(row.value >= 0.0 for row in depth_rows)
    detection_rows = [row for row in rows if row.demo == "vision: YOLOv12 detection loss"]
    assert len(detection_rows) == 2
    assert all(0.0 <= row.value <= 1.0 for row in detection_rows)
    assert len(rows) == 5 + 2 + 2
    assert (tmp_path / segmentation_demo.PLOT_FILE).stat().st_size > 0
    assert (tmp_path / "vision_yolo_detection.png").stat().st_size > 0
    assert "training with lovasz" in stream.getvalue()
