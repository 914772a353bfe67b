import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    hypothesis_examples,
)
from dl_techniques.losses.self_supervised.clustering_loss import ClusteringLoss


def dec_target(assignments, weights, power=2.0):
    """DEC's sharpened target p_ij = (q_ij^a / f_j) / sum_k (q_ik^a / f_k), f_j = sum_i w_i q_ij."""
    frequency = np.sum(weights[:, None] * assignments, axis=0)
    unnormalised = assignments**power / frequency
    return unnormalised / unnormalised.sum(axis=1, keepdims=True)


def clustering_reference(
    assignments, weights=None, distance_weight=1.0, distribution_weight=0.5, power=2.0, target=None
):
    """Per-sample values in float64; ``target`` freezes P (computed from q when None)."""
    q = np.asarray(assignments, "float64")
    w = np.ones(len(q)) if weights is None else np.asarray(weights, "float64")
    p = dec_target(q, w, power) if target is None else target
    with np.errstate(divide="ignore", invalid="ignore"):
        divergence = np.where(p > 0, p * np.log(p / q), 0.0).sum(axis=1)
        mean_assignment = (w[:, None] * q).sum(axis=0) / w.sum()
        balance = np.where(
            mean_assignment > 0, mean_assignment * np.log(q.shape[1] * mean_assignment), 0.0
        ).sum()
    return distance_weight * divergence + distribution_weight * balance


def random_assignments(seed, batch=6, clusters=4):
    logits = np.random.default_rng(seed).normal(scale=1.5, size=(batch, clusters))
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def evaluate(loss, assignments, sample_weight=None):
    batch = np.shape(assignments)[0]
    assignments = np.asarray(assignments, "float32")
    value = loss(np.zeros((batch,)), assignments, sample_weight=sample_weight)
    return keras.ops.convert_to_numpy(value)


def test_hand_checked_two_by_two():
    # f = (1.2, 0.8); P = [[0.91429, 0.08571], [0.22857, 0.77143]];
    # KL rows 0.04946 and 0.06596, mean 0.05771; q_bar = (0.6, 0.4),
    # balance 0.6 log 1.2 + 0.4 log 0.8 = 0.02014; total 0.05771 + 0.5 * 0.02014.
    value = evaluate(ClusteringLoss(), [[0.8, 0.2], [0.4, 0.6]])
    np.testing.assert_allclose(value, 0.0677774, rtol=1e-5)


def test_balance_alone_is_log_k_when_everything_falls_in_one_cluster():
    loss = ClusteringLoss(distance_weight=0.0, distribution_weight=1.0)
    np.testing.assert_allclose(evaluate(loss, [[1.0, 0.0, 0.0]] * 4), np.log(3.0), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"distance_weight": 0.3, "distribution_weight": 2.0, "target_power": 3.0}],
)
def test_matches_numpy_reference_per_sample(kwargs):
    assignments = random_assignments(sum(len(key) for key in kwargs))
    loss = ClusteringLoss(reduction=None, **kwargs)
    reference = clustering_reference(
        assignments,
        distance_weight=kwargs.get("distance_weight", 1.0),
        distribution_weight=kwargs.get("distribution_weight", 0.5),
        power=kwargs.get("target_power", 2.0),
    )
    np.testing.assert_allclose(evaluate(loss, assignments), reference, rtol=1e-5, atol=1e-6)


def test_sample_weight_acts_as_a_frequency_weight_in_every_term():
    assignments = random_assignments(1)
    weights = np.array([0.5, 2.0, 0.0, 1.0, 3.0, 1.5])
    reference = clustering_reference(assignments, weights)
    np.testing.assert_allclose(
        evaluate(ClusteringLoss(), assignments, weights.astype("float32")),
        np.sum(weights * reference) / weights.sum(),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        evaluate(ClusteringLoss(reduction=None), assignments, weights.astype("float32")),
        weights * reference,
        rtol=1e-5,
        atol=1e-7,
    )


def test_all_zero_weights_give_zero():
    value = evaluate(ClusteringLoss(), random_assignments(2), np.zeros((6,), "float32"))
    np.testing.assert_array_equal(value, 0.0)


def test_gradient_treats_the_target_as_a_constant():
    assignments = random_assignments(4, batch=4, clusters=3)
    frozen = dec_target(assignments, np.ones(4))
    expected = central_differences(
        lambda values: clustering_reference(values, target=frozen), assignments
    )
    loss = ClusteringLoss(reduction=None)
    gradient = input_gradient(
        lambda values: loss(keras.ops.zeros((4,)), values),
        keras.ops.convert_to_tensor(assignments.astype("float32")),
    )
    np.testing.assert_allclose(as_numpy(gradient), expected, rtol=1e-3, atol=1e-4)


def test_one_hot_assignments_keep_value_and_gradient_finite():
    assignments = keras.ops.convert_to_tensor(
        np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], "float32")
    )
    loss = ClusteringLoss(reduction=None)
    values = keras.ops.convert_to_numpy(loss(keras.ops.zeros((3,)), assignments))
    gradient = input_gradient(lambda inputs: loss(keras.ops.zeros((3,)), inputs), assignments)
    # One-hot rows are their own target (KL 0); q_bar = (2/3, 1/3, 0).
    balance = 2 / 3 * np.log(2.0) + 1 / 3 * np.log(1.0)
    np.testing.assert_allclose(values, [0.5 * balance] * 3, rtol=1e-5)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(gradient)))


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(seed=st.integers(0, 2**16), power=st.floats(1.0, 4.0))
def test_non_negative_and_equivariant_to_permuting_rows_and_clusters(seed, power):
    assignments = random_assignments(seed, batch=5, clusters=4)
    rng = np.random.default_rng(seed + 1)
    rows, clusters = rng.permutation(5), rng.permutation(4)
    loss = ClusteringLoss(reduction=None, target_power=power)
    values = evaluate(loss, assignments)
    assert np.all(values >= -1e-6)
    np.testing.assert_allclose(
        evaluate(loss, assignments[rows][:, clusters]), values[rows], rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        values, clustering_reference(assignments, power=power), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"distance_weight": -1.0},
        {"distribution_weight": float("nan")},
        {"target_power": 0.0},
        {"target_power": True},
    ],
)
def test_invalid_hyperparameters_are_value_errors(kwargs):
    with pytest.raises(ValueError, match=r"ClusteringLoss.*" + next(iter(kwargs))):
        ClusteringLoss(**kwargs)


def test_assignments_not_batch_by_clusters_are_a_value_error():
    with pytest.raises(ValueError, match=r"ClusteringLoss.*y_pred.*\(2, 3, 4\)"):
        ClusteringLoss()(np.zeros((2,)), np.full((2, 3, 4), 0.25, "float32"))


def test_sample_weight_of_another_batch_size_is_a_value_error_naming_both():
    with pytest.raises(ValueError, match=r"ClusteringLoss.*sample_weight.*\(3,\).*\(4, 2\)"):
        ClusteringLoss()(np.zeros((4,)), np.full((4, 2), 0.5, "float32"), sample_weight=np.ones(3))
