"""The task-aligned assigner on a 64x64 input (84 anchors) with 1-3 hand-placed boxes.

Anchor indices: stride 8 cells are 0-63 (index = 8 row + col, centre 8 col + 4),
stride 16 cells 64-79 (index = 64 + 4 row + col, centre 16 col + 8), stride 32
cells 80-83. Every anchor predicts a square box centred on itself.
"""

import keras
import numpy as np

from dl_techniques.losses.core.testing.numeric import compiled_on_jax
from dl_techniques.losses.vision import _yolo_anchors, _yolo_assigner

INPUT_SHAPE = (64, 64)
NUM_CLASSES = 2
# Candidates of the box [16, 16, 32, 32]: stride-8 centres 20 and 28 on both axes
# (rows/cols 2 and 3), the stride-16 centre (24, 24); the stride-32 centre 16
# lies on the edge, which is not inside.
SQUARE_CANDIDATES = [18, 19, 26, 27, 69]


def run_assigner(gt_rows, box_size=16.0, topk=10):
    points = keras.ops.convert_to_numpy(_yolo_anchors.anchor_points(INPUT_SHAPE)[0])
    half = box_size / 2
    pred_boxes = np.concatenate([points - half, points + half], -1)[None].astype("float32")
    scores = np.full((1, len(points), NUM_CLASSES), 0.5, "float32")
    gt = np.asarray(gt_rows, "float32")[None]
    tensors = [keras.ops.convert_to_tensor(value) for value in (scores, pred_boxes, points, gt)]
    scores, pred_boxes, points, gt = tensors
    assign = compiled_on_jax(
        lambda scores, pred_boxes, points, gt: _yolo_assigner.assign(
            scores, pred_boxes, points, gt[..., 0], gt[..., 1:], NUM_CLASSES, topk, 0.5, 6.0
        )
    )
    result = assign(scores, pred_boxes, points, gt)
    return {name: keras.ops.convert_to_numpy(value)[0] for name, value in result._asdict().items()}


def test_one_box_takes_the_anchors_inside_it_with_ciou_graded_soft_targets():
    result = run_assigner([[1, 16, 16, 32, 32]])
    np.testing.assert_array_equal(np.flatnonzero(result["foreground"]), SQUARE_CANDIDATES)
    # Anchor 69 predicts the box exactly (CIoU 1): the best alignment and IoU, target 1.
    # A stride-8 anchor at (20, 20) predicts [12, 12, 28, 28]: IoU 144 / 368, centre
    # distance^2 32 over an enclosing diagonal^2 800, so CIoU = 0.391304 - 0.04 = 0.351304;
    # its target is (align / max align) * max CIoU = 0.351304^6 = 0.0018798.
    expected = np.zeros(84)
    expected[[18, 19, 26, 27]] = 0.351304**6
    expected[69] = 1.0
    np.testing.assert_allclose(result["target_scores"][:, 1], expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(result["target_scores"][:, 0], np.zeros(84))
    np.testing.assert_array_equal(result["target_boxes"][69], [16, 16, 32, 32])
    np.testing.assert_array_equal(result["target_boxes"][0], [0, 0, 0, 0])


def test_top_k_keeps_the_best_aligned_candidates():
    # The 40x40 box [8, 8, 48, 48] holds 5x5 stride-8, 2x2 stride-16 and 1 stride-32
    # candidates (centres on its edges are out). With topk=1 only anchor 27 (centre
    # (28, 28)) is kept: its 40x40 prediction is the box itself.
    result = run_assigner([[0, 8, 8, 48, 48]], box_size=40.0, topk=1)
    assert int(result["candidates"][0].sum()) == 25 + 4 + 1
    np.testing.assert_array_equal(np.flatnonzero(result["foreground"]), [27])
    np.testing.assert_allclose(result["target_scores"][27], [1.0, 0.0], rtol=1e-5)


def test_an_anchor_claimed_by_two_boxes_goes_to_the_higher_ciou():
    # Box A [16, 16, 32, 32] (class 0) and box B [20, 16, 40, 32] (class 1) both
    # hold anchors 19, 27 and 69. Anchor 69 predicts A exactly (CIoU 1 vs 0.457
    # with B); anchor 19 predicts [20, 12, 36, 28]: CIoU 0.351 with A, 0.475 with B.
    result = run_assigner([[0, 16, 16, 32, 32], [1, 20, 16, 40, 32]])
    candidates = result["candidates"]
    np.testing.assert_array_equal(np.flatnonzero(candidates[0] * candidates[1]), [19, 27, 69])
    assigned_class = np.argmax(result["target_scores"], -1)
    assert assigned_class[69] == 0 and assigned_class[19] == 1 and assigned_class[27] == 1
    np.testing.assert_array_equal(result["target_boxes"][69], [16, 16, 32, 32])
    np.testing.assert_array_equal(result["target_boxes"][19], [20, 16, 40, 32])
    assert np.all(result["foreground"] <= 1)
    np.testing.assert_array_equal(
        np.flatnonzero(result["foreground"]), [18, 19, 20, 26, 27, 28, 69]
    )


def test_padding_rows_change_nothing():
    boxes = [[0, 16, 16, 32, 32], [1, 20, 16, 40, 32]]
    padded = [[-1, 0, 0, 64, 64], *boxes, [-1, 10, 10, 20, 20], [-1, 0, 0, 0, 0]]
    plain, with_padding = run_assigner(boxes), run_assigner(padded)
    for name in ("target_boxes", "target_scores", "foreground"):
        np.testing.assert_array_equal(with_padding[name], plain[name], err_msg=name)
    np.testing.assert_array_equal(with_padding["candidates"][[0, 3, 4]], np.zeros((3, 84)))


def test_sides_shorter_than_the_second_stride_are_widened_to_16_pixels_for_candidates():
    # As Ultralytics 8.4: a side below 16 px (the second stride) is searched as
    # 16 px about the box centre. A 4x4, an 8x8 and a 15x15 box at (24, 24) are
    # all searched as [16, 16, 32, 32], the square's candidates (an 8x8 box
    # unwidened would hold only the stride-16 centre (24, 24)).
    # A 4x20 box keeps its height: x in (16, 32), y in (14, 34): rows 2 and 3 of
    # stride 8 (y 20, 28), and (24, 24) at stride 16.
    boxes = [
        [0, 22, 22, 26, 26],
        [1, 22, 14, 26, 34],
        [0, 20, 20, 28, 28],
        [1, 16.5, 16.5, 31.5, 31.5],
    ]
    result = run_assigner(boxes)
    for index in range(4):
        np.testing.assert_array_equal(
            np.flatnonzero(result["candidates"][index]), SQUARE_CANDIDATES, err_msg=str(index)
        )
    # Targets keep the original boxes.
    assigned = result["foreground"] > 0
    assert {tuple(box) for box in result["target_boxes"][assigned]} <= {
        tuple(float(value) for value in box[1:]) for box in boxes
    }
