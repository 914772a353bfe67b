import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.classification.brier_score_loss import BrierScoreLoss
from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    gradient_dtype,
    hypothesis_examples,
    sigmoid,
    softmax,
)


def brier_reference(y_true, probs):
    """Per-sample Brier score in float64: (y - p)^2 for one column, else sum_c."""
    y_true, probs = np.asarray(y_true, "float64"), np.asarray(probs, "float64")
    if probs.ndim == 1:
        return (y_true.reshape(-1) - probs) ** 2
    return ((y_true.reshape(probs.shape) - probs) ** 2).sum(axis=-1)


def sklearn_style_brier(labels, probs, sample_weight=None):
    """sklearn.metrics.brier_score_loss, written from its documented definition.

    Multi-class: weighted mean over samples of sum_c (onehot(label)_c - p_c)^2;
    binary (1-D probabilities of the positive class): weighted mean of (y - p)^2.
    """
    probs = np.asarray(probs, "float64")
    if probs.ndim == 1:
        return np.average((np.asarray(labels, "float64") - probs) ** 2, weights=sample_weight)
    one_hot = np.eye(probs.shape[1])[labels]
    return np.average(((one_hot - probs) ** 2).sum(axis=1), weights=sample_weight)


def test_hand_checked_multiclass_value():
    # (0 - 0.2)^2 + (1 - 0.8)^2 = 0.04 + 0.04
    np.testing.assert_allclose(as_numpy(BrierScoreLoss()([[0.0, 1.0]], [[0.2, 0.8]])), 0.08)


def test_hand_checked_binary_values_per_sample():
    # (1 - 0.9)^2 = 0.01, (0 - 0.3)^2 = 0.09
    per_sample = BrierScoreLoss(reduction=None)([1.0, 0.0], [0.9, 0.3])
    np.testing.assert_allclose(as_numpy(per_sample), [0.01, 0.09], rtol=1e-6)


