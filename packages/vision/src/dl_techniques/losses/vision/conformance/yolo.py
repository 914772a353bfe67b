"""Conformance-kit cases of the YOLOv12 multi-task loss.

``dl-losses check dl-techniques-losses-vision`` and the family's
``tests/test_conformance_yolo.py`` run the core kit over these cases. The
loss pools the batch (the detection terms are normalised by the batch's sum
of target scores), so it rejects ``sample_weight``.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.vision.yolov12_multitask_loss import YOLOv12MultiTaskLoss

_INPUT_SHAPE = (64, 64)
_ANCHORS = 64 + 16 + 4
_REG_MAX = 16
_DETECTION_CLASSES = 3
_INVALID = (
    {"tasks": ["detection", "depth"]},
    {"reg_max": 1},
    {"input_shape": (60, 64)},
    {"box_gain": -1.0},
    {"num_detection_classes": 0},
    {"classification_loss": "hinge"},
)


def conformance_cases():
    """Returns the cases: detection alone, and three tasks with Kendall weighting."""
    rng = np.random.default_rng(2024)
    ground_truth = np.array(
        [
            [[0, 6, 10, 38, 34], [2, 20, 18, 25, 44], [-1, 0, 0, 0, 0]],
            [[1, 4, 4, 60, 40], [2, 40, 36, 60, 62], [-1, 0, 0, 0, 0]],
        ],
        "float32",
    )
    head = _detection_head(rng)
    detection = LossCase(
        YOLOv12MultiTaskLoss,
        {
            "tasks": ["detection"],
            "num_detection_classes": _DETECTION_CLASSES,
            "input_shape": _INPUT_SHAPE,
            "box_gain": 5.0,
            "cls_gain": 1.0,
            "dfl_gain": 2.0,
            "topk": 8,
        },
        y_true=ground_truth,
        y_pred=head,
        invalid_kwargs=_INVALID,
        sample_weight="rejected",
        case_id="YOLOv12MultiTaskLoss-detection",
        rtol=1e-4,
        atol=1e-5,
    )
    multitask = LossCase(
        YOLOv12MultiTaskLoss,
        {
            "tasks": ["detection", "segmentation", "classification"],
            "num_detection_classes": _DETECTION_CLASSES,
            "num_segmentation_classes": 3,
            "num_classification_classes": 4,
            "input_shape": _INPUT_SHAPE,
            "use_uncertainty_weighting": True,
            "task_weights": {"segmentation": 2.0},
            "classification_loss": "focal",
        },
        y_true={
            "detection": ground_truth,
            "segmentation": rng.integers(0, 3, size=(2, 8, 8)),
            "classification": np.array([1, 3]),
        },
        y_pred={
            "detection": head,
            "segmentation": rng.normal(size=(2, 8, 8, 3)),
            "classification": rng.normal(size=(2, 4)),
            "log_variances": np.tile([[0.3, -0.2, 0.1]], (2, 1)),
        },
        invalid_kwargs=_INVALID + ({"task_weights": {"depth": 1.0}},),
        sample_weight="rejected",
        case_id="YOLOv12MultiTaskLoss-three-tasks",
        rtol=1e-4,
        atol=1e-5,
    )
    return [detection, multitask]


def _detection_head(rng):
    # Bin logits peaked near a few bins, so the decoded boxes overlap the
    # ground truth and the assigner finds positives.
    centres = rng.uniform(0.5, 4.0, size=(2, _ANCHORS, 4, 1))
    bins = np.arange(_REG_MAX)
    box_logits = -1.5 * (bins - centres) ** 2 + rng.normal(0, 0.3, size=(2, _ANCHORS, 4, _REG_MAX))
    class_logits = rng.normal(0, 1.0, size=(2, _ANCHORS, _DETECTION_CLASSES))
    return np.concatenate([box_logits.reshape(2, _ANCHORS, -1), class_logits], -1)
