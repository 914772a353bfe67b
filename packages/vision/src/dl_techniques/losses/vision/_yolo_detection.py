"""The detection terms of Ultralytics' ``v8DetectionLoss`` (YOLOv8/11/12) on padded ground truth."""

import collections
import functools

import keras

from dl_techniques.losses.core import ops
from dl_techniques.losses.vision import _yolo_anchors, _yolo_assigner, _yolo_boxes

DetectionTerms = collections.namedtuple("DetectionTerms", ["box", "cls", "dfl"])


def detection_terms(gt, prediction, input_shape, num_classes, reg_max, topk, alpha, beta):
    """Returns the unweighted ``DetectionTerms(box, cls, dfl)``, three scalars.

    ```
    S   = max(sum of target scores, 1)           w = an anchor's summed target scores
    cls = sum BCE_with_logits(class logits, target scores) / S
    box = sum_fg (1 - CIoU(pred box, target box)) w / S          (stride units)
    dfl = sum_fg w * mean_sides DFL(bin logits, target distance) / S
    ```

    Args:
        gt: ``(B, G, 5)`` rows ``[class, x1, y1, x2, y2]`` in pixels, class
            negative on padding rows.
        prediction: ``(B, A, 4 * reg_max + num_classes)`` head output: the
            side-major bin logits, then the class logits.
        input_shape: ``(H, W)`` of the input image.
        num_classes: Detection classes.
        reg_max: Bins per side.
        topk: Positives per GT in the assigner.
        alpha: Class-score exponent of the alignment.
        beta: CIoU exponent of the alignment.
    """
    dtype = prediction.dtype
    points, strides = _yolo_anchors.anchor_points(input_shape, dtype=dtype)
    strides = strides[:, None]
    grid_points = points / strides
    # One split: its gradient is one concatenation, where two slices would each
    # write a zero-filled gradient of the whole head in eager torch.
    box_logits, class_logits = keras.ops.split(prediction, [4 * reg_max], axis=-1)
    # A contiguous copy of the class logits: in eager torch the sigmoid of a
    # strided view (here and in the gradient of the BCE) runs several times
    # slower, and the log-sigmoid copies it anyway; XLA elides the copy.
    class_logits = keras.ops.copy(class_logits)
    # Ultralytics regresses in stride units: a box of one cell is 1 wide on every level.
    pred_boxes = _yolo_boxes.distances_to_boxes(
        grid_points, _yolo_boxes.expected_distances(box_logits, reg_max)
    )

    gt_labels, gt_boxes = gt[..., 0], gt[..., 1:5]
    if gt.shape[1] == 0:
        target_scores = keras.ops.zeros_like(class_logits)
        target_boxes = keras.ops.zeros_like(pred_boxes)
        weight = foreground = keras.ops.zeros_like(class_logits[..., 0])
    else:
        assignment = _yolo_assigner.assign(
            keras.ops.sigmoid(class_logits),
            pred_boxes * strides,
            points,
            gt_labels,
            gt_boxes,
            num_classes=num_classes,
            topk=topk,
            alpha=alpha,
            beta=beta,
        )
        # An anchor's target scores summed over the classes, 0 off the foreground.
        target_scores, weight = assignment.target_scores, assignment.score_sums
        foreground = assignment.foreground
        target_boxes = assignment.target_boxes / strides

    score_sum = keras.ops.maximum(keras.ops.sum(target_scores), 1.0)
    cls = keras.ops.sum(ops.sigmoid_cross_entropy(target_scores, class_logits)) / score_sum
    ciou = _yolo_boxes.complete_iou(pred_boxes, target_boxes)
    box = keras.ops.sum((1.0 - ciou) * weight) / score_sum
    target_distances = _yolo_boxes.boxes_to_distances(grid_points, target_boxes, reg_max)
    # The DFL of the foreground anchors only (the others weigh 0), where the
    # backend gathers a dynamic count.
    dfl_per_anchor = ops.rowwise_where(
        foreground > 0,
        functools.partial(_yolo_boxes.distribution_focal_loss, reg_max=reg_max),
        box_logits,
        target_distances,
    )
    dfl = keras.ops.sum(dfl_per_anchor * weight) / score_sum
    return DetectionTerms(box=box, cls=cls, dfl=dfl)
