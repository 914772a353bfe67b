import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.classification.decoupled_information_loss import (
    DecoupledInformationLoss,
)
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


@settings(max_examples=hypothesis_examples(25), deadline=None)
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
