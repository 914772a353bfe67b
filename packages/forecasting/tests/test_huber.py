import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import hypothesis_examples
from dl_techniques.losses.forecasting import HuberLoss


def huber_reference(y_true, y_pred, delta):
    """Per-sample Huber loss from the formula, in float64."""
    error = np.asarray(y_pred, "float64") - np.asarray(y_true, "float64")
    abs_error = np.abs(error)
    per_element = np.where(abs_error <= delta, 0.5 * error**2, delta * (abs_error - 0.5 * delta))
    return per_element.reshape(per_element.shape[0], -1).mean(axis=1)


def per_sample(loss, y_true, y_pred):
    loss.reduction = None
    return keras.ops.convert_to_numpy(loss(y_true, y_pred))


def test_hand_checked_value_mixes_quadratic_and_linear_parts():
    # errors 0.5 (quadratic: 0.125) and 2 (linear: 1 * (2 - 0.5) = 1.5)
    value = HuberLoss(delta=1.0)([[0.0, 1.0]], [[0.5, 3.0]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value), 0.8125, rtol=1e-6)


def test_error_equal_to_delta_is_quadratic():
    # |e| = delta = 2 -> 0.5 * 4 = 2; e = 0.5 -> 0.125; mean 1.0625
    value = HuberLoss(delta=2.0)([[0.0, 0.0]], [[2.0, -0.5]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value), 1.0625, rtol=1e-6)


@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 2), (6,)])
@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
def test_matches_numpy_reference_per_sample(shape, delta):
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=shape).astype("float32")
    y_pred = (y_true + rng.normal(scale=2.0, size=shape)).astype("float32")
    np.testing.assert_allclose(
        per_sample(HuberLoss(delta=delta), y_true, y_pred),
        huber_reference(y_true, y_pred, delta),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight"])
@pytest.mark.parametrize("delta", [0.5, 1.0, 3.0])
def test_equals_keras_huber(reduction, delta):
    rng = np.random.default_rng(1)
    y_true = rng.normal(size=(8, 5)).astype("float32")
    y_pred = rng.normal(scale=3.0, size=(8, 5)).astype("float32")
    weights = rng.uniform(0.1, 2.0, size=(8,)).astype("float32")
    ours = HuberLoss(delta=delta, reduction=reduction)(y_true, y_pred, sample_weight=weights)
    theirs = keras.losses.Huber(delta=delta, reduction=reduction)(
        y_true, y_pred, sample_weight=weights
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), rtol=1e-6
    )


def test_config_keeps_delta_and_round_trips():
    loss = HuberLoss(delta=0.25, reduction="sum", name="robust")
    config = loss.get_config()
    assert config["delta"] == 0.25
    rebuilt = HuberLoss.from_config(config)
    assert (rebuilt.delta, rebuilt.reduction, rebuilt.name) == (0.25, "sum", "robust")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, HuberLoss) and restored.delta == 0.25


def test_trailing_unit_axis_is_dropped():
    y_true = np.array([[1.0, 2.0, 3.0]], "float32")
    y_pred = np.array([[1.5, 2.0, 6.0]], "float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(HuberLoss()(y_true[..., None], y_pred)),
        huber_reference(y_true, y_pred, 1.0)[0],
        rtol=1e-6,
    )


def test_float16_loss_computes_in_float32():
    # 0.5 * 300^2 = 45000 per element: representable in float16, but the sum
    # of four of them (180000) is not, so a float16 mean would overflow.
    loss = HuberLoss(delta=1000.0, dtype="float16")
    value = loss(np.zeros((1, 4), "float16"), np.full((1, 4), 300.0, "float16"))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(value).astype("float64"), 45000.0, rtol=1e-3
    )


def test_gradient_is_finite_at_zero_error():
    y_true = keras.ops.convert_to_tensor([[1.0, 2.0]])
    gradient = input_gradient(
        lambda y_pred: HuberLoss(reduction=None)(y_true, y_pred),
        keras.ops.convert_to_tensor([[1.0, 5.0]]),
    )
    # d/dyhat mean(huber): 0 at zero error, delta / 2 on the linear side
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gradient), [[0.0, 0.5]], atol=1e-7)


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    delta=st.floats(0.05, 10.0),
    shift=st.floats(-50.0, 50.0),
)
def test_nonnegative_and_shift_invariant(seed, delta, shift):
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=(3, 4))
    y_pred = y_true + rng.normal(scale=2.0, size=(3, 4))
    loss = HuberLoss(delta=delta, reduction=None)
    base = keras.ops.convert_to_numpy(loss(y_true, y_pred))
    shifted = keras.ops.convert_to_numpy(loss(y_true + shift, y_pred + shift))
    assert np.all(base >= 0.0)
    np.testing.assert_allclose(shifted, base, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan"), float("inf"), "1.0", True, None])
def test_invalid_delta_is_a_value_error(delta):
    with pytest.raises(ValueError, match=r"HuberLoss.*delta"):
        HuberLoss(delta=delta)


def test_mismatched_shapes_are_a_value_error_naming_both():
    with pytest.raises(ValueError, match=r"HuberLoss.*\(2, 3\).*\(2, 4\)"):
        HuberLoss()(np.zeros((2, 3)), np.zeros((2, 4)))
