import json
import math
import re
import statistics

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    assert_gradient_matches_central_differences,
    hypothesis_examples,
)
from dl_techniques.losses.forecasting import CRPSLoss

TARGETS = np.array([[0.0, 1.5, -2.0], [3.0, 0.25, 1.0]])
SAMPLES = np.array(
    [
        [[0.5, -1.0, 0.0, 2.0], [1.5, 1.5, 1.0, 3.0], [-2.5, 0.0, -1.0, -4.0]],
        [[1.0, 2.0, 3.5, 5.0], [0.0, 0.0, 0.0, 0.0], [-1.0, 1.0, 0.5, 2.5]],
    ]
)
MU = np.array([[0.0, 1.0, -1.5], [2.0, 0.5, 1.0]])
RAW_SIGMA = np.array([[0.0, -1.0, 0.5], [1.5, -0.3, 2.0]])

# Computed offline with properscoring 0.1 (numpy 2, float64):
#   properscoring.crps_ensemble(TARGETS, SAMPLES).mean(axis=1)
#   properscoring.crps_gaussian(TARGETS, MU, np.log1p(np.exp(RAW_SIGMA)) + 1e-6).mean(axis=1)
PROPERSCORING_ENSEMBLE = [0.3125, 0.3645833333333333]
PROPERSCORING_GAUSSIAN = [0.2759260717183281, 0.43213300547682687]

# Computed offline with neuralforecast 3.3.0 under torch 2.13, float64. Its package
# __init__ imports pandas and lightning, so only neuralforecast/losses/pytorch.py is
# loaded (neuralforecast, fsspec, safetensors pip-installed with --no-deps into
# /tmp/refpkgs_nf; run with PYTHONPATH=/tmp/refpkgs_nf):
#   import sys, types
#   package = types.ModuleType("neuralforecast")
#   package.__path__ = ["/tmp/refpkgs_nf/neuralforecast"]
#   sys.modules["neuralforecast"] = package
#   from neuralforecast.losses.pytorch import MQLoss, sCRPS
#   y = torch.tensor(TARGETS)[..., None]                      # (B, H, N=1)
#   y_hat = torch.tensor(QUANTILE_FORECASTS)[:, :, None, :]   # (B, H, N=1, Q)
#   mask = torch.ones_like(y)
#   for rows in (1, 2):
#       sCRPS(quantiles=QUANTILES)(y[:rows], y_hat[:rows], y_insample=None,
#                                  mask=mask[:rows]).item()
#       MQLoss(quantiles=QUANTILES)(y[:rows], y_hat[:rows], mask=mask[:rows]).item()
# keyed by the number of leading batch rows.
QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)
QUANTILE_FORECASTS = np.array(
    [
        [[-1.0, -0.5, 0.25, 0.5, 1.5], [0.0, 1.0, 1.25, 2.0, 3.0], [-3.0, -2.5, -1.5, -1.0, 0.5]],
        [[1.0, 2.0, 2.5, 3.5, 5.0], [-0.5, 0.0, 0.5, 0.75, 1.0], [0.0, 0.5, 1.5, 2.0, 2.25]],
    ]
)
NEURALFORECAST_SCRPS = {1: 1.3999961017647813, 2: 1.2838693946789042}
NEURALFORECAST_MQLOSS = {1: 0.8166667260229588, 2: 0.8291667206212878}


def ensemble_reference(y_true, samples, fair=False):
    """Per-sample ensemble CRPS from the pairwise formula, in float64."""
    y_true, samples = np.asarray(y_true, "float64"), np.asarray(samples, "float64")
    count = samples.shape[-1]
    accuracy = np.abs(samples - y_true[..., None]).mean(axis=-1)
    pair_sum = np.abs(samples[..., :, None] - samples[..., None, :]).sum(axis=(-2, -1))
    spread = pair_sum / (count * (count - 1) if fair else count**2)
    crps = accuracy - 0.5 * spread
    return crps.reshape(crps.shape[0], -1).mean(axis=1)


def gaussian_crps_by_integration(y, mu, sigma):
    """``integral (Phi((x - mu) / sigma) - 1[x >= y])**2 dx`` by the trapezoid rule."""
    erf = np.vectorize(math.erf, otypes=[np.float64])

    def cdf(x):
        return 0.5 * (1.0 + erf((x - mu) / (sigma * math.sqrt(2.0))))

    below = np.linspace(min(y, mu) - 12 * sigma, y, 100001)
    above = np.linspace(y, max(y, mu) + 12 * sigma, 100001)
    return np.trapezoid(cdf(below) ** 2, below) + np.trapezoid((1.0 - cdf(above)) ** 2, above)


