"""The task-aligned assigner (TOOD; Ultralytics' ``TaskAlignedAssigner``), vectorised.

The ``(B, G, A)`` work is the candidate test, the CIoU and the alignment
(computed on the candidate pairs only where the backend gathers a dynamic
count: eager torch, through ``ops.pairwise_where``; on every pair under XLA)
and one top-k per box. Everything after the top-k runs on its ``B G k``
picks: an anchor picked by several boxes goes to the box of highest CIoU,
read from that anchor's column of CIoUs; each box's largest alignment and
CIoU over its positives are segment maxima over the picks; the per-anchor
results are scattered into ``(B, A)``. These are the values of the dense
formulation, from the same operations on the same numbers. The inputs are
detached: the assignment is a target, it carries no gradient.
"""

import collections
import functools

import keras

from dl_techniques.losses.core import ops
from dl_techniques.losses.vision import _yolo_anchors, _yolo_boxes

# Ultralytics' eps of the candidate test and of the soft-target normaliser.
ASSIGNER_EPS = 1e-9
# The rank of a pair that is not a candidate: below every alignment (>= 0).
NOT_CANDIDATE = -1.0

Assignment = collections.namedtuple(
    "Assignment", ["target_boxes", "target_scores", "score_sums", "foreground", "candidates"]
)
Picks = collections.namedtuple("Picks", ["anchors", "chosen"])


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
        foreground), ``target_scores (B, A, C)``, ``score_sums (B, A)`` (the
        target scores summed over the classes: the one positive class's
        score), ``foreground (B, A)`` 0/1, ``candidates (B, G, A)`` boolean.
    """
    class_scores = keras.ops.stop_gradient(class_scores)
    pred_boxes = keras.ops.stop_gradient(pred_boxes)
    class_ids = keras.ops.cast(keras.ops.maximum(gt_labels, 0), "int32")
    candidates = candidate_mask(points, gt_boxes, gt_labels >= 0)
    # The CIoU and the alignment on the candidate pairs (every pair where the
    # backend cannot gather a dynamic count), each box's aspect angle once.
    overlaps, ranked = ops.pairwise_where(
        candidates,
        functools.partial(_overlap_and_alignment, alpha=alpha, beta=beta),
        (_with_angle(gt_boxes), class_ids[..., None]),
        (_with_angle(pred_boxes), class_scores),
        fill=(0.0, NOT_CANDIDATE),
    )
    # Off the candidates the alignment is that of a zero score and CIoU.
    outside = (0.0**alpha) * (0.0**beta)
    picks = _top_k_picks(ranked, topk)

    batch = keras.ops.shape(ranked)[0]
    boxes, anchors = ranked.shape[1], ranked.shape[2]
    count = picks.anchors.shape[-1]
    picked = keras.ops.reshape(picks.anchors, (-1, 1, boxes * count))
    overlap_columns = keras.ops.take_along_axis(overlaps, picked, axis=2)
    ranked_columns = keras.ops.take_along_axis(ranked, picked, axis=2)

    images = keras.ops.arange(batch, dtype="int32")[:, None, None]
    # Each pick's anchor in the flattened (B A,) anchors; a pick that is not a
    # candidate goes to one spare slot past the end.
    slots = keras.ops.where(picks.chosen, images * anchors + picks.anchors, batch * anchors)
    claims = keras.ops.segment_sum(
        keras.ops.reshape(keras.ops.cast(picks.chosen, overlaps.dtype), (-1,)),
        keras.ops.reshape(slots, (-1,)),
        num_segments=batch * anchors + 1,
    )
    box_ids = keras.ops.arange(boxes, dtype="int32")[None, :, None]
    best = keras.ops.cast(keras.ops.argmax(overlap_columns, axis=1), "int32")
    owners = keras.ops.where(
        keras.ops.take(claims, slots) > 1.0,
        keras.ops.reshape(best, (-1, boxes, count)),
        box_ids,
    )
    owner_rows = keras.ops.reshape(owners, (-1, 1, boxes * count))

    def at_owner(columns):
        values = keras.ops.take_along_axis(columns, owner_rows, axis=1)
        return keras.ops.reshape(values, (-1, boxes, count))

    overlap = at_owner(overlap_columns)
    ranked_owner = at_owner(ranked_columns)
    align = keras.ops.where(ranked_owner == NOT_CANDIDATE, outside, ranked_owner)
    # Each box's maxima over its positives (0 without any), one segment per box.
    box_slots = keras.ops.where(picks.chosen, images * boxes + owners, batch * boxes)

    def box_max(values):
        maxima = keras.ops.segment_max(
            keras.ops.reshape(values, (-1,)),
            keras.ops.reshape(box_slots, (-1,)),
            num_segments=batch * boxes + 1,
        )
        return keras.ops.take(keras.ops.maximum(maxima, 0.0), box_slots)

    scale = align * box_max(overlap) / (box_max(align) + ASSIGNER_EPS)

    def per_anchor(values):
        flat = keras.ops.scatter_update(
            keras.ops.zeros((batch * anchors + 1,), values.dtype),
            keras.ops.reshape(slots, (-1, 1)),
            keras.ops.reshape(values, (-1,)),
        )
        return keras.ops.reshape(flat[:-1], (-1, anchors))

    # Every pick of one anchor writes the same owner and scale.
    score_sums = per_anchor(scale)
    assigned = per_anchor(owners)
    foreground = keras.ops.cast(keras.ops.reshape(claims[:-1], (-1, anchors)) > 0.0, scale.dtype)
    target_boxes = keras.ops.where(
        foreground[..., None] > 0,
        keras.ops.take_along_axis(gt_boxes, assigned[..., None], axis=1),
        0.0,
    )
    target_classes = keras.ops.take_along_axis(class_ids, assigned, axis=1)
    target_scores = keras.ops.where(
        keras.ops.arange(num_classes, dtype="int32") == target_classes[..., None],
        score_sums[..., None],
        0.0,
    )
    return Assignment(
        target_boxes=keras.ops.stop_gradient(target_boxes),
        target_scores=keras.ops.stop_gradient(target_scores),
        score_sums=keras.ops.stop_gradient(score_sums),
        foreground=keras.ops.stop_gradient(foreground),
        candidates=keras.ops.stop_gradient(candidates),
    )


def candidate_mask(points, gt_boxes, valid):
    """``(B, G, A)`` boolean: the anchor centre lies strictly inside the (widened) valid box.

    ``valid`` is ``(B, G)``, boolean or 0/1. As Ultralytics 8.4
    (``stride_val``): a side shorter than the second stride (16 px) is
    widened about the box centre to 16 px, for this test only, so that a
    small box still has candidate anchors. Comparing with the value it is
    widened to keeps the candidate count monotonic in the box size (a
    threshold of 8 px gave a 7 px side more candidates than a 9 px one).
    """
    valid = keras.ops.cast(valid, "bool")[..., None]
    floor = float(_yolo_anchors.STRIDES[1])
    centre = (gt_boxes[..., :2] + gt_boxes[..., 2:]) / 2.0
    size = gt_boxes[..., 2:] - gt_boxes[..., :2]
    size = keras.ops.where(keras.ops.logical_and(size < floor, valid), floor, size)
    # A padding row's box starts at +inf, so that it holds no anchor.
    top_left = keras.ops.where(valid, centre - size / 2.0, float("inf"))
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
    return inside


def _score_of_class(scores, class_id):
    """``scores[..., class_id]``: ``scores (..., C)``, ``class_id (..., 1)`` broadcastable."""
    return keras.ops.take_along_axis(scores, class_id, axis=-1)[..., 0]


def _overlap_and_alignment(gt_rows, pred_rows, alpha, beta):
    """``(max(CIoU, 0), s^alpha max(CIoU, 0)^beta)`` of GT rows and anchor rows.

    ``gt_rows`` is ``(box and angle (..., 5), class id (..., 1))``,
    ``pred_rows`` is ``(box and angle (..., 5), class scores (..., C))``.
    """
    (gt, class_id), (pred, scores) = gt_rows, pred_rows
    overlap = _positive_complete_iou(gt, pred)
    score = _score_of_class(scores, class_id)
    return overlap, keras.ops.power(score, alpha) * keras.ops.power(overlap, beta)


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


def _top_k_picks(ranked, topk):
    """Each box's top-k anchors by ``ranked (B, G, A)``: ``Picks(anchors, chosen)``, ``(B, G, k)``.

    Non-candidates rank at ``NOT_CANDIDATE``, below every candidate, so the
    k picks are candidates whenever a box has k of them; ``chosen`` marks the
    picks that are candidates (a candidate with zero alignment still counts,
    and the soft targets grade it to zero). The picks are the indices
    ``top_k`` returns, whatever its order among equal values.
    """
    count = min(topk, ranked.shape[-1])
    values, indices = keras.ops.top_k(ranked, count, sorted=True)
    return Picks(anchors=keras.ops.cast(indices, "int32"), chosen=values >= 0.0)
