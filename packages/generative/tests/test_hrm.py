import keras
import numpy as np
import pytest

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    assert_gradient_matches_central_differences,
)
from dl_techniques.losses.generative.hrm_loss import HRMLoss, create_hrm_loss, sequence_is_correct

IGNORE = -100


def token_mean_cross_entropy(labels, logits, lm_loss_type):
    """Mean over non-ignored tokens of ``-log p_y`` under stablemax or softmax, in float64."""
    labels = np.asarray(labels).reshape(-1)
    logits = np.asarray(logits, dtype="float64").reshape(labels.size, -1)
    if lm_loss_type == "stable_max":
        s = np.where(logits >= 0, logits + 1.0, 1.0 / (1.0 - np.minimum(logits, 0.0)))
    else:
        s = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = s / s.sum(axis=1, keepdims=True)
    kept = labels != IGNORE
    return float(np.mean(-np.log(probabilities[kept, labels[kept]]))) if kept.any() else 0.0


def numpy_sequence_is_correct(labels, logits):
    labels = np.asarray(labels)
    predicted = np.asarray(logits).argmax(axis=-1)
    return np.all((predicted == labels) | (labels == IGNORE), axis=-1).astype("float64")


def mean_bce_with_logits(logits, targets):
    logits, targets = np.asarray(logits, "float64"), np.asarray(targets, "float64")
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    per_row = -targets * np.log(probabilities) - (1 - targets) * np.log(1 - probabilities)
    return float(np.mean(per_row))


def hrm_batch(seed=0, batch=4, length=5, vocab=6):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, vocab, size=(batch, length))
    labels[rng.random((batch, length)) < 0.25] = IGNORE
    logits = rng.normal(scale=2.0, size=(batch, length, vocab)).astype("float32")
    # Row 0 is made correct on every valid token; the others are random.
    logits[0, np.arange(length), np.where(labels[0] == IGNORE, 0, labels[0])] += 20.0
    y_true = {
        "labels": labels,
        "target_q_continue": rng.uniform(size=batch).astype("float32"),
    }
    y_pred = {
        "logits": logits,
        "q_halt_logits": rng.normal(size=batch).astype("float32"),
        "q_continue_logits": rng.normal(size=batch).astype("float32"),
    }
    return y_true, y_pred


@pytest.mark.parametrize("lm_loss_type", ["stable_max", "softmax"])
def test_lm_term_is_the_token_mean_cross_entropy(lm_loss_type):
    y_true, y_pred = hrm_batch(1)
    value = HRMLoss(q_loss_weight=0.0, lm_loss_type=lm_loss_type)(y_true, y_pred)
    np.testing.assert_allclose(
        as_numpy(value),
        token_mean_cross_entropy(y_true["labels"], y_pred["logits"], lm_loss_type),
        rtol=1e-5,
    )


def test_q_terms_are_batch_mean_bces_against_correctness_and_target():
    y_true, y_pred = hrm_batch(2)
    correct = numpy_sequence_is_correct(y_true["labels"], y_pred["logits"])
    q_terms = mean_bce_with_logits(y_pred["q_halt_logits"], correct) + mean_bce_with_logits(
        y_pred["q_continue_logits"], y_true["target_q_continue"]
    )
    expected = token_mean_cross_entropy(y_true["labels"], y_pred["logits"], "stable_max")
    value = HRMLoss(q_loss_weight=0.7)(y_true, y_pred)
    np.testing.assert_allclose(as_numpy(value), expected + 0.7 * q_terms, rtol=1e-5)