def test_confidently_wrong_multiclass_reaches_two():
    # (1 - 0)^2 + (0 - 1)^2 + 0 = 2
    value = BrierScoreLoss()([[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    np.testing.assert_allclose(as_numpy(value), 2.0)


def test_binary_column_and_vector_shapes_agree():
    y_true = np.array([1.0, 0.0, 1.0], "float32")
    probs = np.array([0.7, 0.2, 0.4], "float32")
    expected = [0.09, 0.04, 0.36]
    loss = BrierScoreLoss(reduction=None)
    for true_form, pred_form in [
        (y_true, probs),
        (y_true[:, None], probs[:, None]),
        (y_true, probs[:, None]),
        (y_true[:, None], probs),
    ]:
        np.testing.assert_allclose(as_numpy(loss(true_form, pred_form)), expected, rtol=1e-6)


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_batch_mean_matches_sklearn_definition_with_weights(classes):
    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, size=12)
    probs = softmax(rng.normal(size=(12, classes))).astype("float32")
    weights = rng.uniform(0.1, 3.0, size=12).astype("float32")
    one_hot = np.eye(classes, dtype="float32")[labels]
    loss = BrierScoreLoss(reduction="mean_with_sample_weight")
    np.testing.assert_allclose(
        as_numpy(loss(one_hot, probs, sample_weight=weights)),
        sklearn_style_brier(labels, probs, weights),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        as_numpy(BrierScoreLoss()(one_hot, probs)), sklearn_style_brier(labels, probs), rtol=1e-5
    )


def test_binary_matches_sklearn_definition():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=20)
    probs = rng.uniform(size=20).astype("float32")
    np.testing.assert_allclose(
        as_numpy(BrierScoreLoss()(labels.astype("float32"), probs)),
        sklearn_style_brier(labels, probs),
        rtol=1e-5,
    )


def test_random_per_sample_values_and_keras_weighting():
    rng = np.random.default_rng(11)
    y_true = np.eye(4, dtype="float32")[rng.integers(0, 4, size=9)]
    probs = softmax(rng.normal(size=(9, 4))).astype("float32")
    weights = rng.uniform(0.0, 2.0, size=9).astype("float32")
    reference = brier_reference(y_true, probs)
    np.testing.assert_allclose(
        as_numpy(BrierScoreLoss(reduction=None)(y_true, probs)), reference, rtol=1e-5
    )
    np.testing.assert_allclose(
        as_numpy(BrierScoreLoss()(y_true, probs, sample_weight=weights)),
        (weights * reference).sum() / 9,
        rtol=1e-5,
    )


def test_from_logits_uses_sigmoid_for_one_column_and_softmax_for_several():
    rng = np.random.default_rng(5)
    binary_logits = rng.normal(scale=2.0, size=(6, 1)).astype("float32")
    binary_true = rng.integers(0, 2, size=(6, 1)).astype("float32")
    np.testing.assert_allclose(
        as_numpy(BrierScoreLoss(from_logits=True, reduction=None)(binary_true, binary_logits)),
        brier_reference(binary_true, sigmoid(binary_logits.astype("float64"))),
        rtol=1e-5,
    )
    logits = rng.normal(scale=2.0, size=(6, 3)).astype("float32")
    y_true = np.eye(3, dtype="float32")[rng.integers(0, 3, size=6)]
    np.testing.assert_allclose(
        as_numpy(BrierScoreLoss(from_logits=True, reduction=None)(y_true, logits)),
        brier_reference(y_true, softmax(logits.astype("float64"))),
        rtol=1e-5,
    )


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("classes", [1, 3])
def test_gradient_matches_central_differences(from_logits, classes):
    dtype = gradient_dtype()
    rng = np.random.default_rng(7 + classes)
    if classes == 1:
        y_true = rng.integers(0, 2, size=(5, 1)).astype("float64")
        to_probs = sigmoid
    else:
        y_true = np.eye(classes)[rng.integers(0, classes, size=5)]
        to_probs = softmax
    if from_logits:
        y_pred = rng.normal(size=(5, classes))
    else:
        y_pred = rng.uniform(0.05, 0.95, size=(5, classes))

    def reference(values):
        probs = to_probs(values) if from_logits else values
        return brier_reference(y_true, probs).sum()

    loss = BrierScoreLoss(from_logits=from_logits, reduction="sum", dtype=dtype)
    targets = keras.ops.convert_to_tensor(y_true, dtype=dtype)
    gradient = input_gradient(
        lambda values: loss(targets, values), keras.ops.convert_to_tensor(y_pred, dtype=dtype)
    )
    tolerance = {"rtol": 1e-6, "atol": 1e-8} if dtype == "float64" else {"rtol": 1e-3, "atol": 1e-4}
    np.testing.assert_allclose(
        as_numpy(gradient), central_differences(reference, y_pred), **tolerance
    )


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    logits=hnp.arrays("float32", (6, 4), elements=st.floats(-30.0, 30.0, width=32)),
    labels=hnp.arrays("int64", (6,), elements=st.integers(0, 3)),
)
def test_multiclass_brier_stays_within_zero_and_two(logits, labels):
    y_true = np.eye(4, dtype="float32")[labels]
    for loss, y_pred in [
        (BrierScoreLoss(from_logits=True, reduction=None), logits),
        (BrierScoreLoss(reduction=None), softmax(logits.astype("float64")).astype("float32")),
    ]:
        value = as_numpy(loss(y_true, y_pred))
        assert np.all(np.isfinite(value))
        assert np.all((value >= 0.0) & (value <= 2.0 + 1e-6))


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    probs=hnp.arrays("float32", (8,), elements=st.floats(0.0, 1.0, width=32)),
    labels=hnp.arrays("int64", (8,), elements=st.integers(0, 1)),
)
def test_binary_brier_stays_within_zero_and_one(probs, labels):
    value = as_numpy(BrierScoreLoss(reduction=None)(labels.astype("float32"), probs))
    assert np.all((value >= 0.0) & (value <= 1.0))
    np.testing.assert_allclose(value, brier_reference(labels, probs), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("from_logits", ["yes", 1, None])
def test_non_bool_from_logits_is_a_value_error(from_logits):
    with pytest.raises(ValueError, match=r"BrierScoreLoss.*from_logits"):
        BrierScoreLoss(from_logits=from_logits)


def test_mismatched_shapes_are_a_value_error_naming_both():
    with pytest.raises(ValueError, match=r"BrierScoreLoss.*\(3, 4\).*\(3, 3\)"):
        BrierScoreLoss()(np.zeros((3, 4)), np.full((3, 3), 0.3))


def test_rank_three_inputs_are_a_value_error():
    with pytest.raises(ValueError, match=r"BrierScoreLoss.*\(2, 3, 4\)"):
        BrierScoreLoss()(np.zeros((2, 3, 4)), np.full((2, 3, 4), 0.25))


@pytest.mark.parametrize("bad_probability", [-0.1, 1.2])
def test_probabilities_outside_unit_interval_are_a_value_error(bad_probability):
    with pytest.raises(ValueError, match=r"BrierScoreLoss.*y_pred.*from_logits"):
        BrierScoreLoss()([[1.0], [0.0]], [[0.5], [bad_probability]])


def test_logits_outside_unit_interval_are_accepted_with_from_logits():
    # sigmoid(0) = 0.5, sigmoid(ln 3) = 0.75: (1 - 0.5)^2 = 0.25, (0 - 0.75)^2 = 0.5625
    value = BrierScoreLoss(from_logits=True, reduction=None)([1.0, 0.0], [0.0, np.log(3.0)])
    np.testing.assert_allclose(as_numpy(value), [0.25, 0.5625], rtol=1e-6)


def test_labels_outside_unit_interval_are_a_value_error():
    with pytest.raises(ValueError, match=r"BrierScoreLoss.*y_true"):
        BrierScoreLoss()([[2.0], [0.0]], [[0.5], [0.5]])
