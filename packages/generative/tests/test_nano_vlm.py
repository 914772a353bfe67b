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
from dl_techniques.losses.generative.nano_vlm_loss import NanoVLMLoss


def masked_token_cross_entropy(
    labels, logits, ignore_index=-100, label_smoothing=0.0, shift=True, row_weights=None
):
    """Token-mean cross-entropy with ignored ids, written from the definition in float64.

    Targets are one-hot, smoothed as ``(1 - s) one_hot + s / V``; the mean
    runs over the non-ignored targets of the whole batch, each token of row b
    counted ``w_b`` times; 0 when nothing is left.
    """
    labels = np.asarray(labels)
    logits = np.asarray(logits, dtype="float64")
    if shift:
        labels, logits = labels[:, 1:], logits[:, :-1]
    batch, length, vocab = logits.shape
    row_weights = np.ones(batch) if row_weights is None else np.asarray(row_weights, "float64")
    total, count = 0.0, 0.0
    for b in range(batch):
        for t in range(length):
            if labels[b, t] == ignore_index:
                continue
            shifted = logits[b, t] - logits[b, t].max()
            log_probs = shifted - np.log(np.exp(shifted).sum())
            target = np.full(vocab, label_smoothing / vocab)
            target[labels[b, t]] += 1.0 - label_smoothing
            total += row_weights[b] * -(target * log_probs).sum()
            count += row_weights[b]
    return total / count if count else 0.0


def random_tokens(rng, batch=3, length=6, vocab=5, ignored_fraction=0.3):
    labels = rng.integers(0, vocab, size=(batch, length))
    labels[rng.random((batch, length)) < ignored_fraction] = -100
    logits = rng.normal(scale=2.0, size=(batch, length, vocab)).astype("float32")
    return labels, logits


def test_hand_checked_value_scores_each_position_against_the_next_label():
    # Position 0 is scored against label 0 with logits (0, ln 3): p = 1/4,
    # -log p = ln 4. Position 1's target is ignored, position 2 has no next.
    logits = np.array([[[0.0, np.log(3.0)], [5.0, -5.0], [9.0, 0.0]]], dtype="float32")
    value = NanoVLMLoss()([[1, 0, -100]], logits)
    np.testing.assert_allclose(as_numpy(value), np.log(4.0), rtol=1e-6)


@pytest.mark.parametrize("shift", [True, False])
def test_matches_numpy_masked_token_mean_with_ignore_index_minus_100(shift):
    labels, logits = random_tokens(np.random.default_rng(1))
    value = NanoVLMLoss(shift=shift)(labels, logits)
    np.testing.assert_allclose(
        as_numpy(value), masked_token_cross_entropy(labels, logits, shift=shift), rtol=1e-5
    )


def test_mean_runs_over_tokens_of_the_batch_not_over_rows():
    # Row 0 has 1 scored token with ln 2, row 1 has 3 with 0 (logits +-100
    # nearly one-hot): the token mean is ln 2 / 4, a mean of row means ln 2 / 2.
    far = 100.0
    logits = np.zeros((2, 4, 2), dtype="float32")
    logits[1, :, 0] = far
    labels = np.array([[-100, -100, -100, 1], [0, 0, 0, 0]])
    value = NanoVLMLoss()(labels, logits)
    np.testing.assert_allclose(as_numpy(value), np.log(2.0) / 4, rtol=1e-5)


def test_label_smoothing_equals_keras_categorical_crossentropy():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 6, size=(2, 4))
    logits = rng.normal(size=(2, 4, 6)).astype("float32")
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    expected = keras_loss(np.eye(6, dtype="float32")[labels], logits)
    value = NanoVLMLoss(label_smoothing=0.2, shift=False)(labels, logits)
    np.testing.assert_allclose(as_numpy(value), as_numpy(expected), rtol=1e-5)


def test_label_smoothing_with_ignored_ids_matches_numpy():
    labels, logits = random_tokens(np.random.default_rng(3))
    value = NanoVLMLoss(label_smoothing=0.3)(labels, logits)
    np.testing.assert_allclose(
        as_numpy(value),
        masked_token_cross_entropy(labels, logits, label_smoothing=0.3),
        rtol=1e-5,
    )


def test_sample_weight_weights_every_token_of_its_row_inside_the_mean():
    labels, logits = random_tokens(np.random.default_rng(4))
    weights = np.array([0.5, 2.0, 0.0], dtype="float32")
    value = NanoVLMLoss()(labels, logits, sample_weight=weights)
    np.testing.assert_allclose(
        as_numpy(value), masked_token_cross_entropy(labels, logits, row_weights=weights), rtol=1e-5
    )


def test_reduction_does_not_reduce_a_second_time():
    labels, logits = random_tokens(np.random.default_rng(5))
    token_mean = as_numpy(NanoVLMLoss()(labels, logits))
    for reduction in ("sum", None):
        value = as_numpy(NanoVLMLoss(reduction=reduction)(labels, logits))
        np.testing.assert_allclose(value, token_mean, rtol=1e-6)


