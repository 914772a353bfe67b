"""core.algebra: weighted sums of losses are Keras losses that weigh, save, reload and fit."""

import keras
import numpy as np
import pytest

import dl_techniques.losses  # noqa: F401  (installs the operators)
from dl_techniques.losses.core.algebra import CompositeLoss
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.component_model import ComponentModel
from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.core.testing.checks import (
    check_jit_fit_step,
    check_saved_model,
)
from dl_techniques.losses.core.testing.pytest_suite import (
    batched_reload_case,
    check_batched_fresh_process_reload,
)

TRUE = np.array([[0.0, 1.0, 2.0], [1.0, -1.0, 0.5], [3.0, 0.0, 0.0]], dtype="float32")
PRED = np.array([[0.5, 1.0, 0.0], [1.0, 1.0, 0.5], [2.0, 0.5, -1.0]], dtype="float32")
WEIGHTS = np.array([2.0, 0.0, 1.0], dtype="float32")
MAE_ROWS = np.abs(TRUE - PRED).mean(axis=-1)
MSE_ROWS = ((TRUE - PRED) ** 2).mean(axis=-1)


@keras.saving.register_keras_serializable(package="dl_techniques_tests")
class WorstRowError(BatchLoss):
    """max over rows of the mean absolute error: a batch-level loss; weights drop rows."""

    def batch_value(self, y_true, y_pred, sample_weight):
        rows = keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)
        if sample_weight is not None:
            rows = rows * keras.ops.cast(keras.ops.reshape(sample_weight, (-1,)) > 0, rows.dtype)
        return keras.ops.max(rows)


def _value(tensor):
    return float(np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32"))))


def test_weighted_sum_of_two_losses_is_the_weighted_sum_of_their_values():
    loss = 0.7 * keras.losses.MeanAbsoluteError() + 0.3 * keras.losses.MeanSquaredError()

    assert isinstance(loss, CompositeLoss)
    assert _value(loss(TRUE, PRED)) == pytest.approx(0.7 * MAE_ROWS.mean() + 0.3 * MSE_ROWS.mean())


def test_sum_difference_division_negation_and_python_sum():
    mae, mse = keras.losses.MeanAbsoluteError(), keras.losses.MeanSquaredError()
    expected_mae, expected_mse = MAE_ROWS.mean(), MSE_ROWS.mean()

    assert _value((mae + mse)(TRUE, PRED)) == pytest.approx(expected_mae + expected_mse)
    assert _value((mae - mse)(TRUE, PRED)) == pytest.approx(expected_mae - expected_mse)
    assert _value((mae / 4)(TRUE, PRED)) == pytest.approx(expected_mae / 4)
    assert _value((-mse)(TRUE, PRED)) == pytest.approx(-expected_mse)
    assert _value(sum([mae, mse, mae])(TRUE, PRED)) == pytest.approx(
        2 * expected_mae + expected_mse
    )
    # Sums and scalings of composites stay one flat list of terms.
    assert [weight for weight, _ in (0.5 * (mae + 2 * mse) + mae).terms] == [0.5, 1.0, 1.0]


def test_sample_weight_reaches_each_term_as_it_would_alone():
    per_sample = keras.losses.MeanAbsoluteError()
    batch_level = WorstRowError()
    loss = 2.0 * per_sample + batch_level

    value = _value(loss(TRUE, PRED, sample_weight=WEIGHTS))

    # Keras' mean of weighted rows over the batch size, and the worst kept row.
    expected = 2.0 * (WEIGHTS * MAE_ROWS).sum() / 3 + MAE_ROWS[WEIGHTS > 0].max()
    assert value == pytest.approx(expected)


def test_components_name_each_weighted_term_and_the_total():
    loss = 0.25 * keras.losses.MeanAbsoluteError() + keras.losses.MeanAbsoluteError()
    loss = loss + 3.0 * keras.losses.MeanSquaredError()

    parts = loss.components(TRUE, PRED)

    assert loss.component_names() == [
        "mean_absolute_error",
        "mean_absolute_error_2",
        "mean_squared_error",
        "total",
    ]
    assert list(parts) == loss.component_names()
    assert _value(parts["mean_absolute_error"]) == pytest.approx(0.25 * MAE_ROWS.mean())
    assert _value(parts["mean_squared_error"]) == pytest.approx(3.0 * MSE_ROWS.mean())
    assert _value(parts["total"]) == pytest.approx(1.25 * MAE_ROWS.mean() + 3 * MSE_ROWS.mean())


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), True])
def test_a_weight_that_is_not_a_finite_real_number_is_rejected(weight):
    with pytest.raises(ValueError, match="CompositeLoss: a loss weight must be a finite real"):
        CompositeLoss([(weight, keras.losses.MeanAbsoluteError())])


