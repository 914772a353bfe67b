"""The assigner's building blocks against numpy on random inputs: candidates, top-k, DFL."""

import keras
import numpy as np
import pytest

from dl_techniques.losses.vision import _yolo_anchors, _yolo_assigner, _yolo_boxes

RNG = np.random.default_rng(3)


def as_numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


def random_boxes(batch, boxes, size):
    corners = RNG.uniform(0, size - 4, size=(batch, boxes, 2))
    far = np.minimum(corners + RNG.uniform(1, size / 2, size=(batch, boxes, 2)), size)
    return np.concatenate([corners, far], -1).astype("float32")


def numpy_candidates(points, boxes, valid):
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2.0
    size = boxes[..., 2:] - boxes[..., :2]
    size = np.where((size < 16.0) & valid[..., None], np.float32(16.0), size)
    low, high = centre - size / 2.0, centre + size / 2.0
    distances = np.concatenate(
        [points[None, None] - low[:, :, None], high[:, :, None] - points[None, None]], -1
    )
    return (distances.min(-1) > 1e-9) & valid[..., None]


def test_candidates_match_numpy_and_padding_rows_hold_none():
    points = as_numpy(_yolo_anchors.anchor_points((96, 128))[0])
    boxes = random_boxes(3, 7, 96)
    boxes[0, 1] = [0.0, 0.0, 128.0, 96.0]
    boxes[1, 2] = [40.0, 40.0, 44.0, 43.0]
    valid = RNG.uniform(size=(3, 7)) < 0.7
    valid[0, 1] = False

    result = as_numpy(
        _yolo_assigner.candidate_mask(
            keras.ops.convert_to_tensor(points),
            keras.ops.convert_to_tensor(boxes),
            keras.ops.convert_to_tensor(valid.astype("float32")),
        )
    )

    np.testing.assert_array_equal(result, numpy_candidates(points, boxes, valid).astype("float32"))
    assert result[0, 1].sum() == 0.0


@pytest.mark.parametrize("topk", [1, 4, 30])
def test_top_k_mask_marks_the_k_best_candidates_of_each_box(topk):
    # Distinct alignments (a random permutation), about a third of them candidates.
    align = RNG.permutation(4 * 5 * 24).reshape(4, 5, 24).astype("float32") / 500.0
    candidates = (RNG.uniform(size=align.shape) < 0.35).astype("float32")
    candidates[0, 0] = 0.0
    candidates[1, 1] = 1.0

    result = as_numpy(
        _yolo_assigner._top_k_mask(
            keras.ops.convert_to_tensor(align), keras.ops.convert_to_tensor(candidates), topk
        )
    )

    expected = np.zeros_like(align)
    for index in np.ndindex(align.shape[:2]):
        inside = np.flatnonzero(candidates[index])
        best = inside[np.argsort(-align[index][inside])][:topk]
        expected[index][best] = 1.0
    np.testing.assert_array_equal(result, expected)


def test_scores_of_classes_gathers_each_box_class_at_every_anchor():
    scores = RNG.uniform(size=(3, 11, 6)).astype("float32")
    class_ids = RNG.integers(0, 6, size=(3, 4)).astype("int32")

    result = as_numpy(
        _yolo_assigner._scores_of_classes(
            keras.ops.convert_to_tensor(scores), keras.ops.convert_to_tensor(class_ids)
        )
    )

    expected = np.stack([scores[b][:, class_ids[b]].T for b in range(3)])
    np.testing.assert_array_equal(result, expected)


def test_dfl_of_random_targets_matches_numpy():
    reg_max = 16
    logits = RNG.normal(size=(5, 7, 4 * reg_max)).astype("float32") * 2.0
    targets = RNG.uniform(-2.0, reg_max + 2.0, size=(5, 7, 4)).astype("float32")

    result = as_numpy(_yolo_boxes.distribution_focal_loss(logits, targets, reg_max))

    sides = logits.astype("float64").reshape(5, 7, 4, reg_max)
    log_probabilities = sides - np.log(np.exp(sides).sum(-1, keepdims=True))
    clipped = np.clip(targets.astype("float64"), 0.0, reg_max - 1.01)
    left = np.floor(clipped).astype(int)
    weight = left + 1.0 - clipped
    left_log = np.take_along_axis(log_probabilities, left[..., None], -1)[..., 0]
    right_log = np.take_along_axis(log_probabilities, left[..., None] + 1, -1)[..., 0]
    expected = (-(weight * left_log + (1.0 - weight) * right_log)).mean(-1)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


def test_assigner_overlaps_on_candidate_pairs_equal_the_dense_ciou():
    # assign's CIoU runs on the candidate pairs only where the backend gathers
    # them; the target scores must then equal those from the dense CIoU.
    size, classes = 64, 3
    points = _yolo_anchors.anchor_points((size, size))[0]
    boxes = random_boxes(2, 5, size)
    labels = RNG.integers(0, classes, size=(2, 5)).astype("float32")
    labels[1, 4] = -1.0
    pred = random_boxes(2, int(points.shape[0]), size)
    scores = RNG.uniform(0.05, 0.95, size=(2, int(points.shape[0]), classes)).astype("float32")
    tensors = [keras.ops.convert_to_tensor(value) for value in (scores, pred, labels, boxes)]

    result = _yolo_assigner.assign(
        tensors[0], tensors[1], points, tensors[2], tensors[3], classes, 10, 1.0, 1.0
    )

    candidates = numpy_candidates(as_numpy(points), boxes, labels >= 0)
    np.testing.assert_array_equal(as_numpy(result.candidates), candidates.astype("float32"))
    dense = as_numpy(_yolo_boxes.complete_iou(tensors[3][:, :, None], tensors[1][:, None]))
    overlaps = np.where(candidates, np.maximum(dense, 0.0), 0.0)
    class_scores = np.stack(
        [scores[b][:, np.maximum(labels[b], 0).astype(int)].T for b in range(2)]
    )
    align = class_scores * candidates * overlaps
    foreground = as_numpy(result.foreground) > 0
    target_boxes, target_scores = as_numpy(result.target_boxes), as_numpy(result.target_scores)
    # The random boxes are distinct: an anchor's target box names its GT.
    owner = np.array(
        [
            [
                np.flatnonzero((boxes[b] == target_boxes[b, a]).all(-1))[:1]
                for a in range(len(pred[b]))
            ]
            for b in range(2)
        ],
        dtype=object,
    )
    assert foreground.any()
    for b, a in zip(*np.nonzero(foreground), strict=True):
        (g,) = owner[b, a]
        positives = foreground[b] & np.array([list(box) == [g] for box in owner[b]])
        expected = (
            align[b, g, a] * overlaps[b, g][positives].max() / (align[b, g][positives].max() + 1e-9)
        )
        np.testing.assert_allclose(target_scores[b, a].max(), expected, rtol=1e-5, atol=1e-7)
        if expected > 0.0:
            assert int(np.argmax(target_scores[b, a])) == int(labels[b, g])
