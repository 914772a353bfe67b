"""ClusteringLoss is a BatchLoss: it applies every Keras reduction itself, weights inside."""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.testing.numeric import as_numpy
from dl_techniques.losses.self_supervised.clustering_loss import ClusteringLoss

ASSIGNMENTS = np.array(
    [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.6, 0.1, 0.3]], "float32"
)
WEIGHTS = np.array([2.0, 0.5, 0.0, 1.0], "float32")
IGNORED = np.zeros((4,), "float32")


def per_sample(sample_weight=None):
    return as_numpy(ClusteringLoss(reduction=None)(IGNORED, ASSIGNMENTS, sample_weight))


def test_is_a_batch_loss_without_its_own_call():
    assert isinstance(ClusteringLoss(), BatchLoss)
    assert "__call__" not in vars(ClusteringLoss)


def test_sum_reduction_is_the_weighted_sum_of_the_per_sample_values():
    weighted = per_sample(WEIGHTS)
    value = ClusteringLoss(reduction="sum")(IGNORED, ASSIGNMENTS, WEIGHTS)
    np.testing.assert_allclose(float(value), weighted.sum(), rtol=1e-6)
    unweighted = ClusteringLoss(reduction="sum")(IGNORED, ASSIGNMENTS)
    np.testing.assert_allclose(float(unweighted), per_sample().sum(), rtol=1e-6)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean", "mean_with_sample_weight"])
def test_mean_reductions_divide_by_the_sum_of_the_weights(reduction):
    value = ClusteringLoss(reduction=reduction)(IGNORED, ASSIGNMENTS, WEIGHTS)
    np.testing.assert_allclose(float(value), per_sample(WEIGHTS).sum() / WEIGHTS.sum(), rtol=1e-6)
    unweighted = ClusteringLoss(reduction=reduction)(IGNORED, ASSIGNMENTS)
    np.testing.assert_allclose(float(unweighted), per_sample().mean(), rtol=1e-6)


@pytest.mark.parametrize("shape", [(), (4, 1)])
def test_scalar_and_column_weights_equal_a_vector_of_weights(shape):
    weights = np.full((4,), 1.5, "float32") if shape == () else WEIGHTS
    given = np.asarray(1.5, "float32") if shape == () else WEIGHTS.reshape(shape)
    np.testing.assert_allclose(per_sample(given), per_sample(weights), rtol=1e-6)


def test_returns_the_loss_dtype_and_computes_half_inputs_in_float32():
    loss = ClusteringLoss(dtype="bfloat16")
    value = loss(IGNORED, keras.ops.cast(ASSIGNMENTS, "bfloat16"))
    assert keras.backend.standardize_dtype(value.dtype) == "bfloat16"
    np.testing.assert_allclose(
        float(keras.ops.cast(value, "float32")),
        float(ClusteringLoss()(IGNORED, ASSIGNMENTS)),
        rtol=2e-2,
    )
