"""The task-aligned assigner (TOOD; Ultralytics' ``TaskAlignedAssigner``), vectorised.

Every intermediate is at most ``(B, G, A)`` or ``(B, A, C)``; nothing loops
over images, boxes or anchors. The inputs are detached: the assignment is a
target, it carries no gradient.
"""

import collections

import keras

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
    dtype = class_scores.dtype
    valid = keras.ops.cast(gt_labels >= 0, dtype)
    class_ids = keras.ops.cast(keras.ops.maximum(gt_labels, 0), "int32")
    gt_one_hot = keras.ops.one_hot(class_ids, num_classes, dtype=dtype) * valid[..., None]

    candidates = candidate_mask(points, gt_boxes, valid)
    # (B, G, A): the predicted probability of each GT's class at each anchor.
    gt_class_scores = keras.ops.einsum("bgc,bac->bga", gt_one_hot, class_scores) * candidates
    overlaps = keras.ops.relu(
        _yolo_boxes.complete_iou(gt_boxes[:, :, None, :], pred_boxes[:, None, :, :])
    )
    overlaps = overlaps * candidates
    align = keras.ops.power(gt_class_scores, alpha) * keras.ops.power(overlaps, beta)

    positives = _top_k_mask(align, candidates, topk) * candidates
    positives = _resolve_conflicts(positives, overlaps)
    foreground = keras.ops.sum(positives, axis=1)

    target_boxes = keras.ops.einsum("bga,bgk->bak", positives, gt_boxes)
    target_classes = keras.ops.einsum("bga,bgc->bac", positives, gt_one_hot)
    positive_align = align * positives
    max_align = keras.ops.max(positive_align, axis=-1, keepdims=True)
    max_overlap = keras.ops.max(overlaps * positives, axis=-1, keepdims=True)
    scale = keras.ops.max(positive_align * max_overlap / (max_align + ASSIGNER_EPS), axis=1)
    target_scores = target_classes * scale[..., None]
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
    top_left = (centre - size / 2.0)[:, :, None, :]
    bottom_right = (centre + size / 2.0)[:, :, None, :]
    inside = keras.ops.minimum(
        keras.ops.min(points - top_left, axis=-1), keras.ops.min(bottom_right - points, axis=-1)
    )
    return keras.ops.cast(inside > ASSIGNER_EPS, gt_boxes.dtype) * valid[..., None]


def _top_k_mask(align, candidates, topk):
    num_anchors = align.shape[-1]
    count = min(topk, num_anchors)
    # Non-candidates rank below every candidate, so the k picks are candidates
    # whenever a box has k of them; a candidate with zero alignment still
    # counts, and the soft targets grade it to zero.
    ranked = keras.ops.where(candidates > 0, align, -1.0)
    values, indices = keras.ops.top_k(ranked, count, sorted=True)
    chosen = keras.ops.cast(values >= 0.0, align.dtype)
    mask = keras.ops.zeros_like(align)
    # k is a hyper-parameter (10), not a data size: one (B, G, A) one-hot per rank.
    for rank in range(count):
        mask = mask + chosen[..., rank, None] * keras.ops.one_hot(
            indices[..., rank], num_anchors, dtype=align.dtype
        )
    return mask


def _resolve_conflicts(positives, overlaps):
    num_boxes = positives.shape[1]
    claims = keras.ops.sum(positives, axis=1, keepdims=True)
    best = keras.ops.one_hot(
        keras.ops.argmax(overlaps, axis=1), num_boxes, axis=1, dtype=positives.dtype
    )
    return keras.ops.where(claims > 1.0, best, positives)
