"""The assigner's building blocks against numpy on random inputs: candidates, top-k, DFL."""

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

from dl_techniques.losses.core.testing.numeric import backend_gradient
from dl_techniques.losses.vision import _yolo_anchors, _yolo_assigner, _yolo_boxes

RNG = np.random.default_rng(3)


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
    points = convert_to_numpy(_yolo_anchors.anchor_points((96, 128))[0])
    boxes = random_boxes(3, 7, 96)
    boxes[0, 1] = [0.0, 0.0, 128.0, 96.0]
    boxes[1, 2] = [40.0, 40.0, 44.0, 43.0]
    valid = RNG.uniform(size=(3, 7)) < 0.7
    valid[0, 1] = False

    result = convert_to_numpy(
        _yolo_assigner.candidate_mask(
            keras.ops.convert_to_tensor(points),
            keras.ops.convert_to_tensor(boxes),
            keras.ops.convert_to_tensor(valid.astype("float32")),
        )
    )

    np.testing.assert_array_equal(result, numpy_candidates(points, boxes, valid).astype("float32"))
    assert result[0, 1].sum() == 0.0


@pytest.mark.parametrize("topk", [1, 4, 30])
def test_top_k_picks_are_the_k_best_candidates_of_each_box(topk):
    # Distinct alignments (a random permutation), about a third of them candidates.
    align = RNG.permutation(4 * 5 * 24).reshape(4, 5, 24).astype("float32") / 500.0
    candidates = (RNG.uniform(size=align.shape) < 0.35).astype("float32")
    candidates[0, 0] = 0.0
    candidates[1, 1] = 1.0
    ranked = np.where(candidates > 0, align, _yolo_assigner.NOT_CANDIDATE).astype("float32")

    picks = _yolo_assigner._top_k_picks(keras.ops.convert_to_tensor(ranked), topk)

    anchors, chosen = convert_to_numpy(picks.anchors), convert_to_numpy(picks.chosen)
    assert anchors.shape == chosen.shape == (4, 5, min(topk, 24))
    result = np.zeros_like(align)
    for index in np.ndindex(align.shape[:2]):
        marked = anchors[index][chosen[index]]
        assert len(set(marked.tolist())) == len(marked)
        result[index][marked] = 1.0
    expected = np.zeros_like(align)
    for index in np.ndindex(align.shape[:2]):
        inside = np.flatnonzero(candidates[index])
        best = inside[np.argsort(-align[index][inside])][:topk]
        expected[index][best] = 1.0
    np.testing.assert_array_equal(result, expected)


def test_score_of_class_gathers_each_box_class_at_every_anchor():
    scores = RNG.uniform(size=(3, 11, 6)).astype("float32")
    class_ids = RNG.integers(0, 6, size=(3, 4)).astype("int32")

    # The broadcast rows of the dense pairs: anchors (3, 1, 11, 6), box classes (3, 4, 1, 1).
    result = convert_to_numpy(
        _yolo_assigner._score_of_class(
            keras.ops.convert_to_tensor(scores[:, None]),
            keras.ops.convert_to_tensor(class_ids[:, :, None, None]),
        )
    )

    expected = np.stack([scores[b][:, class_ids[b]].T for b in range(3)])
    np.testing.assert_array_equal(result, expected)


def test_dfl_of_random_targets_matches_numpy():
    reg_max = 16
    logits = RNG.normal(size=(5, 7, 4 * reg_max)).astype("float32") * 2.0
    targets = RNG.uniform(-2.0, reg_max + 2.0, size=(5, 7, 4)).astype("float32")

    result = convert_to_numpy(_yolo_boxes.distribution_focal_loss(logits, targets, reg_max))

    sides = logits.astype("float64").reshape(5, 7, 4, reg_max)
    log_probabilities = sides - np.log(np.exp(sides).sum(-1, keepdims=True))
    clipped = np.clip(targets.astype("float64"), 0.0, reg_max - 1.01)
    left = np.floor(clipped).astype(int)
    weight = left + 1.0 - clipped
    left_log = np.take_along_axis(log_probabilities, left[..., None], -1)[..., 0]
    right_log = np.take_along_axis(log_probabilities, left[..., None] + 1, -1)[..., 0]
    expected = (-(weight * left_log + (1.0 - weight) * right_log)).mean(-1)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compiled", [False, True])
