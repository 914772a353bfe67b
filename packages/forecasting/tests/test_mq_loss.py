import json
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.core.testing.numeric import as_numpy, hypothesis_examples
from dl_techniques.losses.forecasting import MQLoss

# Zero or at least 2**-10 in magnitude: differences of such values stay normal
# float32 numbers, which XLA on CPU does not flush to zero as it does subnormals.
NORMAL_FLOAT32 = st.one_of(
    st.just(0.0), st.floats(2**-10, 1e3, width=32), st.floats(-1e3, -(2**-10), width=32)
)


def pinball_reference(y_true, y_pred, quantiles):
    """Per-element pinball losses ``(B, ..., Q)`` in float64, looping over quantiles."""
    y_true, y_pred = np.asarray(y_true, "float64"), np.asarray(y_pred, "float64")
    columns = []
    for index, q in enumerate(quantiles):
        error = y_true - y_pred[..., index]
        columns.append(q * np.maximum(error, 0.0) + (1.0 - q) * np.maximum(-error, 0.0))
    return np.stack(columns, axis=-1)


def mq_reference(y_true, y_pred, quantiles):
    """Per-sample MQLoss: mean over quantiles and non-batch axes."""
    pinball = pinball_reference(y_true, y_pred, quantiles)
    return pinball.reshape(pinball.shape[0], -1).mean(axis=1)


def test_hand_checked_value_two_quantiles():
    # y = 1: q = 0.1 forecast 0 is 1 low -> 0.1; q = 0.9 forecast 3 is 2 high -> 0.2
    value = MQLoss(quantiles=(0.1, 0.9))([[1.0]], [[[0.0, 3.0]]])
    np.testing.assert_allclose(as_numpy(value), 0.15, rtol=1e-6)


def test_hand_checked_value_default_quantiles():
    # y = 2, forecasts (1, 2, 4): 0.1 * 1, 0, (1 - 0.9) * 2 -> mean 0.1
    value = MQLoss()([2.0], [[1.0, 2.0, 4.0]])
    np.testing.assert_allclose(as_numpy(value), 0.1, rtol=1e-6)


@pytest.mark.parametrize("quantiles", [(0.1, 0.5, 0.9), (0.05, 0.25, 0.5, 0.75, 0.95), (0.3,)])
@pytest.mark.parametrize("trailing_one", [False, True])
def test_matches_numpy_reference_per_sample(quantiles, trailing_one):
    rng = np.random.default_rng(len(quantiles))
    y_true = rng.normal(size=(5, 7)).astype("float32")
    y_pred = (y_true[..., None] + rng.normal(size=(5, 7, len(quantiles)))).astype("float32")
    given_true = y_true[..., None] if trailing_one else y_true
    np.testing.assert_allclose(
        as_numpy(MQLoss(quantiles=quantiles, reduction=None)(given_true, y_pred)),
        mq_reference(y_true, y_pred, quantiles),
        rtol=1e-5,
        atol=1e-6,
    )


def test_multivariate_forecast_axes():
    rng = np.random.default_rng(4)
    y_true = rng.normal(size=(3, 6, 2)).astype("float32")
    y_pred = rng.normal(size=(3, 6, 2, 3)).astype("float32")
    np.testing.assert_allclose(
        as_numpy(MQLoss(reduction=None)(y_true, y_pred)),
        mq_reference(y_true, y_pred, (0.1, 0.5, 0.9)),
        rtol=1e-5,
    )


def test_is_neuralforecast_sum_convention_divided_by_number_of_quantiles():
    # neuralforecast 3.3 sums the pinball losses over quantiles, then averages
    # over the remaining axes: Q times this loss.
    quantiles = (0.1, 0.5, 0.9)
    rng = np.random.default_rng(8)
    y_true = rng.normal(size=(4, 6)).astype("float32")
    y_pred = rng.normal(size=(4, 6, 3)).astype("float32")
    summed_over_quantiles = pinball_reference(y_true, y_pred, quantiles).sum(axis=-1).mean()
    ours = as_numpy(MQLoss(quantiles=quantiles)(y_true, y_pred))
    np.testing.assert_allclose(len(quantiles) * ours, summed_over_quantiles, rtol=1e-5)


