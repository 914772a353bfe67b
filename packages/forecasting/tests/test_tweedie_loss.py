import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    assert_gradient_matches_central_differences,
    hypothesis_examples,
)
from dl_techniques.losses.forecasting import TweedieLoss

COUNTS = np.array([[0.0, 1.0, 4.0], [7.0, 0.0, 2.0]])
LOG_MU = np.array([[-0.5, 0.2, 1.0], [1.5, -1.0, 0.9]])

# Computed offline with scikit-learn 1.9.1:
#   [mean_tweedie_deviance(c, np.exp(l), power=p) for c, l in zip(COUNTS, LOG_MU)]
SKLEARN_DEVIANCE = {
    1.2: [0.7125466552274494, 0.68921947158155],
    1.5: [1.1515373716448987, 1.0049803831610067],
    1.8: [3.1001032442705827, 2.852278422875503],
}


def tweedie_reference(y_true, log_mu, power):
    """Per-sample mean of the unit deviance, from its formula, in float64."""
    y, mu = np.asarray(y_true, "float64"), np.exp(np.asarray(log_mu, "float64"))
    deviance = 2.0 * (
        y ** (2 - power) / ((1 - power) * (2 - power))
        - y * mu ** (1 - power) / (1 - power)
        + mu ** (2 - power) / (2 - power)
    )
    return deviance.reshape(deviance.shape[0], -1).mean(axis=1)


def per_sample(loss, y_true, y_pred):
    loss.reduction = None
    return as_numpy(loss(np.asarray(y_true, "float32"), np.asarray(y_pred, "float32")))


@pytest.mark.parametrize("power", sorted(SKLEARN_DEVIANCE))
def test_matches_scikit_learn_mean_tweedie_deviance(power):
    value = per_sample(TweedieLoss(power=power), COUNTS, LOG_MU)
    # float32: the three terms, each up to 25 times the deviance at p = 1.2, cancel.
    np.testing.assert_allclose(value, SKLEARN_DEVIANCE[power], rtol=1e-5)


def test_hand_checked_value_at_zero_target():
    # y = 0, mu = 1, p = 1.5: 2 * mu**0.5 / 0.5 = 4
    np.testing.assert_allclose(as_numpy(TweedieLoss()([[0.0]], [[0.0]])), 4.0, rtol=1e-6)


@pytest.mark.parametrize("power", [1.01, 1.3, 1.99])
def test_matches_numpy_reference_on_random_inputs(power):
    rng = np.random.default_rng(int(power * 100))
    y_true = rng.gamma(0.7, 2.0, size=(4, 6, 2)) * (rng.uniform(size=(4, 6, 2)) > 0.3)
    log_mu = rng.normal(size=(4, 6, 2))
    value = per_sample(TweedieLoss(power=power), y_true, log_mu)
    np.testing.assert_allclose(value, tweedie_reference(y_true, log_mu, power), rtol=1e-5)


@pytest.mark.parametrize("power", [1.2, 1.7])
def test_gradient_matches_central_differences_and_is_finite_at_zero(power):
    # COUNTS holds zeros, where y mu**(1 - p) must give a finite gradient.
    gradient = assert_gradient_matches_central_differences(
        lambda log_mu, dtype: TweedieLoss(power=power, reduction="sum", dtype=dtype)(
            COUNTS, log_mu
        ),
        lambda v: tweedie_reference(COUNTS, v, power).sum(),
        LOG_MU,
        rtol=1e-6,
        float32_rtol=1e-4,
    )
    assert np.all(np.isfinite(gradient))


def test_gradient_is_lightgbm_tweedie_gradient_times_two():
    # LightGBM's tweedie objective: grad = -y exp((1 - p) s) + exp((2 - p) s) per element.
    power = 1.5
    gradient = as_numpy(
        input_gradient(
            lambda values: TweedieLoss(power=power, reduction="sum")(COUNTS, values),
            keras.ops.convert_to_tensor(LOG_MU, dtype="float32"),
        )
    )
    lightgbm = -COUNTS * np.exp((1 - power) * LOG_MU) + np.exp((2 - power) * LOG_MU)
    np.testing.assert_allclose(gradient, 2.0 * lightgbm / COUNTS.shape[1], rtol=1e-5)


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    power=st.floats(1.05, 1.95),
)
def test_zero_exactly_at_the_target_and_positive_elsewhere(seed, power):
    rng = np.random.default_rng(seed)
    y_true = rng.uniform(0.1, 20.0, size=(3, 4))
    at_target = per_sample(TweedieLoss(power=power), y_true, np.log(y_true))
    np.testing.assert_allclose(at_target, 0.0, atol=1e-4 * (1 + y_true.max()))
    moved = per_sample(TweedieLoss(power=power), y_true, np.log(y_true) + 0.3)
    assert np.all(moved > at_target)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5, 3.0, float("nan"), True, "1.5", None])
def test_power_outside_open_interval_is_a_value_error(power):
    with pytest.raises(ValueError, match=r"TweedieLoss.*power.*\(1, 2\)"):
        TweedieLoss(power=power)


def test_negative_target_is_a_value_error():
    with pytest.raises(ValueError, match=r"TweedieLoss.*y_true.*\[0\.0, inf\]"):
        TweedieLoss()(np.array([[1.0, -0.5]]), np.zeros((1, 2)))


def test_mismatched_shapes_are_a_value_error():
    with pytest.raises(ValueError, match=r"TweedieLoss.*same shape.*\(2, 3\).*\(2, 4\)"):
        TweedieLoss()(np.zeros((2, 3)), np.zeros((2, 4)))


def test_config_keeps_power():
    restored = TweedieLoss.from_config(TweedieLoss(power=1.25).get_config())
    assert restored.power == 1.25
