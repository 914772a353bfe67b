"""Anchor grid, DFL decoding, CIoU and DFL targets of the YOLO loss, on hand-worked cases."""

import math

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.vision import _yolo_anchors, _yolo_boxes


def ciou(first, second):
    value = _yolo_boxes.complete_iou(
        keras.ops.convert_to_tensor(np.asarray(first, "float32")),
        keras.ops.convert_to_tensor(np.asarray(second, "float32")),
    )
    return float(keras.ops.convert_to_numpy(value))


def test_anchor_points_are_cell_centres_stride_8_first_row_major():
    points, strides = (keras.ops.convert_to_numpy(t) for t in _yolo_anchors.anchor_points((64, 96)))
    # 8x12 + 4x6 + 2x3 cells.
    assert points.shape == (96 + 24 + 6, 2) == (_yolo_anchors.num_anchors((64, 96)), 2)
    np.testing.assert_array_equal(points[[0, 1, 12]], [[4, 4], [12, 4], [4, 12]])
    np.testing.assert_array_equal(points[[96, 120, 125]], [[8, 8], [16, 16], [80, 48]])
    np.testing.assert_array_equal(strides[[0, 95, 96, 119, 120]], [8, 8, 16, 16, 32])


@pytest.mark.parametrize(
    "first, second, expected",
    [
        # Identical: IoU 1, no centre distance, equal aspect.
        ([0, 0, 4, 2], [0, 0, 4, 2], 1.0),
        # Disjoint side by side: IoU 0; centres 4 apart, enclosing 6x2 (d^2 = 40): -16/40.
        ([0, 0, 2, 2], [4, 0, 6, 2], -0.4),
        # Nested, same centre, both square: IoU 4 / 16.
        ([0, 0, 4, 4], [1, 1, 3, 3], 0.25),
        # Offset 4x2 and 2x4: IoU 4/12; centres 1 apart, enclosing 4x4 (d^2 = 32);
        # v = 4/pi^2 (atan 0.5 - atan 2)^2 = 0.167826, alpha = v / (v - 1/3 + 1) = 0.201111:
        # 1/3 - 1/32 - v alpha = 0.268332.
        ([0, 0, 4, 2], [1, 0, 3, 4], 0.268332),
    ],
)
def test_complete_iou_of_hand_worked_pairs(first, second, expected):
    assert ciou(first, second) == pytest.approx(expected, abs=2e-6)
    assert ciou(second, first) == pytest.approx(expected, abs=2e-6)


def test_complete_iou_treats_the_aspect_weight_as_a_constant():
    anchor_box = np.array([1.0, 0.5, 3.0, 4.5])  # no side on a side of the target (kinks)
    target = np.array([0.0, 0.0, 4.0, 2.0])

    def ciou_with_alpha(box, alpha):
        x1, y1, x2, y2 = box
        inter = max(min(x2, 4) - max(x1, 0), 0) * max(min(y2, 2) - max(y1, 0), 0)
        iou = inter / ((x2 - x1) * (y2 - y1) + 8 - inter + 1e-7)
        rho2 = ((x1 + x2 - 4) ** 2 + (y1 + y2 - 2) ** 2) / 4
        c2 = (max(x2, 4) - min(x1, 0)) ** 2 + (max(y2, 2) - min(y1, 0)) ** 2 + 1e-7
        v = 4 / math.pi**2 * (math.atan(2.0) - math.atan((x2 - x1) / (y2 - y1))) ** 2
        if alpha is None:
            alpha = v / (v - iou + 1 + 1e-7)
        return iou - rho2 / c2 - v * alpha, alpha

    _, alpha = ciou_with_alpha(anchor_box, None)
    target_tensor = keras.ops.convert_to_tensor(target, "float32")
    gradient = keras.ops.convert_to_numpy(
        input_gradient(
            lambda box: _yolo_boxes.complete_iou(box, target_tensor),
            keras.ops.convert_to_tensor(anchor_box, "float32"),
        )
    )
    step = 1e-5
    numeric = [
        (
            ciou_with_alpha(anchor_box + step * unit, alpha)[0]
            - ciou_with_alpha(anchor_box - step * unit, alpha)[0]
        )
        / (2 * step)
        for unit in np.eye(4)
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-3, atol=1e-4)


def test_expected_distances_are_the_softmax_mean_of_the_bins():
    reg_max = 16
    logits = np.full((1, 4, reg_max), -30.0, "float32")
    logits[0, 0, 3] = logits[0, 1, 0] = logits[0, 3, 15] = 30.0
    logits[0, 2, [5, 6]] = 30.0  # two equal bins: mean 5.5
    distances = keras.ops.convert_to_numpy(
        _yolo_boxes.expected_distances(logits.reshape(1, 4 * reg_max), reg_max)
    )
    np.testing.assert_allclose(distances, [[3.0, 0.0, 5.5, 15.0]], atol=1e-5)


def test_distance_targets_are_clamped_to_zero_and_reg_max_minus_1_01():
    points = np.array([[10.0, 10.0]], "float32")
    boxes = np.array([[4.0, 12.0, 30.0, 13.5]], "float32")  # the point lies above the box
    distances = keras.ops.convert_to_numpy(_yolo_boxes.boxes_to_distances(points, boxes, 16))
    np.testing.assert_allclose(distances, [[6.0, 0.0, 14.99, 3.5]], atol=1e-6)


def test_dfl_weights_the_two_neighbouring_bins_linearly():
    reg_max = 16
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, reg_max))
    targets = np.array([[2.3, 0.0, 7.75, 14.995], [5.0, 0.5, 14.99, 1.2]])
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = np.zeros(2)
    for row in range(2):
        for side in range(4):
            target = min(targets[row, side], 14.99)  # 14.995 -> 14.99: 0.01 on bin 14, 0.99 on 15
            left = int(math.floor(target))
            expected[row] -= (
                (left + 1 - target) * log_probs[row, side, left]
                + (target - left) * log_probs[row, side, left + 1]
            ) / 4
    value = _yolo_boxes.distribution_focal_loss(
        logits.reshape(2, 4 * reg_max).astype("float32"), targets.astype("float32"), reg_max
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value), expected, rtol=1e-5)


def test_dfl_of_uniform_bins_is_log_reg_max_for_any_target():
    targets = np.array([[0, 1, 2.5, 9], [3, 3, 3, 3], [14, 0.1, 6, 7]], "float32")
    value = _yolo_boxes.distribution_focal_loss(np.zeros((3, 64), "float32"), targets, 16)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(value), np.full(3, math.log(16)), rtol=1e-6
    )
