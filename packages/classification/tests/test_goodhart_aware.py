import math
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.classification.goodhart_aware_loss import GoodhartAwareLoss
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


def mutual_information(logits, weights):
    """Plug-in ``H(p_bar) - mean_i H(p_i)`` with frequency weights, in float64."""
    p = np.exp(log_softmax(logits))
    mean_prediction = (weights[:, None] * p).sum(axis=0) / weights.sum()
    return entropy(mean_prediction) - np.sum(weights * entropy(p)) / weights.sum()


def goodhart_reference(
    y_true, logits, entropy_weight=0.1, mi_weight=0.01, label_smoothing=0.0, weights=None
):
    """Per-sample values ``CE_i - e H(p_i) + m I``, I over the weighted batch."""
    y_true = np.asarray(y_true, "float64")
    log_p = log_softmax(logits)
    targets = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    weights = np.ones(len(log_p)) if weights is None else np.asarray(weights, "float64")
    cross_entropy = -(targets * log_p).sum(axis=-1)
    return (
        cross_entropy
        - entropy_weight * entropy(np.exp(log_p))
        + mi_weight * mutual_information(logits, weights)
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
    # CE = (0.2876821, 0.6931472); H(p_i) = (0.5623351, 0.6931472)
    # p_bar = (0.625, 0.375): H(p_bar) = 0.6615632, I = 0.6615632 - 0.6277411 = 0.0338221
    # with e = 0.1, m = 1: 0.2876821 - 0.0562335 + 0.0338221 = 0.2652706
    #                      0.6931472 - 0.0693147 + 0.0338221 = 0.6576545
    loss = GoodhartAwareLoss(entropy_weight=0.1, mi_weight=1.0, reduction=None)
    np.testing.assert_allclose(
        as_numpy(loss(TWO_SAMPLE_TRUE, TWO_SAMPLE_LOGITS)), [0.2652706, 0.6576545], rtol=1e-6
    )


def test_hand_checked_frequency_weights():
    # weights (3, 1): p_bar = (0.6875, 0.3125), H(p_bar) = 0.6210864,
    # weighted mean entropy (3 * 0.5623351 + 0.6931472) / 4 = 0.5950381, I = 0.0260482;
    # values 0.2876821 - 0.0562335 + 0.0260482 = 0.2574968 and
    # 0.6931472 - 0.0693147 + 0.0260482 = 0.6498807; (3 * 0.2574968 + 0.6498807) / 4 = 0.3555928
    loss = GoodhartAwareLoss(entropy_weight=0.1, mi_weight=1.0)
    value = loss(TWO_SAMPLE_TRUE, TWO_SAMPLE_LOGITS, sample_weight=np.array([3.0, 1.0]))
    np.testing.assert_allclose(as_numpy(value), 0.3555928, rtol=1e-5)


def test_certain_predictions_of_different_classes_cost_log_two_of_information():
    # logit gap 100: CE and H(p_i) vanish, p_bar = (0.5, 0.5), I = log 2
    loss = GoodhartAwareLoss(entropy_weight=0.0, mi_weight=1.0, reduction=None)
    value = loss(TWO_SAMPLE_TRUE, np.array([[100.0, 0.0], [0.0, 100.0]], "float32"))
    np.testing.assert_allclose(as_numpy(value), [math.log(2.0)] * 2, rtol=1e-6)


def test_identical_predictions_carry_no_information():
    # every sample predicts the same p: p_bar = p, so I = 0 and the loss is CE - e H(p)
    logits = np.tile(np.array([[1.0, -0.5, 0.25]], "float32"), (4, 1))
    y_true = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    value = GoodhartAwareLoss(entropy_weight=0.2, mi_weight=5.0, reduction=None)(y_true, logits)
    np.testing.assert_allclose(
        as_numpy(value), goodhart_reference(y_true, logits, 0.2, 0.0), rtol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"entropy_weight": 0.0, "mi_weight": 1.0, "label_smoothing": 0.2},
        {"entropy_weight": 0.6, "mi_weight": 0.3, "label_smoothing": 0.05},
    ],
)
def test_matches_numpy_reference_on_random_logits(kwargs):
    rng = np.random.default_rng(len(kwargs) + 10)
    y_true = one_hot(rng, 9, 6)
    logits = rng.normal(scale=2.0, size=(9, 6)).astype("float32")
    value = GoodhartAwareLoss(**kwargs, reduction=None)(y_true, logits)
    np.testing.assert_allclose(
        as_numpy(value), goodhart_reference(y_true, logits, **kwargs), rtol=1e-5, atol=1e-6
    )