def test_hand_checked_halting_target_follows_sequence_correctness():
    # Row 0 predicts its only valid label, row 1 does not. With q_halt = 2
    # on both rows: bce(2, 1) = softplus(-2), bce(2, 0) = softplus(2), and
    # q_continue = 0 against 0.5 gives log 2 per row.
    logits = np.array([[[3.0, 0.0], [0.0, 0.0]], [[3.0, 0.0], [0.0, 0.0]]], dtype="float32")
    labels = np.array([[0, IGNORE], [1, IGNORE]])
    y_true = {"labels": labels, "target_q_continue": np.array([0.5, 0.5], "float32")}
    y_pred = {
        "logits": logits,
        "q_halt_logits": np.array([2.0, 2.0], "float32"),
        "q_continue_logits": np.zeros(2, "float32"),
    }
    # softmax of (3, 0): -log p_0 = softplus(-3), -log p_1 = softplus(3).
    lm = (np.logaddexp(0.0, -3.0) + np.logaddexp(0.0, 3.0)) / 2
    q_halt = (np.logaddexp(0.0, -2.0) + np.logaddexp(0.0, 2.0)) / 2
    value = HRMLoss(q_loss_weight=0.5, lm_loss_type="softmax")(y_true, y_pred)
    np.testing.assert_allclose(as_numpy(value), lm + 0.5 * (q_halt + np.log(2.0)), rtol=1e-6)