def test_all_ignored_batch_gives_zero_and_a_zero_gradient():
    labels = np.full((2, 4), -100)
    logits = keras.ops.convert_to_tensor(
        np.random.default_rng(6).normal(size=(2, 4, 5)).astype("float32")
    )
    loss = NanoVLMLoss()
    gradient = as_numpy(input_gradient(lambda x: loss(labels, x), logits))
    assert float(as_numpy(loss(labels, logits))) == 0.0
    np.testing.assert_array_equal(gradient, np.zeros((2, 4, 5)))


def test_gradient_matches_finite_differences_and_is_zero_at_ignored_positions():
    labels, logits = random_tokens(np.random.default_rng(7), batch=2, length=4, vocab=3)
    labels[0, 2] = -100
    loss = NanoVLMLoss(label_smoothing=0.1)
    gradient = assert_gradient_matches_central_differences(
        lambda x, dtype: loss(labels, x),
        lambda values: masked_token_cross_entropy(labels, values, label_smoothing=0.1),
        logits,
        rtol=1e-4,
        atol=1e-6,
        dtype="float32",
    )
    assert np.all(np.isfinite(gradient))
    # Position 1 predicts the ignored label at t = 2; the last has no next label.
    np.testing.assert_array_equal(gradient[0, 1], 0.0)
    np.testing.assert_array_equal(gradient[:, -1], 0.0)


def test_compiled_evaluate_matches_numpy_with_ignored_ids():
    labels, logits = random_tokens(np.random.default_rng(8), batch=4)
    model = keras.Sequential([keras.Input(logits.shape[1:]), keras.layers.Identity()])
    model.compile(loss=NanoVLMLoss(), jit_compile=keras.backend.backend() != "torch")
    value = model.evaluate(logits, labels, batch_size=4, verbose=0)
    np.testing.assert_allclose(value, masked_token_cross_entropy(labels, logits), rtol=1e-5)


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(
    seed=st.integers(0, 2**16),
    offset=st.floats(-50.0, 50.0),
)
def test_adding_a_constant_to_every_logit_of_a_position_keeps_the_loss(seed, offset):
    labels, logits = random_tokens(np.random.default_rng(seed), batch=2, length=4, vocab=4)
    offsets = np.random.default_rng(seed + 1).uniform(-1, 1, size=(2, 4, 1)) * offset
    loss = NanoVLMLoss(label_smoothing=0.1)
    original = as_numpy(loss(labels, logits))
    moved = as_numpy(loss(labels, (logits + offsets).astype("float32")))
    assert original >= 0.0
    np.testing.assert_allclose(moved, original, rtol=1e-4, atol=1e-4)


def test_logits_and_labels_length_mismatch_raises():
    with pytest.raises(ValueError, match=r"NanoVLMLoss.*\(2, 5\).*\(2, 4, 7\)"):
        NanoVLMLoss()(np.zeros((2, 5), dtype="int32"), np.zeros((2, 4, 7), dtype="float32"))


def test_labels_without_a_length_axis_raise():
    with pytest.raises(ValueError, match=r"NanoVLMLoss.*\(batch, length\).*\(2,\)"):
        NanoVLMLoss()(np.zeros((2,), dtype="int32"), np.zeros((2, 7), dtype="float32"))


def test_ids_outside_the_vocabulary_raise_on_eager_calls():
    with pytest.raises(ValueError, match=r"NanoVLMLoss.*\[0, 4\).*-100"):
        NanoVLMLoss()(np.array([[0, 4, 1]]), np.zeros((1, 3, 4), dtype="float32"))


def test_float_labels_with_a_fraction_raise_instead_of_truncating():
    # 1.5 used to be cast to id 1 and scored; it names no token.
    with pytest.raises(ValueError, match=r"NanoVLMLoss.*y_true\[:, 1:\].*integers.*\(1, 2\).*1\.5"):
        NanoVLMLoss()(np.array([[0.0, 1.5, 2.0]], "float32"), np.zeros((1, 3, 4), "float32"))


def test_integer_valued_float_labels_score_like_int_labels():
    # Logits (0, ln 3, 0, 0) at position 0 and uniform at 1: the next ids 1 and
    # 3 score -log(3/6) = ln 2 and ln 4; the mean is (ln 2 + ln 4) / 2 = 1.5 ln 2.
    logits = np.zeros((1, 3, 4), "float32")
    logits[0, 0, 1] = np.log(3.0)
    value = NanoVLMLoss()(np.array([[-100.0, 1.0, 3.0]], "float32"), logits)
    np.testing.assert_allclose(as_numpy(value), 1.5 * np.log(2.0), rtol=1e-6)


def test_label_values_are_read_on_the_first_eager_call_only(monkeypatch):
    monkeypatch.delenv("DL_LOSSES_VALIDATE", raising=False)
    logits = np.zeros((1, 3, 4), "float32")
    loss = NanoVLMLoss()
    np.testing.assert_allclose(as_numpy(loss([[0, 1, 2]], logits)), np.log(4.0), rtol=1e-6)
    # Checked once: an id outside the vocabulary now counts as ignored (no read),
    # leaving position 0 -> id 1 scored: log 4.
    np.testing.assert_allclose(as_numpy(loss([[0, 1, 9]], logits)), np.log(4.0), rtol=1e-6)
    monkeypatch.setenv("DL_LOSSES_VALIDATE", "always")
    with pytest.raises(ValueError, match=r"NanoVLMLoss.*\[0, 4\)"):
        loss([[0, 1, 9]], logits)
