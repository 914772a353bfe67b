"""Conformance-kit cases for the forecasting losses.

``dl-losses check dl-techniques-losses-forecasting`` and the family's own
``tests/test_conformance.py`` run the core kit over these cases.
"""

import numpy as np

from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.forecasting.crps_loss import CRPSLoss
from dl_techniques.losses.forecasting.gaussian_nll import GaussianNLL
from dl_techniques.losses.forecasting.huber import HuberLoss
from dl_techniques.losses.forecasting.mase import MASELoss
from dl_techniques.losses.forecasting.mq_loss import MQLoss
from dl_techniques.losses.forecasting.negative_binomial_nll import NegativeBinomialNLL
from dl_techniques.losses.forecasting.poisson_nll import PoissonNLL
from dl_techniques.losses.forecasting.smape import SMAPELoss
from dl_techniques.losses.forecasting.student_t_nll import StudentTNLL
from dl_techniques.losses.forecasting.tweedie_loss import TweedieLoss

_BATCH = 4
_HORIZON = 6
_HISTORY = 10
_SAMPLES = 5


def conformance_cases():
    """Returns one ``LossCase`` per forecasting loss, on small fixed inputs.

    Every loss returns one value per sample, so ``sample_weight`` is checked
    with the ``"per_sample"`` semantics. ``MASELoss`` gets its history and
    target as one tensor ``(B, L + H)``, the form that works with ``fit``.
    ``CRPSLoss`` has one case per form; the likelihood heads get raw
    parameters on the last axis, and the count losses count targets with
    zeros among them.
    """
    rng = np.random.default_rng(20240601)
    target = rng.normal(size=(_BATCH, _HORIZON)).astype("float32")
    forecast = (target + rng.normal(scale=0.8, size=target.shape)).astype("float32")
    history = rng.normal(size=(_BATCH, _HISTORY)).astype("float32")
    quantile_forecast = (
        target[..., None] + rng.normal(scale=0.8, size=(_BATCH, _HORIZON, 3))
    ).astype("float32")
    samples = (target[..., None] + rng.normal(size=(_BATCH, _HORIZON, _SAMPLES))).astype("float32")
    counts = rng.poisson(2.0, size=(_BATCH, _HORIZON)).astype("float32")

    def raw_head(num_parameters):
        return rng.normal(scale=0.7, size=(_BATCH, _HORIZON, num_parameters)).astype("float32")

    return [
        *_point_and_quantile_cases(target, forecast, history, quantile_forecast),
        *_crps_cases(target, samples, quantile_forecast, raw_head(2)),
        *_likelihood_cases(target, counts, raw_head),
    ]


def _point_and_quantile_cases(target, forecast, history, quantile_forecast):
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


def _crps_cases(target, samples, quantile_forecast, gaussian_head):
    invalid = (
        {"form": "samples"},
        {"quantiles": [0.5]},
        {"fair": "yes"},
        {"scaled": 1},
    )
    return [
        LossCase(
            loss_class=CRPSLoss,
            init_kwargs={"form": "ensemble", "fair": True},
            y_true=target,
            y_pred=samples,
            invalid_kwargs=invalid,
            sample_weight="per_sample",
            case_id="crps_ensemble_fair",
        ),
        LossCase(
            loss_class=CRPSLoss,
            init_kwargs={"form": "quantile", "quantiles": [0.2, 0.5, 0.8], "scaled": True},
            y_true=target,
            y_pred=quantile_forecast,
            invalid_kwargs=({"quantiles": None}, {"quantiles": [0.5, 1.0]}, {"fair": True}),
            sample_weight="per_sample",
            case_id="crps_quantile_scaled",
        ),
        LossCase(
            loss_class=CRPSLoss,
            init_kwargs={"form": "gaussian"},
            y_true=target,
            y_pred=gaussian_head,
            invalid_kwargs=({"fair": True},),
            sample_weight="per_sample",
            case_id="crps_gaussian",
        ),
    ]


def _likelihood_cases(target, counts, raw_head):
    heads = [
        (GaussianNLL, target),
        (StudentTNLL, target),
        (PoissonNLL, counts),
        (NegativeBinomialNLL, counts),
    ]
    cases = [
        LossCase(
            loss_class=loss_class,
            y_true=y_true,
            y_pred=raw_head(len(loss_class.parameter_names)),
            sample_weight="per_sample",
        )
        for loss_class, y_true in heads
    ]
    tweedie = LossCase(
        loss_class=TweedieLoss,
        init_kwargs={"power": 1.3},
        y_true=counts,
        y_pred=raw_head(1)[..., 0],
        invalid_kwargs=({"power": 1.0}, {"power": 2.0}, {"power": float("nan")}),
        sample_weight="per_sample",
    )
    return [*cases, tweedie]
