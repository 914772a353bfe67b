"""core.per_sample_loss.PerSampleLoss: the batch mean path and Keras' weighting path agree."""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.per_sample_loss import PerSampleLoss


@keras.saving.register_keras_serializable(package="dl_techniques_tests")
class RowAbsoluteError(PerSampleLoss):
    """mean_j |y_ij - p_ij| per row i; records which path computed each call."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.paths = []

    def call(self, y_true, y_pred):
        self.paths.append("call")
        return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)

    def batch_mean(self, y_true, y_pred):
        self.paths.append("batch_mean")
        return super().batch_mean(y_true, y_pred)


TRUE = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], dtype="float32")
PRED = np.array([[0.5, 0.5], [1.0, 0.0], [0.25, 0.0]], dtype="float32")
ROWS = np.abs(TRUE - PRED).mean(-1)  # [0.5, 0.5, 0.125]


def _value(tensor):
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32")))


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean", "mean_with_sample_weight"])
def test_an_unweighted_mean_reduction_takes_the_batch_mean(reduction):
    loss = RowAbsoluteError(reduction=reduction)

    value = loss(TRUE, PRED)

    assert _value(value) == pytest.approx(ROWS.mean())
    assert loss.paths == ["batch_mean", "call"]
    assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_sample_weight_and_other_reductions_go_through_keras_weighting():
    weights = np.array([2.0, 0.0, 1.0], dtype="float32")
    loss = RowAbsoluteError()
    assert _value(loss(TRUE, PRED, sample_weight=weights)) == pytest.approx(
        (weights * ROWS).sum() / 3
    )
    assert _value(RowAbsoluteError(reduction="sum")(TRUE, PRED)) == pytest.approx(ROWS.sum())
    np.testing.assert_allclose(_value(RowAbsoluteError(reduction=None)(TRUE, PRED)), ROWS)
    assert loss.paths == ["call"]


def test_an_empty_batch_is_left_to_keras_which_returns_no_values():
    loss = RowAbsoluteError()
    empty = np.zeros((0, 2), dtype="float32")

    assert _value(loss(empty, empty)).shape == (0,)
    assert loss.paths == ["call"]


def test_a_masked_prediction_goes_through_keras_masking():
    padded = np.array([[[1.0], [2.0]], [[3.0], [0.0]]], dtype="float32")
    masked = keras.layers.Masking(mask_value=0.0)(keras.ops.convert_to_tensor(padded))
    targets = np.zeros((2, 2, 1), dtype="float32")
    loss = RowAbsoluteError()

    value = loss(targets, masked)

    # Per position |0 - p|: 1, 2, 3 and a masked 0; Keras averages the three kept.
    assert _value(value) == pytest.approx(2.0)
    assert loss.paths == ["call"]


def test_half_precision_loss_returns_its_dtype_with_the_float32_value():
    loss = RowAbsoluteError(dtype="float16")

    value = loss(TRUE, PRED)

    assert keras.backend.standardize_dtype(value.dtype) == "float16"
    assert _value(value) == pytest.approx(ROWS.mean(), rel=1e-3)
