import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.classification.capsule_margin_loss import CapsuleMarginLoss
from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    gradient_dtype,
    hypothesis_examples,
)

# float32 on jax without x64, where the gradient gets a looser tolerance.
GRADIENT_DTYPE = gradient_dtype()
GRADIENT_RTOL = 2e-3 if GRADIENT_DTYPE == "float32" else 1e-7


def margin_reference(y_true, lengths, m_plus=0.9, m_minus=0.1, downweight=0.5):
    """Per-sample margin loss from Sabour et al.'s equation (4), in float64."""
    y_true, lengths = np.asarray(y_true, "float64"), np.asarray(lengths, "float64")
    present = y_true * np.maximum(0.0, m_plus - lengths) ** 2
    absent = downweight * (1.0 - y_true) * np.maximum(0.0, lengths - m_minus) ** 2
    return (present + absent).sum(axis=-1)


def capsule_lengths(vectors):
    return np.sqrt((np.asarray(vectors, "float64") ** 2).sum(axis=-1) + 1e-7)


def random_capsules(rng, lengths, dim):
    directions = rng.normal(size=lengths.shape + (dim,))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    return directions * lengths[..., None]


def test_hand_checked_value_of_lengths():
    # sample 0, class 0 present at 0.7: (0.9 - 0.7)^2 = 0.04; class 1 absent at
    #   0.3: 0.5 (0.3 - 0.1)^2 = 0.02; class 2 absent at 0.05 < 0.1: 0 -> 0.06
    # sample 1, class 2 present at 0.95 > 0.9: 0; class 0 absent at 0.6:
    #   0.5 * 0.25 = 0.125; class 1 absent at 0.1: 0 -> 0.125
    y_true = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    lengths = [[0.7, 0.3, 0.05], [0.6, 0.1, 0.95]]
    value = CapsuleMarginLoss(reduction=None)(y_true, lengths)
    np.testing.assert_allclose(as_numpy(value), [0.06, 0.125], rtol=1e-6)


def test_hand_checked_value_of_vectors_with_custom_margins():
    # capsule (0.3, 0.4) has length 0.5 (sqrt(0.25 + 1e-7) = 0.5000001):
    # present with m+ = 0.8: 0.3^2 = 0.09; capsule (0.6, 0.8) has length 1,
    # absent with m- = 0.2 and lambda = 0.25: 0.25 * 0.8^2 = 0.16 -> 0.25
    loss = CapsuleMarginLoss(positive_margin=0.8, negative_margin=0.2, downweight=0.25)
    value = loss([[1.0, 0.0]], [[[0.3, 0.4], [0.6, 0.8]]])
    np.testing.assert_allclose(as_numpy(value), 0.25, rtol=1e-5)


@pytest.mark.parametrize("margins", [(0.9, 0.1, 0.5), (0.75, 0.35, 1.0)])
def test_matches_numpy_reference_on_random_lengths(margins):
    rng = np.random.default_rng(7)
    y_true = np.eye(5, dtype="float32")[rng.integers(0, 5, size=8)]
    lengths = rng.uniform(0.0, 1.0, size=(8, 5)).astype("float32")
    m_plus, m_minus, downweight = margins
    loss = CapsuleMarginLoss(m_plus, m_minus, downweight, reduction=None)
    np.testing.assert_allclose(
        as_numpy(loss(y_true, lengths)),
        margin_reference(y_true, lengths, m_plus, m_minus, downweight),
        rtol=1e-5,
        atol=1e-7,
    )


def test_matches_numpy_reference_on_random_vectors_and_multi_hot_targets():
    rng = np.random.default_rng(11)
    y_true = (rng.uniform(size=(6, 4)) < 0.4).astype("float32")
    vectors = rng.normal(scale=0.3, size=(6, 4, 16)).astype("float32")
    np.testing.assert_allclose(
        as_numpy(CapsuleMarginLoss(reduction=None)(y_true, vectors)),
        margin_reference(y_true, capsule_lengths(vectors)),
        rtol=1e-5,
        atol=1e-7,
    )


