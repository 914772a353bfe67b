import math
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.classification.decoupled_information_loss import (
    DecoupledInformationLoss,
)
from dl_techniques.losses.core.gradients import input_gradient

# jax computes in float32 unless jax_enable_x64 is set, which would change every
# other test of the process; there the float32 gradient gets a looser tolerance.
GRADIENT_DTYPE = "float32" if keras.backend.backend() == "jax" else "float64"
GRADIENT_RTOL = 2e-3 if GRADIENT_DTYPE == "float32" else 1e-6


def log_softmax(logits):
    logits = np.asarray(logits, "float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def entropy(p):
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def decoupled_reference(
    y_true, logits, uncertainty_weight=0.2, diversity_weight=0.01, label_smoothing=0.0, weights=None
):
    """Per-sample values ``CE_i - u H(p_i) - d H(p_bar)``, p_bar weighted by ``weights``."""
    y_true = np.asarray(y_true, "float64")
    log_p = log_softmax(logits)
    p = np.exp(log_p)
    targets = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    weights = np.ones(len(p)) if weights is None else np.asarray(weights, "float64")
    mean_prediction = (weights[:, None] * p).sum(axis=0) / weights.sum()
    cross_entropy = -(targets * log_p).sum(axis=-1)
    return (
        cross_entropy
        - uncertainty_weight * entropy(p)
        - diversity_weight * entropy(mean_prediction)
    )


def weighted_mean(values, weights):
    return np.sum(weights * values) / np.sum(weights)


def one_hot(rng, batch, num_classes):
    return np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, size=batch)]


def as_numpy(value):
    return keras.ops.convert_to_numpy(value).astype("float64")


# p_0 = (0.75, 0.25) from logits (log 3, 0), label 0; p_1 = (0.5, 0.5), label 1.
TWO_SAMPLE_TRUE = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
TWO_SAMPLE_LOGITS = np.array([[math.log(3.0), 0.0], [0.0, 0.0]], "float32")


def test_hand_checked_per_sample_values():
    # CE = (-log 0.75, log 2) = (0.2876821, 0.6931472)
    # H(p_i) = (0.5623351, 0.6931472); p_bar = (0.625, 0.375), H(p_bar) = 0.6615632
    # with u = 0.2, d = 0.5: 0.2876821 - 0.1124670 - 0.3307816 = -0.1555666
    #                        0.6931472 - 0.1386294 - 0.3307816 =  0.2237361
    loss = DecoupledInformationLoss(uncertainty_weight=0.2, diversity_weight=0.5, reduction=None)
    np.testing.assert_allclose(
        as_numpy(loss(TWO_SAMPLE_TRUE, TWO_SAMPLE_LOGITS)), [-0.1555666, 0.2237361], rtol=1e-6
    )


def test_hand_checked_frequency_weights():
    # weights (3, 1): p_bar = (3 * 0.75 + 0.5, 3 * 0.25 + 0.5) / 4 = (0.6875, 0.3125),
    # H(p_bar) = 0.6210864; values -0.1353281, 0.2439746; weighted mean
    # (3 * -0.1353281 + 0.2439746) / 4 = -0.0405024
    loss = DecoupledInformationLoss(uncertainty_weight=0.2, diversity_weight=0.5)
    value = loss(TWO_SAMPLE_TRUE, TWO_SAMPLE_LOGITS, sample_weight=np.array([3.0, 1.0]))
    np.testing.assert_allclose(as_numpy(value), -0.0405025, rtol=1e-5)


def test_uniform_predictions_give_the_weights_times_log_k():
    # every p_i uniform over 3 classes: CE = H(p_i) = H(p_bar) = log 3
    loss = DecoupledInformationLoss(uncertainty_weight=0.5, diversity_weight=0.25, reduction=None)
    value = loss(np.eye(3, dtype="float32"), np.full((3, 3), 2.0, "float32"))
    np.testing.assert_allclose(as_numpy(value), [0.25 * math.log(3.0)] * 3, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"uncertainty_weight": 0.0, "diversity_weight": 1.0, "label_smoothing": 0.2},
        {"uncertainty_weight": 0.7, "diversity_weight": 0.0, "label_smoothing": 0.05},
    ],
)
def test_matches_numpy_reference_on_random_logits(kwargs):
    rng = np.random.default_rng(len(kwargs) + 1)
    y_true = one_hot(rng, 9, 6)
    logits = rng.normal(scale=2.0, size=(9, 6)).astype("float32")
    value = DecoupledInformationLoss(**kwargs, reduction=None)(y_true, logits)
    np.testing.assert_allclose(
        as_numpy(value), decoupled_reference(y_true, logits, **kwargs), rtol=1e-5, atol=1e-6
    )