def test_dfl_gradient_is_softmax_minus_the_two_bin_target(compiled):
    # Per side d DFL / d logits = (softmax - target) / 4, the target i + 1 - t at
    # bin i = floor(t) and t - i at i + 1; targets on a bin, at both clamps and
    # between bins.
    reg_max = 8
    logits = RNG.normal(size=(3, 4 * reg_max)).astype("float32")
    targets = np.array(
        [[0.0, 3.0, 6.99, 2.25], [-1.0, 9.0, 0.5, 4.75], [6.5, 1.0, 5.125, 3.5]], "float32"
    )
    weights = np.array([1.0, 0.5, 2.0], "float32")

    gradient = backend_gradient(
        lambda values: keras.ops.sum(
            _yolo_boxes.distribution_focal_loss(
                values, keras.ops.convert_to_tensor(targets), reg_max
            )
            * keras.ops.convert_to_tensor(weights)
        ),
        logits,
        compiled=compiled,
    )

    sides = logits.astype("float64").reshape(3, 4, reg_max)
    softmax = np.exp(sides) / np.exp(sides).sum(-1, keepdims=True)
    clipped = np.clip(targets.astype("float64"), 0.0, reg_max - 1.01)
    target = np.zeros_like(sides)
    for index in np.ndindex(clipped.shape):
        left = int(np.floor(clipped[index]))
        target[index][left] = left + 1.0 - clipped[index]
        target[index][left + 1] += clipped[index] - left
    expected = (softmax - target) * weights[:, None, None] / 4.0
    np.testing.assert_allclose(gradient, expected.reshape(3, -1), rtol=1e-5, atol=1e-7)


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

    candidates = numpy_candidates(convert_to_numpy(points), boxes, labels >= 0)
    np.testing.assert_array_equal(convert_to_numpy(result.candidates), candidates.astype("float32"))
    dense = convert_to_numpy(_yolo_boxes.complete_iou(tensors[3][:, :, None], tensors[1][:, None]))
    overlaps = np.where(candidates, np.maximum(dense, 0.0), 0.0)
    class_scores = np.stack(
        [scores[b][:, np.maximum(labels[b], 0).astype(int)].T for b in range(2)]
    )
    align = class_scores * candidates * overlaps
    foreground = convert_to_numpy(result.foreground) > 0
    target_boxes, target_scores = (
        convert_to_numpy(result.target_boxes),
        convert_to_numpy(result.target_scores),
    )
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


def numpy_complete_iou(first, second):
    """CIoU of broadcastable ``(..., 4)`` boxes in float64, heights floored at 1e-7."""
    x1a, y1a, x2a, y2a = np.moveaxis(first.astype("float64"), -1, 0)
    x1b, y1b, x2b, y2b = np.moveaxis(second.astype("float64"), -1, 0)
    wa, ha = x2a - x1a, np.maximum(y2a - y1a, 1e-7)
    wb, hb = x2b - x1b, np.maximum(y2b - y1b, 1e-7)
    overlap_w = np.maximum(np.minimum(x2a, x2b) - np.maximum(x1a, x1b), 0.0)
    overlap_h = np.maximum(np.minimum(y2a, y2b) - np.maximum(y1a, y1b), 0.0)
    intersection = overlap_w * overlap_h
    iou = intersection / (wa * ha + wb * hb - intersection + 1e-7)
    enclosing_w = np.maximum(x2a, x2b) - np.minimum(x1a, x1b)
    enclosing_h = np.maximum(y2a, y2b) - np.minimum(y1a, y1b)
    diagonal = enclosing_w**2 + enclosing_h**2 + 1e-7
    centres = ((x1b + x2b - x1a - x2a) ** 2 + (y1b + y2b - y1a - y2a) ** 2) / 4.0
    v = 4.0 / np.pi**2 * (np.arctan(wb / hb) - np.arctan(wa / ha)) ** 2
    return iou - (centres / diagonal + v * v / (v - iou + 1.0 + 1e-7))


