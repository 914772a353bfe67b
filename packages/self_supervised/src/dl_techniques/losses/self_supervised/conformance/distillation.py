"""Conformance-kit cases for the DINO and iBOT distillation losses.

``dl-losses check dl-techniques-losses-self-supervised`` and the family's
``tests/test_conformance_distillation.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.self_supervised.dino_loss import DINOLoss
from dl_techniques.losses.self_supervised.ibot_patch_loss import iBOTPatchLoss

_IMAGES = 4
_PROTOTYPES = 5


def conformance_cases():
    """Returns the DINO and iBOT cases, on small fixed inputs.

    DINO uses its image-major layout, teacher ``(B, G, K)`` and student
    ``(B, V, K)``, and iBOT dict targets ``{"teacher_patches", "mask"}``, so
    that every array has the images on its first axis as ``fit`` needs. Both
    return one value per image: ``sample_weight`` is per sample. One image of
    the iBOT case masks no patch, so the empty-mask path is checked too.
    """
    rng = np.random.default_rng(20240620)
    teacher = rng.normal(size=(_IMAGES, 2, _PROTOTYPES)).astype("float32")
    student = rng.normal(size=(_IMAGES, 4, _PROTOTYPES)).astype("float32")
    patches = 3
    teacher_patches = rng.normal(size=(_IMAGES, patches, _PROTOTYPES)).astype("float32")
    student_patches = rng.normal(size=(_IMAGES, patches, _PROTOTYPES)).astype("float32")
    mask = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]], dtype="float32")
    temperature_errors = (
        {"student_temp": 0.0},
        {"teacher_temp": -0.04},
        {"teacher_temp": float("nan")},
        {"center_momentum": 1.5},
        {"center_momentum": "0.9"},
    )
    return [
        LossCase(
            loss_class=DINOLoss,
            init_kwargs={
                "out_dim": _PROTOTYPES,
                "student_temp": 0.2,
                "teacher_temp": 0.07,
                "center_momentum": 0.8,
                "num_global_crops": 2,
            },
            y_true=teacher,
            y_pred=student,
            invalid_kwargs=(
                *temperature_errors,
                {"out_dim": 0},
                {"num_global_crops": 1.5},
                {"centering": "softmax"},
            ),
            sample_weight="per_sample",
            case_id="dino_centering",
        ),
        LossCase(
            loss_class=DINOLoss,
            init_kwargs={
                "out_dim": _PROTOTYPES,
                "centering": "sinkhorn_knopp",
                "teacher_temp": 0.1,
            },
            y_true=teacher,
            y_pred=student,
            sample_weight="per_sample",
            case_id="dino_sinkhorn_knopp",
        ),
        LossCase(
            loss_class=iBOTPatchLoss,
            init_kwargs={
                "patch_out_dim": _PROTOTYPES,
                "student_temp": 0.2,
                "teacher_temp": 0.07,
                "center_momentum": 0.8,
            },
            y_true={"teacher_patches": teacher_patches, "mask": mask},
            y_pred=student_patches,
            invalid_kwargs=(*temperature_errors, {"patch_out_dim": -3}),
            sample_weight="per_sample",
            case_id="ibot_masked_patches",
        ),
    ]