def test_probabilities_give_the_value_of_their_logits():
    rng = np.random.default_rng(4)
    y_true = one_hot(rng, 5, 3)
    logits = rng.normal(size=(5, 3))
    probabilities = np.exp(log_softmax(logits)).astype("float32")
    loss = DecoupledInformationLoss(diversity_weight=0.3, from_logits=False, reduction=None)
    np.testing.assert_allclose(
        as_numpy(loss(y_true, probabilities)),
        decoupled_reference(y_true, logits, diversity_weight=0.3),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        ("sum_over_batch_size", lambda values, w: weighted_mean(values, w)),
        ("mean_with_sample_weight", lambda values, w: weighted_mean(values, w)),
        ("sum", lambda values, w: np.sum(w * values)),
        (None, lambda values, w: w * values),
    ],
)
def test_sample_weight_weights_the_batch_mean_and_every_reduction(reduction, expected):
    rng = np.random.default_rng(21)
    y_true = one_hot(rng, 7, 4)
    logits = rng.normal(scale=1.5, size=(7, 4)).astype("float32")
    weights = rng.uniform(0.0, 3.0, size=7).astype("float32")
    loss = DecoupledInformationLoss(diversity_weight=0.8, reduction=reduction)
    values = decoupled_reference(y_true, logits, diversity_weight=0.8, weights=weights)
    np.testing.assert_allclose(
        as_numpy(loss(y_true, logits, sample_weight=weights)),
        expected(values, weights),
        rtol=1e-5,
        atol=1e-6,
    )


def test_integer_weight_repeats_a_sample_and_zero_weight_drops_it():
    rng = np.random.default_rng(8)
    y_true = one_hot(rng, 4, 3)
    logits = rng.normal(size=(4, 3)).astype("float32")
    loss = DecoupledInformationLoss(uncertainty_weight=0.3, diversity_weight=0.6)
    weighted = loss(y_true, logits, sample_weight=np.array([2.0, 0.0, 1.0, 1.0]))
    rows = [0, 0, 2, 3]
    np.testing.assert_allclose(
        as_numpy(weighted), as_numpy(loss(y_true[rows], logits[rows])), rtol=1e-5
    )


@pytest.mark.parametrize("weight_shape", [(), (5, 1)])
def test_scalar_and_column_weights_are_accepted(weight_shape):
    rng = np.random.default_rng(6)
    y_true = one_hot(rng, 5, 3)
    logits = rng.normal(size=(5, 3)).astype("float32")
    loss = DecoupledInformationLoss(diversity_weight=0.5)
    weights = np.full(weight_shape, 2.0, "float32")
    # a constant frequency weight changes neither p_bar nor the weighted mean
    np.testing.assert_allclose(
        as_numpy(loss(y_true, logits, sample_weight=weights)),
        decoupled_reference(y_true, logits, diversity_weight=0.5).mean(),
        rtol=1e-5,
    )


def test_sample_weight_is_honoured_by_compiled_evaluate():
    rng = np.random.default_rng(13)
    y_true = one_hot(rng, 8, 4)
    logits = rng.normal(size=(8, 4)).astype("float32")
    weights = rng.uniform(0.5, 2.0, size=8).astype("float32")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    model.compile(loss=DecoupledInformationLoss(diversity_weight=0.7))
    value = model.evaluate(logits, y_true, sample_weight=weights, batch_size=8, verbose=0)
    expected = weighted_mean(
        decoupled_reference(y_true, logits, diversity_weight=0.7, weights=weights), weights
    )
    np.testing.assert_allclose(value, expected, rtol=1e-5)


