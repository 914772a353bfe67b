"""Box geometry of the YOLO detection loss: DFL decoding, CIoU, distance targets, DFL.

Boxes are ``(..., 4)`` as ``(x1, y1, x2, y2)``; distances are ``(..., 4)`` as
``(left, top, right, bottom)`` from an anchor point. Both are in whatever unit
the caller uses (pixels or stride units), the same for all arguments.
"""

import math

import keras

from dl_techniques.losses.core import ops

# Ultralytics' bbox_iou epsilon; it also floors the box heights.
IOU_EPS = 1e-7
# A target distance stays this far below the last bin, so that its right
# neighbour bin exists.
DISTANCE_MARGIN = 0.01


def expected_distances(box_logits, reg_max):
    """Softmax expectation over ``reg_max`` bins per side.

    ``box_logits`` is ``(..., 4 * reg_max)`` side-major (left, top, right,
    bottom; ``reg_max`` bins each); returns ``(..., 4)`` in bins (stride units).
    """
    return ops.softmax_expectation(_split_sides(box_logits, reg_max))


def distances_to_boxes(points, distances):
    """``(x - l, y - t, x + r, y + b)`` for anchor ``points (..., 2)``."""
    left_top, right_bottom = distances[..., :2], distances[..., 2:]
    return keras.ops.concatenate([points - left_top, points + right_bottom], axis=-1)


def boxes_to_distances(points, boxes, reg_max):
    """Distances from ``points`` to the sides of ``boxes``, clamped to ``[0, reg_max - 1.01]``."""
    distances = keras.ops.concatenate([points - boxes[..., :2], boxes[..., 2:] - points], axis=-1)
    return keras.ops.clip(distances, 0.0, reg_max - 1 - DISTANCE_MARGIN)


def complete_iou(first, second):
    """CIoU of two broadcastable box tensors, ``(...)``.

    ```
    CIoU = IoU - |c1 - c2|^2 / d^2 - alpha v
    v = 4 / pi^2 (atan(w2 / h2) - atan(w1 / h1))^2,   alpha = v / (v - IoU + 1)
    ```

    ``d`` is the diagonal of the smallest enclosing box. ``alpha`` is a
    constant (no gradient), as in Zheng et al. and Ultralytics; heights are
    floored at 1e-7 and 1e-7 is added to the union and to ``d^2``.
    """
    return _complete_iou(first, second, None, None)


def aspect_angle(boxes):
    """``atan(w / h)`` of ``boxes (..., 4)``, ``(...)``, the height floored at 1e-7 as in CIoU."""
    x1, y1, x2, y2 = _unstack(boxes)
    return keras.ops.arctan((x2 - x1) / keras.ops.maximum(y2 - y1, IOU_EPS))


def complete_iou_with_angles(first, second, first_angle, second_angle):
    """:func:`complete_iou` given each box's :func:`aspect_angle`, computed once per box."""
    return _complete_iou(first, second, first_angle, second_angle)


def _complete_iou(first, second, first_angle, second_angle):
    # Angles left None are computed here from the same widths and heights as
    # the IoU, so that the gradient of complete_iou has one path per input.
    x1_a, y1_a, x2_a, y2_a = _unstack(first)
    x1_b, y1_b, x2_b, y2_b = _unstack(second)
    width_a, height_a = x2_a - x1_a, keras.ops.maximum(y2_a - y1_a, IOU_EPS)
    width_b, height_b = x2_b - x1_b, keras.ops.maximum(y2_b - y1_b, IOU_EPS)
    overlap_w = keras.ops.relu(keras.ops.minimum(x2_a, x2_b) - keras.ops.maximum(x1_a, x1_b))
    overlap_h = keras.ops.relu(keras.ops.minimum(y2_a, y2_b) - keras.ops.maximum(y1_a, y1_b))
    intersection = overlap_w * overlap_h
    union = width_a * height_a + width_b * height_b - intersection + IOU_EPS
    iou = intersection / union
    enclosing_w = keras.ops.maximum(x2_a, x2_b) - keras.ops.minimum(x1_a, x1_b)
    enclosing_h = keras.ops.maximum(y2_a, y2_b) - keras.ops.minimum(y1_a, y1_b)
    diagonal = enclosing_w**2 + enclosing_h**2 + IOU_EPS
    centre_distance = ((x1_b + x2_b - x1_a - x2_a) ** 2 + (y1_b + y2_b - y1_a - y2_a) ** 2) / 4.0
    if first_angle is None:
        first_angle = keras.ops.arctan(width_a / height_a)
    if second_angle is None:
        second_angle = keras.ops.arctan(width_b / height_b)
    aspect = (4.0 / math.pi**2) * (second_angle - first_angle) ** 2
    alpha = keras.ops.stop_gradient(aspect / (aspect - iou + (1.0 + IOU_EPS)))
    return iou - (centre_distance / diagonal + aspect * alpha)


def distribution_focal_loss(box_logits, target_distances, reg_max):
    """DFL per anchor ``(...)``: the mean over the 4 sides of the two-bin cross-entropy.

    A target ``t`` between bins ``i = floor(t)`` and ``i + 1`` gives
    ``(i + 1 - t) CE(i) + (t - i) CE(i + 1)`` (Li et al., Generalized Focal
    Loss); targets are clamped to ``[0, reg_max - 1 - 0.01]`` first.
    """
    log_probabilities = keras.ops.log_softmax(_split_sides(box_logits, reg_max), axis=-1)
    target = keras.ops.clip(target_distances, 0.0, reg_max - 1 - DISTANCE_MARGIN)
    # The two weights as a tent over every bin, max(1 - |j - t|, 0): i + 1 - t
    # at bin i, t - i at bin i + 1 and 0 elsewhere, so the sum below adds the
    # same two products as a gather of the two bins would (the zeros add
    # exactly), without a gather or, in the gradient, a scatter. A NaN target
    # gives NaN weights.
    bins = keras.ops.arange(reg_max, dtype=target.dtype)
    weights = keras.ops.relu(1.0 - keras.ops.abs(bins - target[..., None]))
    per_side = -keras.ops.sum(weights * log_probabilities, axis=-1)
    return keras.ops.mean(per_side, axis=-1)


def _split_sides(box_logits, reg_max):
    shape = keras.ops.shape(box_logits)
    return keras.ops.reshape(box_logits, tuple(shape[:-1]) + (4, reg_max))


def _unstack(boxes):
    return boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
