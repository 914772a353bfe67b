import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.classification.goodhart_aware_loss import GoodhartAwareLoss
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    entropy,
    hypothesis_examples,
    log_softmax,
)

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
    log_p = log_softmax(logits)
    expected = -(y_true * log_p).sum(axis=-1) - 0.2 * entropy(np.exp(log_p))
    np.testing.assert_allclose(as_numpy(value), expected, rtol=1e-5)


@settings(max_examples=hypothesis_examples(25), deadline=None)
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