def numpy_dense_assignment(scores, pred, points, labels, boxes, topk, alpha, beta):
    """TOOD's task-aligned assignment on every (image, box, anchor) triple, float64.

    As Ultralytics' TaskAlignedAssigner: each box marks its top-k candidates by
    alignment; an anchor marked by several boxes goes to the box of highest CIoU
    (the first on ties, a non-candidate box included); targets are the class
    one-hot times align / max_align * max_CIoU over the box's positives.
    """
    batch, num_boxes = labels.shape
    candidates = numpy_candidates(points, boxes, labels >= 0)
    classes = np.maximum(labels, 0).astype(int)
    box_scores = np.stack([scores[b][:, classes[b]].T for b in range(batch)]).astype("float64")
    dense_ciou = numpy_complete_iou(boxes[:, :, None], pred[:, None])
    overlaps = np.where(candidates, np.maximum(dense_ciou, 0.0), 0.0)
    align = (box_scores * candidates) ** alpha * overlaps**beta
    positives = np.zeros(align.shape)
    for index in np.ndindex(batch, num_boxes):
        inside = np.flatnonzero(candidates[index])
        positives[index][inside[np.argsort(-align[index][inside], kind="stable")][:topk]] = 1.0
    conflicts = positives.sum(1) > 1
    owners = np.argmax(overlaps, axis=1)
    owned = np.arange(num_boxes)[None, :, None] == owners[:, None]
    positives = np.where(conflicts[:, None], owned, positives)
    foreground = positives.sum(1) > 0
    assigned = np.argmax(positives, axis=1)
    max_align = (align * positives).max(-1, keepdims=True)
    max_overlap = (overlaps * positives).max(-1, keepdims=True)
    scale = (align * positives * max_overlap / (max_align + 1e-9)).max(1)
    target_classes = np.take_along_axis(classes, assigned, axis=1)
    target_scores = np.eye(scores.shape[-1])[target_classes] * scale[..., None]
    target_boxes = np.take_along_axis(boxes, assigned[..., None], axis=1) * foreground[..., None]
    return target_scores, target_boxes, foreground, conflicts, overlaps, candidates, owners


@pytest.mark.parametrize("alpha, beta", [(0.5, 6.0), (0.0, 0.0)])
def test_assignment_equals_the_dense_formulation_where_anchors_are_claimed_twice(alpha, beta):
    # Three overlapping boxes share most of their candidates, and every box
    # takes all of its candidates (topk above their count), so many anchors
    # are claimed twice; predicted boxes anywhere in the image give many
    # CIoUs <= 0, so some claimed anchors have an all-zero CIoU column and go
    # to box 0, which does not hold them. With both exponents 0 every pair
    # aligns to 1, off the candidates included.
    rng = np.random.default_rng(12)
    size, classes = 64, 3
    points = convert_to_numpy(_yolo_anchors.anchor_points((size, size))[0])
    boxes = np.array(
        [
            [[44, 44, 62, 60], [6, 8, 38, 36], [14, 4, 40, 30], [10, 14, 34, 42], [0, 0, 9, 9]],
            [[48, 2, 60, 20], [4, 30, 40, 60], [8, 26, 30, 62], [0, 0, 0, 0], [2, 34, 36, 56]],
        ],
        "float32",
    )
    labels = np.array([[0, 1, 2, 0, 1], [2, 0, 1, -1, 1]], "float32")
    corners = rng.uniform(0, size - 4, size=(2, len(points), 2))
    far = np.minimum(corners + rng.uniform(1, size / 2, size=corners.shape), size)
    pred = np.concatenate([corners, far], -1).astype("float32")
    scores = rng.uniform(0.05, 0.95, size=(2, len(points), classes)).astype("float32")

    result = _yolo_assigner.assign(
        *(keras.ops.convert_to_tensor(value) for value in (scores, pred, points, labels, boxes)),
        classes,
        30,
        alpha,
        beta,
    )

    expected = numpy_dense_assignment(scores, pred, points, labels, boxes, 30, alpha, beta)
    target_scores, target_boxes, foreground, conflicts, overlaps, candidates, owners = expected
    zero_columns = conflicts & (overlaps.max(axis=1) == 0.0)
    owner_outside = ~np.take_along_axis(candidates, owners[:, None], axis=1)[:, 0]
    assert conflicts.sum() >= 10 and (zero_columns & owner_outside).any()
    np.testing.assert_array_equal(convert_to_numpy(result.foreground), foreground.astype("float32"))
    np.testing.assert_array_equal(convert_to_numpy(result.target_boxes), target_boxes)
    np.testing.assert_allclose(
        convert_to_numpy(result.target_scores), target_scores, rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        convert_to_numpy(result.score_sums), target_scores.sum(-1), rtol=1e-5, atol=1e-7
    )
