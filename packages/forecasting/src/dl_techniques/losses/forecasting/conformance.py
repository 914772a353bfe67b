"""Conformance-kit cases for the forecasting losses.

``dl-losses check dl-techniques-losses-forecasting`` and the family's own
``tests/test_conformance.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.forecasting.huber import HuberLoss
from dl_techniques.losses.forecasting.mase import MASELoss
from dl_techniques.losses.forecasting.mq_loss import MQLoss
from dl_techniques.losses.forecasting.smape import SMAPELoss

_BATCH = 4
_HORIZON = 6
_HISTORY = 10


def conformance_cases():
    """Returns one ``LossCase`` per forecasting loss, on small fixed inputs.

    Every loss returns one value per sample, so ``sample_weight`` is checked
    with the ``"per_sample"`` semantics. ``MASELoss`` gets its history and
    target as one tensor ``(B, L + H)``, the form that works with ``fit``.
    """
    rng = np.random.default_rng(20240601)
    target = rng.normal(size=(_BATCH, _HORIZON)).astype("float32")
    forecast = (target + rng.normal(scale=0.8, size=target.shape)).astype("float32")
    history = rng.normal(size=(_BATCH, _HISTORY)).astype("float32")
    quantile_forecast = (
        target[..., None] + rng.normal(scale=0.8, size=(_BATCH, _HORIZON, 3))
    ).astype("float32")
    return [
        LossCase(
            loss_class=HuberLoss,
            init_kwargs={"delta": 0.7},
            y_true=target,
            y_pred=forecast,
            invalid_kwargs=({"delta": 0.0}, {"delta": -1.0}, {"delta": float("nan")}),
            sample_weight="per_sample",
            case_id="huber",
        ),
        LossCase(
            loss_class=MASELoss,
            init_kwargs={"seasonality": 2},
            y_true=np.concatenate([history, target], axis=1),
            y_pred=forecast,
            invalid_kwargs=({"seasonality": 0}, {"seasonality": 1.5}, {"seasonality": True}),
            sample_weight="per_sample",
            case_id="mase_concatenated_history",
        ),
        LossCase(
            loss_class=SMAPELoss,
            init_kwargs={"percentage": True},
            y_true=target,
            y_pred=forecast,
            invalid_kwargs=({"percentage": "yes"}, {"percentage": 1}),
            sample_weight="per_sample",
            case_id="smape_percentage",
        ),
        LossCase(
            loss_class=MQLoss,
            init_kwargs={"quantiles": [0.1, 0.5, 0.9]},
            y_true=target,
            y_pred=quantile_forecast,
            invalid_kwargs=(
                {"quantiles": []},
                {"quantiles": [0.0, 0.5]},
                {"quantiles": [0.5, 1.0]},
                {"quantiles": [0.3, 0.3]},
                {"quantiles": 0.5},
            ),
            sample_weight="per_sample",
            case_id="mq_loss",
        ),
    ]