def per_sample(loss, y_true, y_pred):
    loss.reduction = None
    return as_numpy(loss(np.asarray(y_true, "float32"), np.asarray(y_pred, "float32")))


def test_hand_checked_ensemble_values():
    # y = 0, samples (-1, 1): mean |x - y| = 1; pairs |x - x'| = 0, 2, 2, 0.
    np.testing.assert_allclose(as_numpy(CRPSLoss()([[0.0]], [[[-1.0, 1.0]]])), 0.5)
    np.testing.assert_allclose(as_numpy(CRPSLoss(fair=True)([[0.0]], [[[-1.0, 1.0]]])), 0.0)


def test_ensemble_matches_properscoring():
    value = per_sample(CRPSLoss(), TARGETS, SAMPLES)
    np.testing.assert_allclose(value, PROPERSCORING_ENSEMBLE, rtol=1e-6)


def test_gaussian_matches_properscoring():
    value = per_sample(CRPSLoss(form="gaussian"), TARGETS, np.stack([MU, RAW_SIGMA], axis=-1))
    np.testing.assert_allclose(value, PROPERSCORING_GAUSSIAN, rtol=1e-6)


@pytest.mark.parametrize(("y", "mu", "raw_sigma"), [(0.0, 0.0, 0.0), (2.5, -1.0, 1.0)])
def test_gaussian_closed_form_equals_the_crps_integral(y, mu, raw_sigma):
    sigma = math.log1p(math.exp(raw_sigma)) + 1e-6
    value = as_numpy(CRPSLoss(form="gaussian")([[y]], [[[mu, raw_sigma]]]))
    np.testing.assert_allclose(value, gaussian_crps_by_integration(y, mu, sigma), rtol=1e-4)


@pytest.mark.parametrize("fair", [False, True])
@pytest.mark.parametrize("num_samples", [2, 7, 32])
def test_ensemble_matches_pairwise_reference(fair, num_samples):
    rng = np.random.default_rng(num_samples)
    y_true = rng.normal(size=(4, 5, 2)).astype("float32")
    samples = (rng.normal(size=(4, 5, 2, num_samples)) + 0.5).astype("float32")
    # Repeated samples: ties in the sort.
    samples[0, 0, 0, :] = samples[0, 0, 0, 0]
    value = per_sample(CRPSLoss(fair=fair), y_true, samples)
    np.testing.assert_allclose(value, ensemble_reference(y_true, samples, fair), atol=1e-5)


def test_single_sample_ensemble_is_the_absolute_error():
    rng = np.random.default_rng(1)
    y_true, forecast = rng.normal(size=(2, 3, 6))
    value = per_sample(CRPSLoss(), y_true, forecast[..., None])
    np.testing.assert_allclose(value, np.abs(y_true - forecast).mean(axis=1), rtol=1e-5)


def test_quantile_form_is_twice_the_mean_pinball():
    # y = 0, forecasts (-1, 1) at (0.25, 0.75): pinball 0.25 each, mean 0.25, times 2.
    loss = CRPSLoss(form="quantile", quantiles=(0.25, 0.75))
    np.testing.assert_allclose(as_numpy(loss([[0.0]], [[[-1.0, 1.0]]])), 0.5)


def test_dense_quantile_grid_approaches_the_gaussian_crps():
    levels = [(index + 0.5) / 99 for index in range(99)]
    mu, raw_sigma, y = 0.3, 0.2, 1.4
    sigma = math.log1p(math.exp(raw_sigma)) + 1e-6
    forecasts = [statistics.NormalDist(mu, sigma).inv_cdf(q) for q in levels]
    quantile_crps = as_numpy(CRPSLoss(form="quantile", quantiles=levels)([[y]], [[forecasts]]))
    exact = as_numpy(CRPSLoss(form="gaussian")([[y]], [[[mu, raw_sigma]]]))
    np.testing.assert_allclose(quantile_crps, exact, rtol=1e-2)


@pytest.mark.parametrize("form", ["ensemble", "gaussian"])
def test_scaled_divides_each_sample_by_its_mean_absolute_target(form):
    rng = np.random.default_rng(5)
    y_true = rng.normal(size=(3, 4))
    y_true[2] = 0.0
    y_pred = rng.normal(size=(3, 4, 2))
    plain = per_sample(CRPSLoss(form=form), y_true, y_pred)
    scaled = per_sample(CRPSLoss(form=form, scaled=True), y_true, y_pred)
    scale = np.abs(y_true).mean(axis=1)
    np.testing.assert_allclose(scaled[:2], plain[:2] / scale[:2], rtol=1e-5)
    # An all-zero target row contributes 0, as neuralforecast's divide-no-nan.
    assert scaled[2] == 0.0