@pytest.mark.parametrize("weights", [None, np.array([0.5, 2.0, 1.0, 0.0])])
def test_gradient_matches_finite_differences_of_the_reference(weights):
    rng = np.random.default_rng(19)
    y_true = one_hot(rng, 4, 3).astype("float64")
    logits = rng.normal(size=(4, 3))
    kwargs = {"uncertainty_weight": 0.4, "diversity_weight": 0.9, "label_smoothing": 0.1}
    loss = DecoupledInformationLoss(**kwargs, dtype=GRADIENT_DTYPE)
    sample_weight = None
    if weights is not None:
        sample_weight = keras.ops.convert_to_tensor(weights, GRADIENT_DTYPE)
    gradient = as_numpy(
        input_gradient(
            lambda x: loss(
                keras.ops.convert_to_tensor(y_true, GRADIENT_DTYPE), x, sample_weight=sample_weight
            ),
            keras.ops.convert_to_tensor(logits, GRADIENT_DTYPE),
        )
    )
    reference_weights = np.ones(4) if weights is None else weights
    expected = central_differences(
        lambda z: weighted_mean(
            decoupled_reference(y_true, z, **kwargs, weights=reference_weights), reference_weights
        ),
        logits,
    )
    np.testing.assert_allclose(gradient, expected, rtol=GRADIENT_RTOL, atol=1e-7)


def central_differences(fn, x, step=1e-6):
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = x.copy()
        shifted[index] += step
        upper = fn(shifted)
        shifted[index] -= 2 * step
        gradient[index] = (upper - fn(shifted)) / (2 * step)
    return gradient


@settings(max_examples=25, deadline=None)
@given(
    logits=hnp.arrays("float32", (4, 3), elements=st.floats(-20.0, 20.0, width=32)),
    labels=hnp.arrays("int64", (4,), elements=st.integers(0, 2)),
)
def test_every_sample_carries_the_same_bounded_diversity_term(logits, labels):
    y_true = np.eye(3, dtype="float32")[labels]
    value = as_numpy(
        DecoupledInformationLoss(uncertainty_weight=0.3, diversity_weight=0.5, reduction=None)(
            y_true, logits
        )
    )
    log_p = log_softmax(logits)
    shared = value - (-(y_true * log_p).sum(axis=-1) - 0.3 * entropy(np.exp(log_p)))
    np.testing.assert_allclose(shared, shared[0], atol=1e-4)
    assert -0.5 * math.log(3.0) - 1e-4 <= shared[0] <= 1e-4


@settings(max_examples=25, deadline=None)
@given(
    logits=hnp.arrays("float32", (3, 4), elements=st.floats(-1e4, 1e4, width=32)),
    labels=hnp.arrays("int64", (3,), elements=st.integers(0, 3)),
)
def test_value_and_gradient_are_finite_for_large_logits(logits, labels):
    y_true = keras.ops.convert_to_tensor(np.eye(4, dtype="float32")[labels])
    loss = DecoupledInformationLoss(uncertainty_weight=0.5, diversity_weight=0.5)
    weights = keras.ops.convert_to_tensor([1.0, 0.0, 2.0])
    for sample_weight in (None, weights):
        value = as_numpy(loss(y_true, logits, sample_weight=sample_weight))
        gradient = as_numpy(
            input_gradient(
                lambda x, w=sample_weight: loss(y_true, x, sample_weight=w),
                keras.ops.convert_to_tensor(logits),
            )
        )
        assert np.isfinite(value)
        assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"uncertainty_weight": -0.1}, "uncertainty_weight"),
        ({"diversity_weight": -1.0}, "diversity_weight"),
        ({"diversity_weight": float("nan")}, "diversity_weight"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"from_logits": 1}, "from_logits"),
    ],
)
def test_invalid_hyperparameters_are_a_value_error(kwargs, argument):
    with pytest.raises(ValueError, match=rf"DecoupledInformationLoss.*`{argument}`"):
        DecoupledInformationLoss(**kwargs)


@pytest.mark.parametrize(
    ("true_shape", "pred_shape"), [((2, 3), (2, 4)), ((2,), (2, 4)), ((2, 4, 1), (2, 4, 1))]
)
def test_mismatched_shapes_are_a_value_error(true_shape, pred_shape):
    with pytest.raises(
        ValueError, match=r"DecoupledInformationLoss.*" + re.escape(str(pred_shape))
    ):
        DecoupledInformationLoss()(np.zeros(true_shape), np.zeros(pred_shape))


@pytest.mark.parametrize("weight_shape", [(3,), (5, 2)])
def test_sample_weight_of_the_wrong_shape_is_a_value_error(weight_shape):
    with pytest.raises(
        ValueError,
        match=r"DecoupledInformationLoss.*sample_weight.*" + re.escape(str(weight_shape)),
    ):
        DecoupledInformationLoss()(np.eye(5)[:, :4], np.zeros((5, 4)), np.ones(weight_shape))