def test_official_tensorflow_value_is_this_loss_over_twice_the_class_count():
    # models/research/capsules: 0.5 (pos + downweight neg) per logit, then the
    # mean over batch and classes.
    rng = np.random.default_rng(3)
    y_true = np.eye(10, dtype="float32")[rng.integers(0, 10, size=4)]
    lengths = rng.uniform(size=(4, 10)).astype("float32")
    shifted = lengths.astype("float64") - 0.5
    positive = y_true * (shifted < 0.4) * (shifted - 0.4) ** 2
    negative = (1.0 - y_true) * (shifted > -0.4) * (shifted + 0.4) ** 2
    official = np.mean(0.5 * positive + 0.5 * 0.5 * negative)
    ours = as_numpy(CapsuleMarginLoss()(y_true, lengths))
    np.testing.assert_allclose(ours / (2 * 10), official, rtol=1e-5)


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    lengths=hnp.arrays("float64", (3, 4), elements=st.floats(0.01, 1.0)),
    dim=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_vectors_give_the_loss_of_their_lengths(lengths, dim, seed):
    rng = np.random.default_rng(seed)
    y_true = np.eye(4, dtype="float32")[rng.integers(0, 4, size=3)]
    vectors = random_capsules(rng, lengths, dim).astype("float32")
    loss = CapsuleMarginLoss(reduction=None)
    # The 1e-7 under the square root moves a length by at most 5e-6 here.
    np.testing.assert_allclose(
        as_numpy(loss(y_true, vectors)),
        as_numpy(loss(y_true, lengths.astype("float32"))),
        rtol=1e-4,
        atol=2e-6,
    )


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    present=st.floats(0.9, 2.0),
    absent=hnp.arrays("float64", (3,), elements=st.floats(0.0, 0.1)),
)
def test_zero_when_every_capsule_is_on_the_right_side_of_its_margin(present, absent):
    lengths = np.concatenate([[present], absent])[None].astype("float32")
    value = CapsuleMarginLoss()(np.array([[1.0, 0.0, 0.0, 0.0]]), lengths)
    assert as_numpy(value) == 0.0


def test_gradient_matches_finite_differences_of_the_reference():
    rng = np.random.default_rng(5)
    y_true = np.eye(3)[[0, 2]]
    vectors = rng.normal(scale=0.4, size=(2, 3, 4))
    loss = CapsuleMarginLoss(positive_margin=0.8, negative_margin=0.2, dtype=GRADIENT_DTYPE)
    gradient = as_numpy(
        input_gradient(
            lambda x: loss(keras.ops.convert_to_tensor(y_true, GRADIENT_DTYPE), x),
            keras.ops.convert_to_tensor(vectors, GRADIENT_DTYPE),
        )
    )

    def mean_loss(v):
        return margin_reference(y_true, capsule_lengths(v), 0.8, 0.2).mean()

    expected = central_differences(mean_loss, vectors)
    assert np.any(np.abs(expected) > 1e-3)
    np.testing.assert_allclose(gradient, expected, rtol=GRADIENT_RTOL, atol=1e-8)


def test_gradient_is_finite_for_an_all_zero_capsule():
    gradient = as_numpy(
        input_gradient(
            lambda x: CapsuleMarginLoss()(keras.ops.convert_to_tensor([[1.0, 0.0]]), x),
            keras.ops.zeros((1, 2, 3)),
        )
    )
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"positive_margin": 1.0}, "positive_margin"),
        ({"positive_margin": 0.0}, "positive_margin"),
        ({"negative_margin": -0.1}, "negative_margin"),
        ({"negative_margin": 1.2}, "negative_margin"),
        ({"negative_margin": float("nan")}, "negative_margin"),
        ({"positive_margin": True}, "positive_margin"),
        ({"downweight": 0.0}, "downweight"),
        ({"downweight": 1.01}, "downweight"),
    ],
)
def test_hyperparameters_out_of_range_are_a_value_error(kwargs, argument):
    with pytest.raises(ValueError, match=rf"CapsuleMarginLoss.*`{argument}`"):
        CapsuleMarginLoss(**kwargs)


@pytest.mark.parametrize("margins", [(0.4, 0.4), (0.3, 0.6)])
def test_positive_margin_not_above_negative_margin_is_a_value_error(margins):
    with pytest.raises(ValueError, match=r"CapsuleMarginLoss.*greater than `negative_margin`"):
        CapsuleMarginLoss(positive_margin=margins[0], negative_margin=margins[1])


@pytest.mark.parametrize(
    ("true_shape", "pred_shape"),
    [((2, 3), (2, 4)), ((2, 3), (2, 4, 5)), ((2, 3, 1), (2, 3, 5)), ((2,), (2, 3))],
)
def test_mismatched_shapes_are_a_value_error(true_shape, pred_shape):
    with pytest.raises(
        ValueError, match=r"CapsuleMarginLoss.*y_true.*" + re.escape(str(pred_shape))
    ):
        CapsuleMarginLoss()(np.zeros(true_shape), np.zeros(pred_shape))


def test_prediction_of_rank_four_is_a_value_error():
    with pytest.raises(ValueError, match=r"CapsuleMarginLoss.*\(2, 3, 4, 5\)"):
        CapsuleMarginLoss()(np.zeros((2, 3)), np.zeros((2, 3, 4, 5)))