def test_sequence_is_correct_ignores_ignored_tokens_and_counts_empty_rows_correct():
    logits = np.zeros((4, 3, 3), dtype="float32")
    logits[:, :, 2] = 1.0  # every position predicts id 2
    labels = np.array([[2, 2, 2], [2, 0, IGNORE], [2, IGNORE, IGNORE], [IGNORE, IGNORE, IGNORE]])
    valid = keras.ops.convert_to_tensor(labels != IGNORE)
    correct = sequence_is_correct(
        keras.ops.convert_to_tensor(logits),
        keras.ops.convert_to_tensor(labels, "int32"),
        valid,
        "float32",
    )
    np.testing.assert_array_equal(as_numpy(correct), [1.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(as_numpy(correct), numpy_sequence_is_correct(labels, logits))


def test_both_lm_loss_types_give_log_vocab_for_uniform_logits():
    # s(0) = 1 and exp(0) = 1: both are uniform, so both token means are log V.
    y_true, y_pred = hrm_batch(3, vocab=7)
    y_pred["logits"] = np.zeros_like(y_pred["logits"])
    for lm_loss_type in ("stable_max", "softmax"):
        value = HRMLoss(q_loss_weight=0.0, lm_loss_type=lm_loss_type)(y_true, y_pred)
        np.testing.assert_allclose(as_numpy(value), np.log(7.0), rtol=1e-6)


def test_gradient_matches_finite_differences_of_the_numpy_loss():
    y_true, y_pred = hrm_batch(4, batch=2, length=3, vocab=3)
    loss = HRMLoss(q_loss_weight=0.5)
    logits = y_pred["logits"]

    def value_with(logit_values, dtype):
        return loss(y_true, {**y_pred, "logits": logit_values})

    # Correctness is piecewise constant, so only the lm term moves.
    assert_gradient_matches_central_differences(
        value_with,
        lambda values: token_mean_cross_entropy(y_true["labels"], values, "stable_max"),
        logits,
        rtol=1e-4,
        atol=1e-6,
        dtype="float32",
    )


def test_large_logits_give_finite_values_and_gradients():
    y_true, y_pred = hrm_batch(5)
    y_pred["logits"] = y_pred["logits"] * 5e3
    loss = HRMLoss()
    gradient = input_gradient(
        lambda x: loss(y_true, {**y_pred, "logits": x}),
        keras.ops.convert_to_tensor(y_pred["logits"]),
    )
    assert np.isfinite(float(as_numpy(loss(y_true, y_pred))))
    assert np.all(np.isfinite(as_numpy(gradient)))


def test_column_shaped_q_inputs_equal_flat_ones():
    y_true, y_pred = hrm_batch(6)
    columns_true = {**y_true, "target_q_continue": y_true["target_q_continue"][:, None]}
    columns_pred = {**y_pred, "q_halt_logits": y_pred["q_halt_logits"][:, None]}
    loss = HRMLoss()
    np.testing.assert_allclose(
        as_numpy(loss(columns_true, columns_pred)), as_numpy(loss(y_true, y_pred)), rtol=1e-6
    )


def test_create_hrm_loss_builds_a_configured_hrm_loss():
    loss = create_hrm_loss(q_loss_weight=0.25, lm_loss_type="softmax", ignore_index=-1, name="hrm")
    assert isinstance(loss, HRMLoss)
    config = loss.get_config()
    assert (config["q_loss_weight"], config["lm_loss_type"], config["ignore_index"]) == (
        0.25,
        "softmax",
        -1,
    )
    assert loss.name == "hrm"


def test_invalid_lm_loss_type_raises():
    with pytest.raises(ValueError, match="HRMLoss.*lm_loss_type.*'cross_entropy'"):
        HRMLoss(lm_loss_type="cross_entropy")


def test_missing_prediction_key_raises():
    y_true, y_pred = hrm_batch(7)
    del y_pred["q_continue_logits"]
    with pytest.raises(ValueError, match="HRMLoss.*y_pred.*q_continue_logits"):
        HRMLoss()(y_true, y_pred)


def test_labels_and_logits_length_mismatch_raises():
    y_true, y_pred = hrm_batch(8, batch=2, length=5, vocab=6)
    y_true["labels"] = y_true["labels"][:, :4]
    with pytest.raises(ValueError, match=r"HRMLoss.*\(2, 4\).*\(2, 5, 6\)"):
        HRMLoss()(y_true, y_pred)


def test_q_logits_of_another_batch_size_raise():
    y_true, y_pred = hrm_batch(9, batch=3)
    y_pred["q_halt_logits"] = y_pred["q_halt_logits"][:2]
    with pytest.raises(ValueError, match=r"HRMLoss.*q_halt_logits.*\(2,\)"):
        HRMLoss()(y_true, y_pred)


@pytest.mark.parametrize("bad_target", [-0.5, 1.5])
def test_target_q_continue_outside_zero_one_raises(bad_target):
    y_true, y_pred = hrm_batch(4)
    y_true["target_q_continue"] = np.array([0.0, 1.0, bad_target, 0.5], "float32")
    pattern = rf"HRMLoss.*target_q_continue.*\[0\.0, 1\.0\].*\(4,\).*{bad_target}"
    with pytest.raises(ValueError, match=pattern):
        HRMLoss()(y_true, y_pred)


def test_nan_target_q_continue_gives_a_nan_loss():
    y_true, y_pred = hrm_batch(5)
    y_true["target_q_continue"] = np.array([0.5, np.nan, 0.0, 1.0], "float32")
    assert np.isnan(as_numpy(HRMLoss()(y_true, y_pred)))


def test_float_labels_with_a_fraction_raise():
    y_true, y_pred = hrm_batch(6)
    labels = y_true["labels"].astype("float32")
    labels[1, 2] = 2.5
    y_true["labels"] = labels
    pattern = r"HRMLoss.*labels.*integers in \[0, 6\).*1 of 20.*\(4, 5\)"
    with pytest.raises(ValueError, match=pattern):
        HRMLoss()(y_true, y_pred)


def test_values_are_read_on_the_first_eager_call_unless_always(monkeypatch):
    monkeypatch.delenv("DL_LOSSES_VALIDATE", raising=False)
    y_true, y_pred = hrm_batch(7)
    y_pred["q_continue_logits"] = np.zeros(4, "float32")
    bad = dict(y_true, target_q_continue=np.full(4, 2.0, "float32"))
    loss = HRMLoss(q_loss_weight=1.0)
    good_value = float(as_numpy(loss(y_true, y_pred)))
    # Checked once: the bad target is not read again; with zero q_continue
    # logits, bce(0, q) = log 2 for any q, so the value is unchanged.
    np.testing.assert_allclose(float(as_numpy(loss(bad, y_pred))), good_value, rtol=1e-6)
    monkeypatch.setenv("DL_LOSSES_VALIDATE", "always")
    with pytest.raises(ValueError, match="HRMLoss.*target_q_continue"):
        loss(bad, y_pred)
