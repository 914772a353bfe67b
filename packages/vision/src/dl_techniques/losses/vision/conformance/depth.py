"""Conformance-kit cases for the affine-invariant depth loss.

``dl-losses check dl-techniques-losses-vision`` and the family's
``tests/test_conformance_depth.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.vision.affine_invariant_loss import AffineInvariantLoss

_BATCH = 4
_HEIGHT = 6
_WIDTH = 5


def conformance_cases():
    """Returns the ``AffineInvariantLoss`` cases, on small fixed depth maps.

    The loss is per image, so ``sample_weight`` has the ``"per_sample"``
    semantics. One case marks invalid pixels by non-finite targets, the other
    by a ``{"depth", "mask"}`` dict; predictions are a noisy affine map of the
    target, so the value and its gradient are non-zero.
    """
    rng = np.random.default_rng(20240621)
    depth = rng.uniform(1.0, 10.0, size=(_BATCH, _HEIGHT, _WIDTH)).astype("float32")
    scale = rng.uniform(0.5, 2.0, size=(_BATCH, 1, 1))
    shift = rng.uniform(-1.0, 1.0, size=(_BATCH, 1, 1))
    noise = rng.normal(scale=0.5, size=depth.shape)
    prediction = (scale * depth + shift + noise).astype("float32")
    with_holes = depth.copy()
    with_holes[rng.random(depth.shape) < 0.15] = np.nan
    with_holes[1, 0, :] = np.inf
    mask = (rng.random(depth.shape) > 0.2).astype("float32")
    invalid = (
        {"epsilon": 0.0},
        {"epsilon": -1.0},
        {"epsilon": float("nan")},
        {"trim": 1.0},
        {"trim": -0.1},
        {"trim": True},
    )
    return [
        LossCase(
            loss_class=AffineInvariantLoss,
            init_kwargs={"epsilon": 1e-4, "trim": 0.2},
            y_true=with_holes,
            y_pred=prediction,
            invalid_kwargs=invalid,
            sample_weight="per_sample",
            case_id="affine_invariant_nonfinite_targets_trimmed",
        ),
        LossCase(
            loss_class=AffineInvariantLoss,
            init_kwargs={"epsilon": 1e-5},
            y_true={"depth": depth, "mask": mask},
            y_pred=prediction[..., None],
            invalid_kwargs=invalid,
            sample_weight="per_sample",
            case_id="affine_invariant_masked_channel_axis",
        ),
    ]
