import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import as_numpy, hypothesis_examples
from dl_techniques.losses.forecasting import SMAPELoss

# Zero or at least 2**-10 in magnitude: differences of such values stay normal
# float32 numbers, which XLA on CPU does not flush to zero as it does subnormals.
NORMAL_FLOAT32 = st.one_of(
    st.just(0.0), st.floats(2**-10, 1e4, width=32), st.floats(-1e4, -(2**-10), width=32)
)


def smape_reference(y_true, y_pred):
    """Per-sample sMAPE on the [0, 2] scale, 0/0 taken as 0, in float64."""
    y_true, y_pred = np.asarray(y_true, "float64"), np.asarray(y_pred, "float64")
    denominator = np.abs(y_true) + np.abs(y_pred)
    ratio = np.divide(
        2.0 * np.abs(y_true - y_pred),
        denominator,
        out=np.zeros_like(denominator),
        where=denominator > 0,
    )
    return ratio.reshape(ratio.shape[0], -1).mean(axis=1)


def test_hand_checked_value_with_a_zero_zero_pair():
    # 2 * |1 - 3| / (1 + 3) = 1 and 0/0 -> 0; mean 0.5
    np.testing.assert_allclose(as_numpy(SMAPELoss()([[1.0, 0.0]], [[3.0, 0.0]])), 0.5)


def test_percentage_uses_the_m4_scale():
    loss = SMAPELoss(percentage=True)
    np.testing.assert_allclose(as_numpy(loss([[1.0, 0.0]], [[3.0, 0.0]])), 50.0, rtol=1e-6)


def test_opposite_signs_reach_the_upper_bound():
    # 2 * |-1 - 1| / (1 + 1) = 2 and an exact forecast 0; mean 1
    np.testing.assert_allclose(as_numpy(SMAPELoss()([[-1.0, 2.0]], [[1.0, 2.0]])), 1.0)


@pytest.mark.parametrize("shape", [(6, 5), (2, 4, 3), (7,)])
def test_matches_numpy_reference_per_sample(shape):
    rng = np.random.default_rng(sum(shape))
    y_true = rng.normal(size=shape).astype("float32")
    y_pred = (y_true + rng.normal(scale=0.5, size=shape)).astype("float32")
    y_true.flat[0] = y_pred.flat[0] = 0.0
    np.testing.assert_allclose(
        as_numpy(SMAPELoss(reduction=None)(y_true, y_pred)),
        smape_reference(y_true, y_pred),
        rtol=1e-5,
        atol=1e-6,
    )


def test_zero_over_zero_is_zero_with_bounded_gradient():
    y_true = keras.ops.convert_to_tensor([[0.0, 0.0, 1.0]])
    y_pred = keras.ops.convert_to_tensor([[0.0, 0.0, 1.0]])
    loss = SMAPELoss(reduction=None)
    np.testing.assert_array_equal(as_numpy(loss(y_true, y_pred)), [0.0])
    gradient = as_numpy(input_gradient(lambda values: loss(y_true, values), y_pred))
    assert np.all(np.isfinite(gradient))
    # |y - yhat| has slope 0 (tensorflow, torch) or +-1 (jax) at 0; over a
    # denominator of 1 and a mean over 3 elements the gradient is at most 2 / 3.
    assert np.all(np.abs(gradient[0, :2]) <= 2.0 / 3.0 + 1e-6)


def test_tiny_values_keep_exact_value_and_bounded_gradient():
    # 2 * 2e-10 / 4e-10 = 1 exactly, far below any usual data scale.
    loss = SMAPELoss(reduction=None)
    np.testing.assert_allclose(as_numpy(loss([[1e-10]], [[3e-10]])), [1.0], rtol=1e-6)
    # Denominators of 1e-30 fall under the 2**-60 floor: they count as 0.
    y_true = keras.ops.convert_to_tensor([[1e-30, 0.0]])
    y_pred = keras.ops.convert_to_tensor([[0.0, 1e-30]])
    np.testing.assert_allclose(as_numpy(loss(y_true, y_pred)), [0.0], atol=1e-29)
    gradient = as_numpy(input_gradient(lambda values: loss(y_true, values), y_pred))
    assert np.all(np.isfinite(gradient)) and np.all(np.abs(gradient) <= 1.0 + 1e-6)


def test_gradient_matches_the_formula_away_from_zero():
    # d/dyhat 2 (yhat - y) / (y + yhat) for y, yhat > 0, yhat > y:
    # 4 y / (y + yhat)^2 = 4 / 9 at y = 1, yhat = 2; mean over 2 elements halves it
    y_true = keras.ops.convert_to_tensor([[1.0, 5.0]])
    gradient = input_gradient(
        lambda values: SMAPELoss(reduction=None)(y_true, values),
        keras.ops.convert_to_tensor([[2.0, 5.0]]),
    )
    np.testing.assert_allclose(as_numpy(gradient)[0, 0], 2.0 / 9.0, rtol=1e-6)


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    pair=hnp.arrays(
        "float32",
        shape=(2, 3, 4),
        elements=NORMAL_FLOAT32,
    )
)
def test_within_zero_and_two_and_percentage_is_hundred_times(pair):
    y_true, y_pred = pair[0], pair[1]
    value = as_numpy(SMAPELoss(reduction=None)(y_true, y_pred))
    percent = as_numpy(SMAPELoss(percentage=True, reduction=None)(y_true, y_pred))
    assert np.all(np.isfinite(value))
    assert np.all((value >= 0.0) & (value <= 2.0 + 1e-6))
    np.testing.assert_allclose(percent, 100.0 * value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value, smape_reference(y_true, y_pred), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("percentage", ["yes", 1, 0, None])
def test_non_bool_percentage_is_a_value_error(percentage):
    with pytest.raises(ValueError, match=r"SMAPELoss.*percentage"):
        SMAPELoss(percentage=percentage)


def test_mismatched_shapes_are_a_value_error_naming_both():
    with pytest.raises(ValueError, match=r"SMAPELoss.*\(3, 5\).*\(3, 4\)"):
        SMAPELoss()(np.ones((3, 5)), np.ones((3, 4)))


def test_config_round_trip_keeps_percentage():
    loss = SMAPELoss(percentage=True, name="smape_pct")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, SMAPELoss)
    assert restored.percentage is True and restored.name == "smape_pct"
