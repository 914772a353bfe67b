"""core.batch_loss.BatchLoss: dtype, weights, reduction, per-sample mode, fit and save."""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import numerics
from dl_techniques.losses.core.batch_loss import BatchLoss

BACKEND = keras.backend.backend()


@keras.saving.register_keras_serializable(package="dl_techniques_tests")
class PooledAbsoluteError(BatchLoss):
    """sum_i w_i |y_i - p_i|_1 / sum_i w_i over the batch; per row with per_row=True."""

    def __init__(self, per_row=False, **kwargs):
        super().__init__(**kwargs)
        self.per_row = per_row
        self.seen = []

    def is_per_sample(self):
        return self.per_row

    def batch_value(self, y_true, y_pred, sample_weight):
        self.seen.append(
            (keras.backend.standardize_dtype(y_pred.dtype), y_true.dtype, sample_weight)
        )
        errors = keras.ops.sum(keras.ops.abs(keras.ops.cast(y_true, y_pred.dtype) - y_pred), -1)
        if self.per_row:
            return errors
        if sample_weight is None:
            return keras.ops.mean(errors)
        return numerics.weighted_mean(errors, sample_weight)

    def get_config(self):
        return {**super().get_config(), "per_row": self.per_row}


TRUE = np.array([[0, 1], [1, 1], [0, 0]], dtype="int32")
PRED = np.array([[0.5, 0.5], [1.0, 0.0], [0.25, 0.0]], dtype="float32")
ERRORS = np.abs(TRUE - PRED).sum(-1)  # [1.0, 1.0, 0.25]


def _value(tensor):
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32")))


def test_value_is_the_batch_statistic_and_integer_targets_stay_integer():
    loss = PooledAbsoluteError()
    assert _value(loss(TRUE, PRED)) == pytest.approx(ERRORS.mean())
    pred_dtype, true_dtype, weights = loss.seen[-1]
    assert pred_dtype == "float32" and "int" in str(true_dtype) and weights is None


def test_sample_weight_acts_inside_the_statistic_as_frequency_weights():
    weights = np.array([2.0, 0.0, 1.0], dtype="float32")
    value = _value(PooledAbsoluteError()(TRUE, PRED, sample_weight=weights))
    repeated = np.concatenate([ERRORS[[0, 0]], ERRORS[[2]]]).mean()
    assert value == pytest.approx(repeated)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_loss_computes_in_float32_and_returns_its_dtype(dtype):
    loss = PooledAbsoluteError(dtype=dtype)
    value = loss(TRUE, PRED.astype("float32"))
    assert keras.backend.standardize_dtype(value.dtype) == dtype
    assert loss.seen[-1][0] == "float32"
    assert _value(value) == pytest.approx(ERRORS.mean(), rel=1e-2)


def test_reduction_has_no_effect_on_a_batch_statistic():
    value = _value(PooledAbsoluteError(reduction="sum")(TRUE, PRED))
    assert value == pytest.approx(ERRORS.mean())


def test_per_sample_configuration_is_reduced_and_weighted_by_keras():
    weights = np.array([2.0, 0.0, 1.0], dtype="float32")
    loss = PooledAbsoluteError(per_row=True, reduction="sum")
    assert _value(loss(TRUE, PRED, sample_weight=weights)) == pytest.approx(2.25)


def test_dict_structures_are_converted_leaf_by_leaf():
    class DictLoss(BatchLoss):
        def batch_value(self, y_true, y_pred, sample_weight):
            return keras.ops.sum(y_pred["a"]) + keras.ops.cast(
                keras.ops.sum(y_true["ids"]), "float32"
            )

    value = DictLoss(name="dict_loss")(
        {"ids": np.array([1, 2], dtype="int32")}, {"a": np.array([0.5, 0.25])}
    )
    assert _value(value) == pytest.approx(3.75)


def test_compiled_fit_and_save_reload(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=PooledAbsoluteError(), jit_compile=BACKEND != "torch")
    history = model.fit(PRED, TRUE.astype("float32"), batch_size=3, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded.loss) is PooledAbsoluteError
    assert reloaded.evaluate(PRED, TRUE.astype("float32"), verbose=0) == pytest.approx(
        model.evaluate(PRED, TRUE.astype("float32"), verbose=0), rel=1e-6
    )


def test_a_python_list_mixing_ints_and_floats_is_one_tensor():
    value = PooledAbsoluteError()([[0, 1], [1, 1.0], [0, 0]], PRED.tolist())
    assert _value(value) == pytest.approx(ERRORS.mean())