def test_scaled_quantile_form_is_neuralforecast_scrps_per_sample_and_quantile():
    # neuralforecast sums the pinball losses over the Q quantiles and divides the
    # batch total by the batch's sum |y| + 1e-5: Q sum_b S_b loss_b / (sum_b S_b + 1e-5).
    loss = CRPSLoss(form="quantile", quantiles=QUANTILES, scaled=True)
    scaled = per_sample(loss, TARGETS, QUANTILE_FORECASTS)
    totals = np.abs(TARGETS).sum(axis=1)
    # Sample 0: pinball sums over the quantiles 0.675, 0.725, 1.05 at the three
    # horizons; 2 * 2.45 / 5 / 3 divided by mean |y| = 3.5 / 3. Sample 1: 2.525.
    np.testing.assert_allclose(scaled, [2 * 2.45 / 5 / 3.5, 2 * 2.525 / 5 / 4.25], rtol=1e-6)
    for rows, expected in NEURALFORECAST_SCRPS.items():
        pooled = np.sum(scaled[:rows] * totals[:rows]) / (totals[:rows].sum() + 1e-5)
        np.testing.assert_allclose(len(QUANTILES) * pooled, expected, rtol=2e-6)


def test_unscaled_quantile_form_is_twice_neuralforecast_mqloss_over_q():
    plain = per_sample(CRPSLoss(form="quantile", quantiles=QUANTILES), TARGETS, QUANTILE_FORECASTS)
    for rows, expected in NEURALFORECAST_MQLOSS.items():
        np.testing.assert_allclose(plain[:rows].mean(), 2.0 * expected / len(QUANTILES), rtol=2e-6)


def test_gradient_matches_central_differences_for_each_form():
    levels = (0.1, 0.35, 0.6, 0.9)
    gaussian_head = np.stack([MU, RAW_SIGMA], axis=-1)
    rng = np.random.default_rng(2)
    quantile_forecasts = TARGETS[..., None] + rng.normal(size=(2, 3, 4))
    cases = [
        (
            {},
            SAMPLES + rng.normal(0, 0.01, SAMPLES.shape),
            lambda values: ensemble_reference(TARGETS, values).sum(),
        ),
        (
            {"form": "gaussian"},
            gaussian_head,
            lambda values: gaussian_crps_reference(TARGETS, values[..., 0], values[..., 1]).sum(),
        ),
        (
            {"form": "quantile", "quantiles": levels},
            quantile_forecasts,
            lambda values: pinball_crps(TARGETS, values, levels).sum(),
        ),
    ]
    for kwargs, y_pred, reference in cases:

        def loss_value(values, dtype, kwargs=kwargs):
            targets = keras.ops.convert_to_tensor(TARGETS, dtype=dtype)
            return CRPSLoss(reduction="sum", dtype=dtype, **kwargs)(targets, values)

        assert_gradient_matches_central_differences(
            loss_value,
            reference,
            y_pred,
            rtol=1e-6,
            atol=1e-8,
            float32_rtol=1e-3,
            float32_atol=1e-4,
        )


