"""The task-aligned assigner (TOOD; Ultralytics' ``TaskAlignedAssigner``), vectorised.

Every intermediate is at most ``(B, G, A)`` or ``(B, A, C)``; nothing loops
over images, boxes or anchors. The CIoU runs on the candidate pairs only
where the backend gathers a dynamic count (eager torch, through
``ops.pairwise_where``) and on every pair under XLA; the top-k positives are
one scatter of ``top_k``'s indices, and the targets are gathers by each
anchor's box index, with the same values as the one-hot products they
replace. The inputs are detached: the assignment is a target, it carries no
gradient.
"""

import collections

import keras

from dl_techniques.losses.core import ops
from dl_techniques.losses.vision import _yolo_anchors, _yolo_boxes

# Ultralytics' eps of the candidate test and of the soft-target normaliser.
ASSIGNER_EPS = 1e-9

Assignment = collections.namedtuple(
    "Assignment", ["target_boxes", "target_scores", "foreground", "candidates"]
)


def assign(class_scores, pred_boxes, points, gt_labels, gt_boxes, num_classes, topk, alpha, beta):
    """Assigns ground-truth boxes to anchors and returns an :class:`Assignment`.

    ```
    candidates   anchor centre strictly inside the box (sides < 16 px widened to 16 px)
    align        s^alpha * max(CIoU, 0)^beta         s: predicted score of the GT class
    positives    the top-k candidates of each GT by align
    conflicts    an anchor claimed by several GTs goes to the GT of highest CIoU
    soft target  onehot(class) * align / max_align_of_GT * max_CIoU_of_GT
    ```

    Args:
        class_scores: ``(B, A, C)`` sigmoid class probabilities.
        pred_boxes: ``(B, A, 4)`` decoded predicted boxes, pixels.
        points: ``(A, 2)`` anchor centres, pixels.
        gt_labels: ``(B, G)`` class ids, negative on padding rows.
        gt_boxes: ``(B, G, 4)`` boxes, pixels.
        num_classes: ``C``.
        topk: Positives per GT at most.
        alpha: Exponent of the class score in the alignment.
        beta: Exponent of the CIoU in the alignment.

    Returns:
        ``Assignment``: ``target_boxes (B, A, 4)`` pixels (zeros off the
        foreground), ``target_scores (B, A, C)``, ``foreground (B, A)`` 0/1,
        ``candidates (B, G, A)`` 0/1.
    """
    class_scores = keras.ops.stop_gradient(class_scores)
    pred_boxes = keras.ops.stop_gradient(pred_boxes)
    valid = keras.ops.cast(gt_labels >= 0, class_scores.dtype)
    class_ids = keras.ops.cast(keras.ops.maximum(gt_labels, 0), "int32")

    candidates = candidate_mask(points, gt_boxes, valid)
    gt_class_scores = _scores_of_classes(class_scores, class_ids) * candidates
    # CIoU on the candidate pairs (every pair where the backend cannot gather
    # a dynamic count), each box's aspect angle computed once.
    overlaps = ops.pairwise_where(
        candidates > 0, _positive_complete_iou, _with_angle(gt_boxes), _with_angle(pred_boxes)
    )
    align = keras.ops.power(gt_class_scores, alpha) * keras.ops.power(overlaps, beta)

    positives = _resolve_conflicts(_top_k_mask(align, candidates, topk), overlaps)
    foreground = keras.ops.sum(positives, axis=1)
    positive_align = align * positives
    max_align = keras.ops.max(positive_align, axis=-1, keepdims=True)
    max_overlap = keras.ops.max(overlaps * positives, axis=-1, keepdims=True)
    scale = keras.ops.max(positive_align * max_overlap / (max_align + ASSIGNER_EPS), axis=1)
    # An anchor has at most one positive box: this sum over the boxes is its index.
    box_ids = keras.ops.arange(positives.shape[1], dtype=positives.dtype)[:, None]
    assigned = keras.ops.cast(keras.ops.sum(positives * box_ids, axis=1), "int32")
    target_boxes = keras.ops.where(
        foreground[..., None] > 0,
        keras.ops.take_along_axis(gt_boxes, assigned[..., None], axis=1),
        0.0,
    )
    target_classes = keras.ops.take_along_axis(class_ids, assigned, axis=1)
    target_scores = keras.ops.where(
        keras.ops.arange(num_classes, dtype="int32") == target_classes[..., None],
        scale[..., None],
        0.0,
    )
    return Assignment(
        target_boxes=keras.ops.stop_gradient(target_boxes),
        target_scores=keras.ops.stop_gradient(target_scores),
        foreground=keras.ops.stop_gradient(foreground),
        candidates=keras.ops.stop_gradient(candidates),
    )


