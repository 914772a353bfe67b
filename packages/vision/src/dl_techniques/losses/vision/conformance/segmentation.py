"""Conformance-kit cases for the segmentation losses.

``dl-losses check dl-techniques-losses-vision`` and the family's
``tests/test_conformance_segmentation.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.vision.segmentation_loss import SegmentationLoss
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig

_BATCH = 4
_SIZE = 6
_CLASSES = 3
_IGNORE = 255
_INVALID = (
    {"loss_name": "jaccard"},
    {"config": {"num_classes": 0}},
    {"config": {"num_classes": _CLASSES, "tversky_alpha": -0.1}},
)


def conformance_cases():
    """Returns a handful of ``LossCase`` covering the label forms and the Lovasz losses.

    Batch-pooled losses weight every pixel by ``sample_weight`` inside their
    sums (``"batch"`` semantics); the ``per_image`` case returns one value
    per image (``"per_sample"``). Between them the cases cover class ids
    with and without a trailing axis, one-hot labels, ``ignore_index``,
    class weights, Lovasz-softmax and the binary Lovasz hinge, all on logits
    so that the fit step's offset keeps the predictions valid.
    """
    rng = np.random.default_rng(20240612)
    logits = rng.normal(scale=1.5, size=(_BATCH, _SIZE, _SIZE, _CLASSES)).astype("float32")
    ids = rng.integers(0, _CLASSES, size=(_BATCH, _SIZE, _SIZE))
    ids_with_ignored = np.where(rng.uniform(size=ids.shape) < 0.15, _IGNORE, ids)
    one_hot = np.eye(_CLASSES, dtype="float32")[ids]
    binary_logits = rng.normal(scale=1.5, size=(_BATCH, _SIZE, _SIZE, 1)).astype("float32")
    binary_labels = rng.integers(0, 2, size=(_BATCH, _SIZE, _SIZE, 1))

    def config(**overrides):
        return SegmentationLossConfig(
            num_classes=_CLASSES, from_logits=True, **overrides
        ).get_config()

    def case(loss_name, config_dict, y_true, y_pred, case_id, sample_weight="batch"):
        return LossCase(
            loss_class=SegmentationLoss,
            init_kwargs={"loss_name": loss_name, "config": config_dict, "name": case_id},
            y_true=y_true,
            y_pred=y_pred,
            invalid_kwargs=_INVALID,
            sample_weight=sample_weight,
            case_id=case_id,
        )

    return [
        case(
            "dice_ce",
            config(ignore_index=_IGNORE, class_weights=(1.0, 2.0, 0.5), dice_weight=0.7),
            ids_with_ignored,
            logits,
            "dice_ce_sparse_ignore_class_weights",
        ),
        case(
            "focal_tversky",
            config(tversky_alpha=0.4, tversky_beta=0.6, smooth=1e-3),
            one_hot,
            logits,
            "focal_tversky_one_hot",
        ),
        case(
            "lovasz",
            config(ignore_index=_IGNORE),
            ids_with_ignored[..., None],
            logits,
            "lovasz_softmax_ignore",
        ),
        case(
            "lovasz_hinge",
            SegmentationLossConfig(num_classes=1, from_logits=True).get_config(),
            binary_labels,
            binary_logits,
            "lovasz_hinge",
        ),
        case(
            "focal_dice",
            config(per_image=True, focal_gamma=1.5),
            one_hot,
            logits,
            "focal_dice_per_image",
            sample_weight="per_sample",
        ),
        case(
            "generalized_dice_focal",
            config(ignore_index=_IGNORE, dice_weight=0.6, ce_weight=0.4),
            ids_with_ignored,
            logits,
            "generalized_dice_focal_sparse_ignore",
        ),
    ]