def gaussian_crps_reference(y_true, mu, raw_sigma):
    """Per-sample closed form of Gneiting & Raftery (2007), eq. 21, in float64."""
    sigma = np.logaddexp(0.0, raw_sigma) + 1e-6
    z = (y_true - mu) / sigma
    cdf = 0.5 * (1.0 + np.vectorize(math.erf, otypes=[np.float64])(z / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
    crps = sigma * (z * (2.0 * cdf - 1.0) + 2.0 * pdf - 1.0 / math.sqrt(math.pi))
    return crps.mean(axis=1)


def pinball_crps(y_true, forecasts, levels):
    """Per-sample ``2 mean_q pinball_q``, looping over the levels."""
    columns = []
    for index, q in enumerate(levels):
        error = y_true - forecasts[..., index]
        columns.append(np.where(error >= 0, q * error, (q - 1) * error))
    crps = 2.0 * np.mean(columns, axis=0)
    return crps.mean(axis=1)


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    shift=st.floats(-100.0, 100.0),
    num_samples=st.integers(1, 9),
)
def test_ensemble_is_nonnegative_and_shift_invariant(seed, shift, num_samples):
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=(3, 4))
    samples = y_true[..., None] + rng.normal(scale=2.0, size=(3, 4, num_samples))
    base = per_sample(CRPSLoss(), y_true, samples)
    shifted = per_sample(CRPSLoss(), y_true + shift, samples + shift)
    assert np.all(base >= 0.0)
    np.testing.assert_allclose(shifted, base, atol=1e-4 * (1.0 + abs(shift)))
    np.testing.assert_allclose(base, ensemble_reference(y_true, samples), atol=1e-5)


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), log_scale=st.floats(-3.0, 3.0))
def test_gaussian_scales_with_sigma_and_stays_within_its_bounds(seed, log_scale):
    # CRPS(N(k mu, k sigma), k y) = k CRPS(N(mu, sigma), y), and
    # 0 <= CRPS = E|X - y| - sigma / sqrt(pi) <= |y - mu| + sigma (sqrt(2 / pi) - 1 / sqrt(pi)).
    rng = np.random.default_rng(seed)
    y, mu = rng.normal(size=(2, 2, 3))
    sigma = rng.uniform(0.2, 3.0, size=(2, 3))
    scale = math.exp(log_scale)

    def value(y, mu, sigma):
        raw = np.log(np.expm1(sigma - 1e-6))
        return per_sample(CRPSLoss(form="gaussian"), y, np.stack([mu, raw], axis=-1))

    base = value(y, mu, sigma)
    np.testing.assert_allclose(value(scale * y, scale * mu, scale * sigma), scale * base, rtol=1e-3)
    spread_bound = sigma * (math.sqrt(2.0 / math.pi) - 1.0 / math.sqrt(math.pi))
    assert np.all(base >= 0.0)
    assert np.all(base <= (np.abs(y - mu) + spread_bound).mean(axis=1) + 1e-5)


def test_config_round_trip_keeps_every_argument():
    loss = CRPSLoss(form="quantile", quantiles=(0.1, 0.5, 0.975), scaled=True)
    config = loss.get_config()
    assert config["form"] == "quantile"
    assert config["quantiles"] == [0.1, 0.5, 0.975]
    assert config["fair"] is False and config["scaled"] is True
    restored = keras.losses.deserialize(json.loads(json.dumps(keras.losses.serialize(loss))))
    assert isinstance(restored, CRPSLoss)
    assert restored.get_config() == config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"form": "sample"}, r"form.*'ensemble'"),
        ({"form": "quantile"}, r"form='quantile' needs `quantiles`"),
        ({"form": "quantile", "quantiles": ()}, r"needs `quantiles`"),
        ({"form": "quantile", "quantiles": "0.5"}, r"needs `quantiles`"),
        ({"form": "quantile", "quantiles": (0.0, 0.5)}, r"open interval \(0, 1\)"),
        ({"form": "quantile", "quantiles": (0.5, True)}, r"open interval \(0, 1\)"),
        ({"form": "quantile", "quantiles": (0.3, 0.3)}, r"distinct"),
        ({"quantiles": (0.5,)}, r"applies to form='quantile' only"),
        ({"form": "gaussian", "fair": True}, r"fair=True.*ensemble"),
        ({"fair": 1}, r"fair.*bool"),
        ({"scaled": "yes"}, r"scaled.*bool"),
    ],
)
def test_invalid_arguments_are_a_value_error(kwargs, message):
    with pytest.raises(ValueError, match=r"CRPSLoss.*" + message):
        CRPSLoss(**kwargs)


def test_fair_ensemble_of_one_sample_is_a_value_error():
    with pytest.raises(ValueError, match=r"CRPSLoss.*fair=True.*2 samples.*\(2, 3, 1\)"):
        CRPSLoss(fair=True)(np.zeros((2, 3)), np.zeros((2, 3, 1)))


@pytest.mark.parametrize(
    ("loss", "pred_shape", "pattern"),
    [
        (CRPSLoss(form="gaussian"), (2, 3, 3), r"y_pred.*raw_sigma.*\(2, 3, 3\)"),
        (CRPSLoss(form="quantile", quantiles=(0.2, 0.8)), (2, 3, 3), r"quantiles=2"),
        (CRPSLoss(), (2,), r"y_pred.*samples.*\(2,\)"),
        (CRPSLoss(), (2, 4, 5), r"y_true.*" + re.escape("(2, 3)")),
    ],
)
def test_incompatible_shapes_are_a_value_error(loss, pred_shape, pattern):
    with pytest.raises(ValueError, match=r"CRPSLoss.*" + pattern):
        loss(np.zeros((2, 3)), np.zeros(pred_shape))
