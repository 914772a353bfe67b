import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    assert_gradient_matches_central_differences,
    hypothesis_examples,
)
from dl_techniques.losses.generative.stable_max_cross_entropy import StableMaxCrossEntropy


def stablemax_token_mean(labels, logits, ignore_index=-100):
    """Mean over non-ignored tokens of ``-log(s(x_y) / sum_v s(x_v))``, in float64."""
    labels = np.asarray(labels).reshape(-1)
    logits = np.asarray(logits, dtype="float64").reshape(labels.size, -1)
    s = np.where(logits >= 0, logits + 1.0, 1.0 / (1.0 - np.minimum(logits, 0.0)))
    probabilities = s / s.sum(axis=1, keepdims=True)
    kept = labels != ignore_index
    if not kept.any():
        return 0.0
    return float(np.mean(-np.log(probabilities[kept, labels[kept]])))


def test_hand_checked_value():
    # s = (2, 1, 0.5): p_0 = 2 / 3.5, -log p_0 = log 1.75.
    value = StableMaxCrossEntropy()([0], [[1.0, 0.0, -1.0]])
    np.testing.assert_allclose(as_numpy(value), np.log(1.75), rtol=1e-6)


@pytest.mark.parametrize("token_shape", [(6,), (3, 4)])
def test_matches_numpy_token_mean_with_ignored_labels(token_shape):
    rng = np.random.default_rng(len(token_shape))
    labels = rng.integers(0, 5, size=token_shape)
    labels[rng.random(token_shape) < 0.3] = -100
    logits = rng.normal(scale=3.0, size=(*token_shape, 5)).astype("float32")
    value = StableMaxCrossEntropy()(labels, logits)
    np.testing.assert_allclose(as_numpy(value), stablemax_token_mean(labels, logits), rtol=1e-5)


def test_logits_of_magnitude_1e4_give_accurate_finite_values_and_gradients():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 8, size=(4, 3))
    logits = rng.normal(scale=1e4, size=(4, 3, 8)).astype("float32")
    loss = StableMaxCrossEntropy()
    gradient = as_numpy(
        input_gradient(lambda x: loss(labels, x), keras.ops.convert_to_tensor(logits))
    )
    np.testing.assert_allclose(
        as_numpy(loss(labels, logits)), stablemax_token_mean(labels, logits), rtol=1e-5
    )
    assert np.all(np.isfinite(gradient))


def test_large_half_precision_logits_are_computed_in_float32():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, size=(5,))
    logits = rng.uniform(-3e4, 3e4, size=(5, 6)).astype("float16")
    value = StableMaxCrossEntropy()(labels, keras.ops.convert_to_tensor(logits))
    np.testing.assert_allclose(as_numpy(value), stablemax_token_mean(labels, logits), rtol=1e-5)


def test_gradient_matches_finite_differences_including_logits_at_zero():
    labels = np.array([[1, -100, 0], [2, 2, 1]])
    logits = np.random.default_rng(4).normal(size=(2, 3, 3)).astype("float32")
    logits[1, 0] = 0.0
    loss = StableMaxCrossEntropy()
    gradient = assert_gradient_matches_central_differences(
        lambda x, dtype: loss(labels, x),
        lambda values: stablemax_token_mean(labels, values),
        logits,
        rtol=1e-4,
        atol=1e-6,
        dtype="float32",
    )
    np.testing.assert_array_equal(gradient[0, 1], 0.0)


def test_all_ignored_labels_give_zero():
    value = StableMaxCrossEntropy(ignore_index=-1)([[-1, -1]], np.ones((1, 2, 3), "float32"))
    assert float(as_numpy(value)) == 0.0


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(
    seed=st.integers(0, 2**16),
    scale=st.floats(1e-2, 1e4),
    raise_by=st.floats(0.5, 100.0),
)
def test_value_tracks_float64_and_never_rises_with_the_label_logit(seed, scale, raise_by):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=(2,))
    logits = rng.normal(scale=scale, size=(2, 4)).astype("float32")
    raised = logits.copy()
    raised[0, labels[0]] += raise_by * max(1.0, abs(float(logits[0, labels[0]])))
    loss = StableMaxCrossEntropy()
    before, after = float(as_numpy(loss(labels, logits))), float(as_numpy(loss(labels, raised)))
    np.testing.assert_allclose(before, stablemax_token_mean(labels, logits), rtol=1e-4, atol=1e-5)
    assert before >= 0.0
    assert after <= before + 1e-6


def test_mismatched_label_shape_raises():
    with pytest.raises(ValueError, match=r"StableMaxCrossEntropy.*\(3, 2\).*\(3, 4, 5\)"):
        StableMaxCrossEntropy()(np.zeros((3, 2), "int32"), np.zeros((3, 4, 5), "float32"))


def test_ids_outside_the_vocabulary_raise_on_eager_calls():
    with pytest.raises(ValueError, match=r"StableMaxCrossEntropy.*\[0, 3\)"):
        StableMaxCrossEntropy()(np.array([3, 0]), np.zeros((2, 3), "float32"))


def test_float_labels_with_a_fraction_raise_and_whole_floats_work():
    logits = np.array([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]], "float32")
    with pytest.raises(ValueError, match=r"StableMaxCrossEntropy.*y_true.*integers.*0\.5"):
        StableMaxCrossEntropy()(np.array([0.0, 0.5], "float32"), logits)
    # s = (2, 1, 0.5) -> log 1.75 for id 0; uniform row -> log 3 for id 2.
    value = StableMaxCrossEntropy()(np.array([0.0, 2.0], "float32"), logits)
    np.testing.assert_allclose(as_numpy(value), (np.log(1.75) + np.log(3.0)) / 2, rtol=1e-6)
