"""Conformance-kit cases for the region losses that are classes of their own.

``dl-losses check dl-techniques-losses-vision`` and the family's
``tests/test_conformance_region.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.vision.boundary_loss import BoundaryLoss, signed_distance_map
from dl_techniques.losses.vision.generalized_dice_focal_loss import GeneralizedDiceFocalLoss
from dl_techniques.losses.vision.generalized_dice_loss import GeneralizedDiceLoss
from dl_techniques.losses.vision.soft_cldice_loss import SoftCLDiceLoss
from dl_techniques.losses.vision.soft_dice_cldice_loss import SoftDiceCLDiceLoss

_BATCH = 4
_SIZE = 6
_CLASSES = 3
_IGNORE = 255


def conformance_cases():
    """Returns the generalized Dice and soft clDice cases, on small fixed logits.

    Pooled over the batch, the losses weight pixels by ``sample_weight``
    inside their sums (``"batch"`` semantics); with ``per_image=True`` they
    return one value per image (``"per_sample"``). Class 2 is absent from the
    first image, so the per-image case meets MONAI's rule for absent classes.
    ``SoftCLDiceLoss`` and ``SoftDiceCLDiceLoss`` are per image; their labels
    draw thin lines.
    ``BoundaryLoss`` is per image, on the signed distance maps of the ids.
    """
    rng = np.random.default_rng(20240714)
    logits = rng.normal(scale=1.5, size=(_BATCH, _SIZE, _SIZE, _CLASSES)).astype("float32")
    ids = rng.integers(0, _CLASSES, size=(_BATCH, _SIZE, _SIZE))
    ids[0] = np.minimum(ids[0], 1)
    ids_with_ignored = np.where(rng.uniform(size=ids.shape) < 0.15, _IGNORE, ids)
    one_hot = np.eye(_CLASSES, dtype="float32")[ids]
    lines = np.zeros((_BATCH, _SIZE, _SIZE), dtype="int64")
    lines[:, :, 2] = 1
    lines[:, rng.integers(0, _SIZE, size=_BATCH), :] = 2
    invalid = (
        {"num_classes": 1},
        {"weight_type": "cube"},
        {"smooth_dr": 0.0},
        {"from_logits": "yes"},
    )
    return [
        LossCase(
            loss_class=GeneralizedDiceLoss,
            init_kwargs={"num_classes": _CLASSES, "weight_type": "simple", "ignore_index": _IGNORE},
            y_true=ids_with_ignored,
            y_pred=logits,
            invalid_kwargs=invalid,
            sample_weight="batch",
            case_id="generalized_dice_simple_ignore",
        ),
        LossCase(
            loss_class=GeneralizedDiceLoss,
            init_kwargs={"num_classes": _CLASSES, "per_image": True, "smooth_nr": 0.0},
            y_true=one_hot,
            y_pred=logits,
            invalid_kwargs=invalid,
            sample_weight="per_sample",
            case_id="generalized_dice_square_per_image",
        ),
        LossCase(
            loss_class=GeneralizedDiceFocalLoss,
            init_kwargs={
                "num_classes": _CLASSES,
                "gamma": 1.5,
                "lambda_focal": 0.5,
                "focal_alpha": 0.25,
            },
            y_true=ids,
            y_pred=logits,
            invalid_kwargs=(*invalid, {"gamma": -1.0}, {"focal_alpha": 0.0}),
            sample_weight="batch",
        ),
        LossCase(
            loss_class=SoftCLDiceLoss,
            init_kwargs={"iterations": 2, "smooth": 0.5, "include_background": True},
            y_true=lines,
            y_pred=logits,
            invalid_kwargs=({"iterations": -1}, {"smooth": 0.0}, {"include_background": 1}),
            sample_weight="per_sample",
        ),
        LossCase(
            loss_class=SoftDiceCLDiceLoss,
            init_kwargs={"alpha": 0.3, "iterations": 0},
            y_true=lines[..., None],
            y_pred=logits,
            invalid_kwargs=({"alpha": 1.5}, {"iterations": -1}, {"smooth": 0.0}),
            sample_weight="per_sample",
        ),
        LossCase(
            loss_class=BoundaryLoss,
            init_kwargs={"include_background": True},
            y_true=signed_distance_map(ids, _CLASSES),
            y_pred=logits,
            invalid_kwargs=({"from_logits": 1}, {"include_background": "no"}),
            sample_weight="per_sample",
        ),
    ]
