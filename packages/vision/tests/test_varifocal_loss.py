import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    assert_gradient_matches_central_differences,
    backend_gradient,
    float64_enabled,
    gradient_dtype,
    hypothesis_examples,
    sigmoid,
)
from dl_techniques.losses.vision import VarifocalLoss

LOGITS = [[[1.5, -2.0, 0.3], [-0.7, 2.2, -1.1]], [[0.0, -3.0, 4.0], [2.5, 0.4, -0.2]]]
SCORES = [[[0.9, 0.0, 0.0], [0.0, 0.0, 0.35]], [[0.0, 0.0, 0.6], [0.0, 0.0, 0.0]]]

# Computed offline with Ultralytics 8.4.190 (ultralytics/utils/loss.py,
# VarifocalLoss.forward with alpha=0.75, gamma=2.0, label = gt_score > 0), per
# image b, in float64 under torch 2.13:
#   x = torch.tensor(LOGITS[b:b+1], dtype=torch.float64, requires_grad=True)
#   q = torch.tensor(SCORES[b:b+1], dtype=torch.float64)
#   v = VarifocalLoss()(x, q, (q > 0).double()); v.backward(); v.item(), x.grad
ULTRALYTICS_VALUE = [1.0993961711919273, 1.5445679670844419]
ULTRALYTICS_GRADIENT = [
    [
        [-0.037091489881277084, 0.0018266032881332005, 0.16106492234665182],
        [0.03594551969466096, 0.41336432656966926, -0.017545519396662712],
    ],
    [
        [0.11185754835605621, 0.00011807689583651307, 0.11460412293672562],
        [0.42127614078122844, 0.17896653584351435, 0.08419477499812514],
    ],
]


def varifocal_reference(scores, logits, alpha=0.75, gamma=2.0):
    """Per-sample loss from Zhang et al.'s formula, in float64."""
    q, p = np.asarray(scores, "float64"), sigmoid(np.asarray(logits, "float64"))
    bce = -(q * np.log(p) + (1 - q) * np.log1p(-p))
    weight = np.where(q > 0, q, alpha * p**gamma)
    per_class = (weight * bce).sum(axis=-1)
    return per_class.reshape(per_class.shape[0], -1).mean(axis=1)


def per_sample(loss, y_true, y_pred):
    loss.reduction = None
    return as_numpy(loss(np.asarray(y_true, "float32"), np.asarray(y_pred, "float32")))


def test_matches_ultralytics_value_and_gradient():
    value = per_sample(VarifocalLoss(), SCORES, LOGITS)
    np.testing.assert_allclose(value, ULTRALYTICS_VALUE, rtol=1e-6)
    dtype = gradient_dtype()
    with float64_enabled():
        # Ultralytics sums over images where Keras averages: reduction="sum".
        gradient = backend_gradient(
            lambda x: VarifocalLoss(reduction="sum", dtype=dtype)(SCORES, x), LOGITS, dtype=dtype
        )
    np.testing.assert_allclose(gradient, ULTRALYTICS_GRADIENT, rtol=1e-5, atol=1e-7)


def test_hand_checked_value():
    # q = 0.8 and logit 0: 0.8 log 2; a negative at logit 0: 0.75 * 0.5^2 log 2.
    value = per_sample(VarifocalLoss(), [[[0.8, 0.0]]], [[[0.0, 0.0]]])
    np.testing.assert_allclose(value, [(0.8 + 0.1875) * np.log(2.0)], rtol=1e-6)


@pytest.mark.parametrize(("alpha", "gamma"), [(0.75, 2.0), (0.25, 1.5), (1.0, 0.0)])
def test_matches_reference_on_random_scores(alpha, gamma):
    rng = np.random.default_rng(int(alpha * 100 + gamma * 10))
    logits = rng.normal(scale=2.0, size=(3, 4, 5, 3))
    scores = rng.uniform(size=logits.shape) * (rng.uniform(size=logits.shape) < 0.3)
    value = per_sample(VarifocalLoss(alpha=alpha, gamma=gamma), scores, logits)
    expected = varifocal_reference(scores, logits, alpha, gamma)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    probabilities = per_sample(
        VarifocalLoss(alpha=alpha, gamma=gamma, from_logits=False), scores, sigmoid(logits)
    )
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4)


def test_gradient_matches_central_differences():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(2, 3, 4))
    scores = rng.uniform(size=logits.shape) * (rng.uniform(size=logits.shape) < 0.4)
    assert_gradient_matches_central_differences(
        lambda x, dtype: VarifocalLoss(reduction="sum", dtype=dtype)(scores, x),
        lambda x: varifocal_reference(scores, x),
        logits,
        rtol=1e-4,
        atol=1e-7,
    )


@settings(max_examples=hypothesis_examples(15), deadline=None)
@given(seed=st.integers(0, 2**31 - 1), gamma=st.floats(0.0, 3.0))
def test_non_negative_and_negatives_weigh_less_as_they_are_confidently_rejected(seed, gamma):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(2, 4, 3))
    scores = rng.uniform(size=logits.shape) * (rng.uniform(size=logits.shape) < 0.3)
    assert np.all(per_sample(VarifocalLoss(gamma=gamma), scores, logits) >= 0.0)
    negatives = np.zeros((1, 1, 2))
    confident = per_sample(VarifocalLoss(gamma=gamma), negatives, [[[-2.0, -2.0]]])
    hesitant = per_sample(VarifocalLoss(gamma=gamma), negatives, [[[-1.0, -1.0]]])
    assert confident[0] < hesitant[0]


@pytest.mark.parametrize(
    "kwargs", [{"alpha": 0.0}, {"alpha": float("inf")}, {"gamma": -0.5}, {"from_logits": "no"}]
)
def test_bad_hyper_parameters_are_value_errors(kwargs):
    with pytest.raises(ValueError, match="VarifocalLoss"):
        VarifocalLoss(**kwargs)


def test_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match=r"VarifocalLoss.*same shape"):
        VarifocalLoss()(np.zeros((2, 3, 4)), np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match=r"VarifocalLoss.*y_true.*\[0\.0, 1\.0\]"):
        VarifocalLoss()(np.full((1, 2, 2), 1.5), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match=r"VarifocalLoss.*y_pred.*from_logits"):
        VarifocalLoss(from_logits=False)(np.zeros((1, 2, 2)), np.full((1, 2, 2), 2.0))
