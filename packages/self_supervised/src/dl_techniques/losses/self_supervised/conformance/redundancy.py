"""Conformance-kit cases for the redundancy-reduction losses: VICReg and Barlow Twins.

``dl-losses check dl-techniques-losses-self-supervised`` and the family's
``tests/test_conformance_redundancy.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.self_supervised.barlow_twins_loss import BarlowTwinsLoss
from dl_techniques.losses.self_supervised.vicreg_loss import VICRegLoss

_PAIRS = 5
_FEATURES = 3


def conformance_cases():
    """Returns one case per loss on ``{"view1", "view2"}`` dicts of ``(B, D)`` views.

    Both losses are statistics of the whole batch and take ``sample_weight``
    as frequency weights inside them (``"batch"``): weight 2 on a pair equals
    repeating it. The kit hands a dict prediction to the loss whole. The
    VICReg views have standard deviations on both sides of 1, so the
    variance hinge is active on some dimensions and not on others.
    """
    rng = np.random.default_rng(20260115)
    first = rng.normal(scale=[0.5, 1.0, 2.0], size=(_PAIRS, _FEATURES))
    second = first + 0.5 * rng.normal(size=(_PAIRS, _FEATURES))
    views = {"view1": first.astype("float32"), "view2": second.astype("float32")}
    ignored_labels = np.zeros((_PAIRS,), dtype="float32")
    return [
        LossCase(
            loss_class=VICRegLoss,
            init_kwargs={"sim_coeff": 2.0, "std_coeff": 5.0, "cov_coeff": 0.5},
            y_true=ignored_labels,
            y_pred=views,
            invalid_kwargs=(
                {"sim_coeff": -1.0},
                {"std_coeff": float("nan")},
                {"cov_coeff": "1.0"},
            ),
            sample_weight="batch",
            case_id="vicreg",
        ),
        LossCase(
            loss_class=BarlowTwinsLoss,
            init_kwargs={"lambda_offdiag": 0.2},
            y_true=ignored_labels,
            y_pred=views,
            invalid_kwargs=({"lambda_offdiag": -0.1}, {"lambda_offdiag": float("inf")}),
            sample_weight="batch",
            case_id="barlow_twins",
        ),
    ]
