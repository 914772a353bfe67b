import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import as_numpy, hypothesis_examples
from dl_techniques.losses.forecasting import MASELoss


def mase_reference(target, insample, forecast, seasonality):
    """Per-sample MASE from Hyndman & Koehler's formula, in float64.

    Arrays are ``(B, T[, N])``; a series with zero in-sample scale gives 0.
    """
    target, insample, forecast = (np.asarray(a, "float64") for a in (target, insample, forecast))
    scale = np.abs(insample[:, seasonality:] - insample[:, :-seasonality]).mean(axis=1)
    error = np.abs(target - forecast).mean(axis=1)
    scaled = np.divide(error, scale, out=np.zeros_like(error), where=scale > 0)
    return scaled.reshape(scaled.shape[0], -1).mean(axis=1)


def random_case(rng, batch=4, history=10, horizon=5, series=None):
    tail = () if series is None else (series,)
    insample = rng.normal(size=(batch, history, *tail)).astype("float32")
    target = rng.normal(size=(batch, horizon, *tail)).astype("float32")
    forecast = (target + rng.normal(scale=0.7, size=target.shape)).astype("float32")
    return target, insample, forecast


def test_hand_checked_value_with_seasonality_one():
    # scale = (|2 - 1| + |4 - 2|) / 2 = 1.5; mean |error| = (0 + 3) / 2 = 1.5
    loss = MASELoss(seasonality=1)
    value = loss({"target": [[5.0, 6.0]], "insample": [[1.0, 2.0, 4.0]]}, [[5.0, 3.0]])
    np.testing.assert_allclose(as_numpy(value), 1.0, rtol=1e-6)


def test_hand_checked_value_with_seasonality_two():
    # scale = (|2 - 1| + |6 - 3|) / 2 = 2; mean |error| = (2 + 4) / 2 = 3 -> 1.5
    loss = MASELoss(seasonality=2)
    value = loss({"target": [[0.0, 0.0]], "insample": [[1.0, 3.0, 2.0, 6.0]]}, [[2.0, -4.0]])
    np.testing.assert_allclose(as_numpy(value), 1.5, rtol=1e-6)


def test_mase_scale_comes_from_insample_history():
    # History 0, 1, 2, 3 has scale 1; the forecast window jumps by 20, so a
    # scale over the window (or the whole series: mean(1, 1, 1, 7, 20) = 6)
    # would give 1.5 / 20 or 1.5 / 6 instead of 1.5.
    history = [[0.0, 1.0, 2.0, 3.0]]
    target = [[10.0, 30.0]]
    forecast = [[11.0, 28.0]]
    loss = MASELoss(seasonality=1)
    np.testing.assert_allclose(
        as_numpy(loss({"target": target, "insample": history}, forecast)), 1.5, rtol=1e-6
    )
    np.testing.assert_allclose(
        as_numpy(loss(np.concatenate([history, target], axis=1), forecast)), 1.5, rtol=1e-6
    )


@pytest.mark.parametrize("seasonality", [1, 3, 7])
def test_matches_numpy_reference_per_sample(seasonality):
    rng = np.random.default_rng(seasonality)
    target, insample, forecast = random_case(rng, history=12)
    loss = MASELoss(seasonality=seasonality, reduction=None)
    np.testing.assert_allclose(
        as_numpy(loss({"target": target, "insample": insample}, forecast)),
        mase_reference(target, insample, forecast, seasonality),
        rtol=1e-5,
    )


@pytest.mark.parametrize("series", [None, 3])
def test_dict_and_concatenated_forms_agree(series):
    rng = np.random.default_rng(5)
    target, insample, forecast = random_case(rng, series=series)
    loss = MASELoss(seasonality=2, reduction=None)
    from_dict = as_numpy(loss({"target": target, "insample": insample}, forecast))
    from_tensor = as_numpy(loss(np.concatenate([insample, target], axis=1), forecast))
    np.testing.assert_allclose(from_tensor, from_dict, rtol=1e-6)
    np.testing.assert_allclose(from_dict, mase_reference(target, insample, forecast, 2), rtol=1e-5)


def test_multivariate_has_one_scale_per_series_and_sample():
    rng = np.random.default_rng(11)
    target, insample, forecast = random_case(rng, batch=3, series=4)
    # Give the series very different scales, so one pooled scale would be wrong.
    factors = np.array([0.01, 1.0, 30.0, 500.0], "float32")
    target, insample, forecast = target * factors, insample * factors, forecast * factors
    loss = MASELoss(seasonality=1, reduction=None)
    np.testing.assert_allclose(
        as_numpy(loss({"target": target, "insample": insample}, forecast)),
        mase_reference(target, insample, forecast, 1),
        rtol=1e-5,
    )


