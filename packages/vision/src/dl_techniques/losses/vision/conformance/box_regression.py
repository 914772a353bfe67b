"""Conformance-kit cases for the box-regression and IoU-aware classification losses.

``dl-losses check dl-techniques-losses-vision`` and the family's
``tests/test_conformance_box_regression.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.vision.box_iou_loss import BoxIoULoss
from dl_techniques.losses.vision.varifocal_loss import VarifocalLoss

_BATCH = 4
_ANCHORS = 5
_CLASSES = 3


def conformance_cases():
    """Returns the ``BoxIoULoss`` and ``VarifocalLoss`` cases, on small fixed inputs.

    ``BoxIoULoss`` gets one box per sample, so its ``(B, 4)`` inputs give the
    ``(B,)`` values of the ``"per_sample"`` semantics, once as CIoU on
    corners and once as GIoU on centre-size boxes. ``VarifocalLoss`` gets
    ``(B, anchors, classes)`` scores with one IoU-aware positive per anchor
    on about half of the anchors.
    """
    rng = np.random.default_rng(20240702)
    corner = rng.uniform(0.0, 20.0, size=(_BATCH, 2))
    size = rng.uniform(4.0, 12.0, size=(_BATCH, 2))
    true_xyxy = np.concatenate([corner, corner + size], axis=1).astype("float32")
    pred_xyxy = (true_xyxy + rng.normal(scale=2.0, size=true_xyxy.shape)).astype("float32")
    true_xywh = np.concatenate([corner + size / 2, size], axis=1).astype("float32")
    pred_xywh = (true_xywh + rng.normal(scale=1.0, size=true_xywh.shape)).astype("float32")
    classes = rng.integers(0, _CLASSES, size=(_BATCH, _ANCHORS))
    positive = rng.uniform(size=(_BATCH, _ANCHORS)) < 0.5
    iou = rng.uniform(0.2, 0.95, size=(_BATCH, _ANCHORS)) * positive
    scores = (np.eye(_CLASSES)[classes] * iou[..., None]).astype("float32")
    logits = rng.normal(scale=1.5, size=scores.shape).astype("float32")
    invalid_box = ({"kind": "eiou"}, {"box_format": "cxcywh"}, {"eps": 0.0})
    return [
        LossCase(
            loss_class=BoxIoULoss,
            init_kwargs={"kind": "ciou", "eps": 1e-6},
            y_true=true_xyxy,
            y_pred=pred_xyxy,
            invalid_kwargs=invalid_box,
            sample_weight="per_sample",
            case_id="box_iou_ciou_xyxy",
        ),
        LossCase(
            loss_class=BoxIoULoss,
            init_kwargs={"kind": "giou", "box_format": "xywh"},
            y_true=true_xywh,
            y_pred=pred_xywh,
            invalid_kwargs=invalid_box,
            sample_weight="per_sample",
            case_id="box_iou_giou_xywh",
        ),
        LossCase(
            loss_class=VarifocalLoss,
            init_kwargs={"alpha": 0.5, "gamma": 1.5},
            y_true=scores,
            y_pred=logits,
            invalid_kwargs=({"alpha": 0.0}, {"gamma": -1.0}, {"from_logits": 1}),
            sample_weight="per_sample",
        ),
    ]