def test_probabilities_give_the_value_of_their_logits():
    rng = np.random.default_rng(14)
    y_true = one_hot(rng, 5, 3)
    logits = rng.normal(size=(5, 3))
    probabilities = np.exp(log_softmax(logits)).astype("float32")
    loss = GoodhartAwareLoss(mi_weight=0.4, from_logits=False, reduction=None)
    np.testing.assert_allclose(
        as_numpy(loss(y_true, probabilities)),
        goodhart_reference(y_true, logits, mi_weight=0.4),
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
def test_sample_weight_weights_the_batch_means_and_every_reduction(reduction, expected):
    rng = np.random.default_rng(22)
    y_true = one_hot(rng, 7, 4)
    logits = rng.normal(scale=1.5, size=(7, 4)).astype("float32")
    weights = rng.uniform(0.0, 3.0, size=7).astype("float32")
    loss = GoodhartAwareLoss(mi_weight=0.8, reduction=reduction)
    values = goodhart_reference(y_true, logits, mi_weight=0.8, weights=weights)
    np.testing.assert_allclose(
        as_numpy(loss(y_true, logits, sample_weight=weights)),
        expected(values, weights),
        rtol=1e-5,
        atol=1e-6,
    )


def test_integer_weight_repeats_a_sample_and_zero_weight_drops_it():
    rng = np.random.default_rng(18)
    y_true = one_hot(rng, 4, 3)
    logits = rng.normal(size=(4, 3)).astype("float32")
    loss = GoodhartAwareLoss(entropy_weight=0.3, mi_weight=0.6)
    weighted = loss(y_true, logits, sample_weight=np.array([0.0, 2.0, 1.0, 1.0]))
    rows = [1, 1, 2, 3]
    np.testing.assert_allclose(
        as_numpy(weighted), as_numpy(loss(y_true[rows], logits[rows])), rtol=1e-5
    )


def test_sample_weight_is_honoured_by_compiled_evaluate():
    rng = np.random.default_rng(23)
    y_true = one_hot(rng, 8, 4)
    logits = rng.normal(size=(8, 4)).astype("float32")
    weights = rng.uniform(0.5, 2.0, size=8).astype("float32")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    model.compile(loss=GoodhartAwareLoss(mi_weight=0.7))
    value = model.evaluate(logits, y_true, sample_weight=weights, batch_size=8, verbose=0)
    expected = weighted_mean(
        goodhart_reference(y_true, logits, mi_weight=0.7, weights=weights), weights
    )
    np.testing.assert_allclose(value, expected, rtol=1e-5)


@pytest.mark.parametrize("weights", [None, np.array([0.5, 2.0, 0.0, 1.0])])
def test_gradient_matches_finite_differences_of_the_reference(weights):
    rng = np.random.default_rng(29)
    y_true = one_hot(rng, 4, 3).astype("float64")
    logits = rng.normal(size=(4, 3))
    kwargs = {"entropy_weight": 0.3, "mi_weight": 0.9, "label_smoothing": 0.1}
    loss = GoodhartAwareLoss(**kwargs, dtype=GRADIENT_DTYPE)
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
            goodhart_reference(y_true, z, **kwargs, weights=reference_weights), reference_weights
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
def test_information_term_is_shared_and_between_zero_and_log_k(logits, labels):
    y_true = np.eye(3, dtype="float32")[labels]
    value = as_numpy(
        GoodhartAwareLoss(entropy_weight=0.2, mi_weight=1.0, reduction=None)(y_true, logits)
    )
    log_p = log_softmax(logits)
    information = value - (-(y_true * log_p).sum(axis=-1) - 0.2 * entropy(np.exp(log_p)))
    np.testing.assert_allclose(information, information[0], atol=1e-4)
    assert -1e-4 <= information[0] <= math.log(3.0) + 1e-4


@settings(max_examples=25, deadline=None)
@given(
    logits=hnp.arrays("float32", (3, 4), elements=st.floats(-1e4, 1e4, width=32)),
    labels=hnp.arrays("int64", (3,), elements=st.integers(0, 3)),
)
def test_value_and_gradient_are_finite_for_large_logits(logits, labels):
    y_true = keras.ops.convert_to_tensor(np.eye(4, dtype="float32")[labels])
    loss = GoodhartAwareLoss(entropy_weight=0.5, mi_weight=0.5)
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
        ({"entropy_weight": -0.1}, "entropy_weight"),
        ({"mi_weight": -1.0}, "mi_weight"),
        ({"mi_weight": float("inf")}, "mi_weight"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"from_logits": None}, "from_logits"),
    ],
)
def test_invalid_hyperparameters_are_a_value_error(kwargs, argument):
    with pytest.raises(ValueError, match=rf"GoodhartAwareLoss.*`{argument}`"):
        GoodhartAwareLoss(**kwargs)


@pytest.mark.parametrize(
    ("true_shape", "pred_shape"), [((2, 3), (2, 4)), ((2,), (2, 4)), ((2, 4, 1), (2, 4, 1))]
)
def test_mismatched_shapes_are_a_value_error(true_shape, pred_shape):
    with pytest.raises(ValueError, match=r"GoodhartAwareLoss.*" + re.escape(str(pred_shape))):
        GoodhartAwareLoss()(np.zeros(true_shape), np.zeros(pred_shape))


@pytest.mark.parametrize("weight_shape", [(3,), (5, 2)])
def test_sample_weight_of_the_wrong_shape_is_a_value_error(weight_shape):
    with pytest.raises(
        ValueError, match=r"GoodhartAwareLoss.*sample_weight.*" + re.escape(str(weight_shape))
    ):
        GoodhartAwareLoss()(np.eye(5)[:, :4], np.zeros((5, 4)), np.ones(weight_shape))