def test_operands_that_are_not_numbers_or_losses_raise():
    mae = keras.losses.MeanAbsoluteError()
    with pytest.raises(TypeError):
        mae * "2"  # noqa: B018
    with pytest.raises(TypeError):
        mae + 1.0  # noqa: B018
    with pytest.raises(ZeroDivisionError, match="by 0"):
        mae / 0  # noqa: B018
    with pytest.raises(ValueError, match="at least one"):
        CompositeLoss([])
    with pytest.raises(ValueError, match="CompositeLoss: `terms` must be a keras.losses.Loss"):
        CompositeLoss([(1.0, "mae")])


def test_nested_composites_round_trip_through_their_config():
    inner = CompositeLoss(
        [(0.5, keras.losses.MeanAbsoluteError()), (0.5, WorstRowError())], name="inner"
    )
    outer = CompositeLoss([(2.0, inner), (1.0, keras.losses.MeanSquaredError())])

    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(outer))

    assert isinstance(rebuilt.terms[0][1], CompositeLoss)
    assert isinstance(rebuilt.terms[0][1].terms[1][1], WorstRowError)
    expected = 2.0 * (0.5 * MAE_ROWS.mean() + 0.5 * MAE_ROWS.max()) + MSE_ROWS.mean()
    assert _value(rebuilt(TRUE, PRED)) == pytest.approx(expected)
    assert rebuilt.get_config() == outer.get_config()


def _composite_case():
    nested = CompositeLoss(
        [
            (0.5, 2.0 * keras.losses.MeanAbsoluteError() + keras.losses.Huber()),
            (0.25, keras.losses.MeanSquaredError()),
        ]
    )
    return LossCase(
        CompositeLoss,
        {"terms": nested.terms, "name": "nested_composite"},
        TRUE,
        PRED,
        case_id="CompositeLoss",
    )


def test_a_model_compiled_with_a_nested_composite_saves_and_reloads(tmp_path):
    check_saved_model(_composite_case(), tmp_path)


COMPOSITE_RELOAD_CASE = batched_reload_case(_composite_case())


def test_a_composite_reloads_in_a_fresh_process(tmp_path_factory):
    check_batched_fresh_process_reload([COMPOSITE_RELOAD_CASE], tmp_path_factory)


def test_a_composite_trains_in_a_compiled_fit():
    check_jit_fit_step(_composite_case())


def test_component_model_logs_each_term_during_fit():
    inputs = keras.Input(shape=(3,))
    outputs = keras.layers.Dense(3)(inputs)
    model = ComponentModel(inputs, outputs)
    loss = 0.5 * keras.losses.MeanAbsoluteError() + 2.0 * keras.losses.MeanSquaredError()
    model.compile(optimizer="sgd", loss=loss)

    history = model.fit(PRED, TRUE, epochs=1, batch_size=3, verbose=0)

    for name in ("loss", "mean_absolute_error", "mean_squared_error", "total"):
        assert name in history.history, sorted(history.history)
    logged = history.history
    assert logged["total"][0] == pytest.approx(
        logged["mean_absolute_error"][0] + logged["mean_squared_error"][0], rel=1e-5
    )