def candidate_mask(points, gt_boxes, valid):
    """``(B, G, A)``: 1 where the anchor centre lies strictly inside the (widened) valid box.

    As Ultralytics 8.4 (``stride_val``): a side shorter than the second
    stride (16 px) is widened about the box centre to 16 px, for this test
    only, so that a small box still has candidate anchors. Comparing with
    the value it is widened to keeps the candidate count monotonic in the
    box size (a threshold of 8 px gave a 7 px side more candidates than a
    9 px one).
    """
    floor = float(_yolo_anchors.STRIDES[1])
    centre = (gt_boxes[..., :2] + gt_boxes[..., 2:]) / 2.0
    size = gt_boxes[..., 2:] - gt_boxes[..., :2]
    widen = keras.ops.logical_and(size < floor, valid[..., None] > 0)
    size = keras.ops.where(widen, floor, size)
    # A padding row's box starts at +inf, so that it holds no anchor.
    top_left = keras.ops.where(valid[..., None] > 0, centre - size / 2.0, float("inf"))
    bottom_right = centre + size / 2.0
    # One (B, G, A) comparison per side: inside when every distance to a side exceeds eps.
    inside = None
    for axis in (0, 1):
        coordinate = points[:, axis]
        for distance in (
            coordinate - top_left[..., axis, None],
            bottom_right[..., axis, None] - coordinate,
        ):
            side = distance > ASSIGNER_EPS
            inside = side if inside is None else keras.ops.logical_and(inside, side)
    return keras.ops.cast(inside, gt_boxes.dtype)


def _scores_of_classes(class_scores, class_ids):
    """``(B, G, A)``: ``class_scores[b, :, class_ids[b, g]]``, rows gathered from ``(B C, A)``."""
    num_anchors, num_classes = class_scores.shape[1], class_scores.shape[2]
    by_class = keras.ops.reshape(keras.ops.transpose(class_scores, (0, 2, 1)), (-1, num_anchors))
    batch = keras.ops.shape(class_ids)[0]
    rows = keras.ops.arange(batch, dtype="int32")[:, None] * num_classes + class_ids
    gathered = keras.ops.take(by_class, keras.ops.reshape(rows, (-1,)), axis=0)
    return keras.ops.reshape(gathered, (-1, class_ids.shape[1], num_anchors))


def _with_angle(boxes):
    """``(..., 5)``: the box and its aspect angle."""
    return keras.ops.concatenate([boxes, _yolo_boxes.aspect_angle(boxes)[..., None]], axis=-1)


def _positive_complete_iou(first, second):
    """``max(CIoU, 0)`` of rows ``(..., 5)`` from :func:`_with_angle`."""
    return keras.ops.relu(
        _yolo_boxes.complete_iou_with_angles(
            first[..., :4], second[..., :4], first[..., 4], second[..., 4]
        )
    )


def _top_k_mask(align, candidates, topk):
    """``(B, G, A)``: 1 at each box's top-k candidates by ``align``, written by one scatter.

    Non-candidates rank below every candidate, so the k picks are candidates
    whenever a box has k of them; a candidate with zero alignment still
    counts, and the soft targets grade it to zero. The picks are the indices
    ``top_k`` returns (whatever its order among equal values), written into
    the flattened ``(B G A,)`` mask at ``row * A + index``; the indices of one
    row are distinct, so every position is written at most once.
    """
    num_anchors = align.shape[-1]
    count = min(topk, num_anchors)
    ranked = keras.ops.where(candidates > 0, align, -1.0)
    values, indices = keras.ops.top_k(ranked, count, sorted=True)
    chosen = keras.ops.cast(values >= 0.0, align.dtype)
    picks = keras.ops.reshape(keras.ops.cast(indices, "int32"), (-1, count))
    row_starts = keras.ops.arange(keras.ops.shape(picks)[0], dtype="int32")[:, None] * num_anchors
    mask = keras.ops.scatter_update(
        keras.ops.zeros_like(keras.ops.reshape(align, (-1,))),
        keras.ops.reshape(row_starts + picks, (-1, 1)),
        keras.ops.reshape(chosen, (-1,)),
    )
    return keras.ops.reshape(mask, keras.ops.shape(align))


def _resolve_conflicts(positives, overlaps):
    """An anchor claimed by several boxes keeps only the box of highest CIoU (the first on ties)."""
    claims = keras.ops.sum(positives, axis=1, keepdims=True)
    best = keras.ops.argmax(overlaps, axis=1)[:, None, :]
    box_ids = keras.ops.arange(positives.shape[1], dtype=best.dtype)[:, None]
    best = keras.ops.cast(box_ids == best, positives.dtype)
    return keras.ops.where(claims > 1.0, best, positives)