def test_zero_scale_series_contributes_zero_with_finite_gradient():
    insample = np.array([[[2.0, 1.0], [2.0, 3.0], [2.0, 6.0]]], "float32")  # series 0 constant
    target = np.array([[[5.0, 7.0], [1.0, 4.0]]], "float32")
    forecast = np.array([[[4.0, 6.0], [3.0, 6.0]]], "float32")
    # series 1: scale (2 + 3) / 2 = 2.5, mean |error| (1 + 2) / 2 = 1.5 -> 0.6;
    # series 0 contributes 0; mean over the two series 0.3
    loss = MASELoss(seasonality=1, reduction=None)
    y_true = {"target": target, "insample": insample}
    np.testing.assert_allclose(as_numpy(loss(y_true, forecast)), [0.3], rtol=1e-6)
    gradient = as_numpy(
        input_gradient(lambda y_pred: loss(y_true, y_pred), keras.ops.convert_to_tensor(forecast))
    )
    assert np.all(np.isfinite(gradient))
    np.testing.assert_array_equal(gradient[..., 0], 0.0)
    # d/dyhat of mean_n(mean_h |y - yhat| / scale) = -sign(y - yhat) / (2 * 2 * 2.5)
    np.testing.assert_allclose(gradient[0, :, 1], [-0.1, 0.1], rtol=1e-6)


def test_all_zero_scale_batch_is_zero_not_nan():
    loss = MASELoss(seasonality=1)
    value = loss(np.ones((2, 8), "float32"), np.zeros((2, 3), "float32"))
    np.testing.assert_array_equal(as_numpy(value), 0.0)


def test_concatenated_form_trains_with_stock_fit_and_evaluates_to_reference():
    rng = np.random.default_rng(3)
    inputs = rng.normal(size=(32, 6)).astype("float32")
    history_and_target = rng.normal(size=(32, 10 + 4)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss=MASELoss(seasonality=2))
    model.fit(inputs, history_and_target, epochs=1, batch_size=8, verbose=0)
    evaluated = model.evaluate(inputs, history_and_target, batch_size=32, verbose=0)
    forecast = as_numpy(model(inputs))
    expected = mase_reference(
        history_and_target[:, 10:], history_and_target[:, :10], forecast, 2
    ).mean()
    np.testing.assert_allclose(evaluated, expected, rtol=1e-5)


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    factor=st.floats(1e-3, 1e3),
    seasonality=st.integers(1, 4),
    series=st.sampled_from([None, 2]),
)
def test_unchanged_when_target_history_and_forecast_scale_together(
    seed, factor, seasonality, series
):
    rng = np.random.default_rng(seed)
    target, insample, forecast = random_case(rng, batch=3, history=8, horizon=4, series=series)
    loss = MASELoss(seasonality=seasonality, reduction=None)
    base = as_numpy(loss({"target": target, "insample": insample}, forecast))
    scaled = as_numpy(
        loss({"target": target * factor, "insample": insample * factor}, forecast * factor)
    )
    np.testing.assert_allclose(scaled, base, rtol=1e-4)


@pytest.mark.parametrize("seasonality", [0, -2, 1.5, True, "12", None])
def test_invalid_seasonality_is_a_value_error(seasonality):
    with pytest.raises(ValueError, match=r"MASELoss.*seasonality"):
        MASELoss(seasonality=seasonality)


def test_history_not_longer_than_seasonality_is_a_value_error_in_both_forms():
    loss = MASELoss(seasonality=4)
    forecast = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match=r"MASELoss.*longer than `seasonality`=4.*length 4"):
        loss(np.zeros((2, 4 + 3), "float32"), forecast)
    with pytest.raises(ValueError, match=r"MASELoss.*longer than `seasonality`=4.*length 3"):
        loss({"target": np.zeros((2, 3)), "insample": np.zeros((2, 3))}, forecast)


def test_concatenated_y_true_without_history_is_a_value_error():
    with pytest.raises(ValueError, match=r"MASELoss.*\(2, 3\).*\(2, 3\)"):
        MASELoss()(np.zeros((2, 3)), np.zeros((2, 3)))


@pytest.mark.parametrize(
    "y_true, y_pred_shape, message",
    [
        ({"target": np.zeros((2, 4)), "insample": np.zeros((2, 9))}, (2, 3), r"\(2, 4\).*\(2, 3\)"),
        ({"target": np.zeros((2, 3)), "insample": np.zeros((5, 9))}, (2, 3), r"\(5, 9\).*\(2, 3\)"),
        (
            {"target": np.zeros((2, 3, 2)), "insample": np.zeros((2, 9, 3))},
            (2, 3, 2),
            r"\(2, 9, 3\).*\(2, 3, 2\)",
        ),
        (np.zeros((2, 12, 3)), (2, 4, 2), r"\(2, 12, 3\).*\(2, 4, 2\)"),
        ({"target": np.zeros((2, 3))}, (2, 3), r"keys"),
    ],
)
def test_mismatched_shapes_are_a_value_error(y_true, y_pred_shape, message):
    with pytest.raises(ValueError, match="MASELoss.*" + message):
        MASELoss()(y_true, np.zeros(y_pred_shape, "float32"))


def test_forecast_without_time_axis_is_a_value_error():
    with pytest.raises(ValueError, match=r"MASELoss.*y_pred.*\(3,\)"):
        MASELoss()(np.zeros((3, 8)), np.zeros((3,), "float32"))


def test_config_round_trip_keeps_seasonality():
    loss = MASELoss(seasonality=12, reduction="sum", name="mase12")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MASELoss)
    assert (restored.seasonality, restored.reduction, restored.name) == (12, "sum", "mase12")