def test_quantile_axis_follows_the_given_order():
    # y = 0, forecasts (1, -1) for quantiles (0.9, 0.1): 0.1 * 1 and 0.1 * 1 -> 0.1.
    # Read in sorted order (0.1, 0.9) the same forecasts would cost 0.9.
    value = MQLoss(quantiles=(0.9, 0.1))([0.0], [[1.0, -1.0]])
    np.testing.assert_allclose(as_numpy(value), 0.1, rtol=1e-6)
    assert MQLoss(quantiles=(0.9, 0.1)).quantiles == [0.9, 0.1]


def test_config_stores_quantiles_exactly_as_given():
    quantiles = (0.1, 0.2, 0.7, 0.975)
    loss = MQLoss(quantiles=quantiles)
    config = loss.get_config()
    assert config["quantiles"] == [0.1, 0.2, 0.7, 0.975]
    assert all(type(q) is float for q in config["quantiles"])
    restored = keras.losses.deserialize(json.loads(json.dumps(keras.losses.serialize(loss))))
    assert isinstance(restored, MQLoss)
    assert restored.quantiles == [0.1, 0.2, 0.7, 0.975]


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    data=hnp.arrays("float32", shape=(4, 3, 5), elements=NORMAL_FLOAT32),
    quantiles=st.lists(st.floats(0.01, 0.99), min_size=1, max_size=4, unique=True),
)
def test_nonnegative_for_any_quantiles(data, quantiles):
    y_true = data[0]
    y_pred = np.stack([data[1 + index % 3] for index in range(len(quantiles))], axis=-1)
    value = as_numpy(MQLoss(quantiles=quantiles, reduction=None)(y_true, y_pred))
    assert np.all(value >= 0.0)
    np.testing.assert_allclose(value, mq_reference(y_true, y_pred, quantiles), rtol=1e-4, atol=1e-3)


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(pair=hnp.arrays("float32", shape=(2, 3, 4), elements=NORMAL_FLOAT32))
def test_single_median_quantile_is_half_the_mae(pair):
    y_true, y_pred = pair[0], pair[1]
    value = as_numpy(MQLoss(quantiles=(0.5,), reduction=None)(y_true, y_pred[..., None]))
    half_mae = 0.5 * np.abs(y_true.astype("float64") - y_pred).mean(axis=1)
    np.testing.assert_allclose(value, half_mae, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "quantiles",
    [(0.0, 0.5), (0.5, 1.0), (-0.1,), (1.5,), (float("nan"),), (0.1, True), ("0.5",)],
)
def test_quantiles_outside_open_unit_interval_are_a_value_error(quantiles):
    with pytest.raises(ValueError, match=r"MQLoss.*\(0, 1\)"):
        MQLoss(quantiles=quantiles)


def test_repeated_quantiles_are_a_value_error():
    with pytest.raises(ValueError, match=r"MQLoss.*distinct.*0\.5"):
        MQLoss(quantiles=(0.1, 0.5, 0.5))


@pytest.mark.parametrize("quantiles", [(), 0.5, "0.5", None])
def test_empty_or_non_sequence_quantiles_are_a_value_error(quantiles):
    with pytest.raises(ValueError, match=r"MQLoss.*quantile"):
        MQLoss(quantiles=quantiles)


def test_quantile_axis_of_wrong_length_is_a_value_error():
    with pytest.raises(ValueError, match=r"MQLoss.*num_quantiles=3.*\(2, 4, 2\)"):
        MQLoss()(np.zeros((2, 4)), np.zeros((2, 4, 2)))


@pytest.mark.parametrize("true_shape", [(2, 5), (2, 4, 3), (3, 4)])
def test_mismatched_y_true_is_a_value_error(true_shape):
    with pytest.raises(ValueError, match=r"MQLoss.*y_true.*" + re.escape(str(true_shape))):
        MQLoss()(np.zeros(true_shape), np.zeros((2, 4, 3)))
