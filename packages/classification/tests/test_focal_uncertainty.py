import math
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.classification.focal_uncertainty_loss import FocalUncertaintyLoss
from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    gradient_dtype,
    hypothesis_examples,
    log_softmax,
)

# float32 on jax without x64, where the gradient gets a looser tolerance.
GRADIENT_DTYPE = gradient_dtype()
GRADIENT_RTOL = 2e-3 if GRADIENT_DTYPE == "float32" else 1e-6


def focal_uncertainty_reference(
    y_true, logits, gamma=2.0, alpha=None, uncertainty_weight=0.1, label_smoothing=0.0
):
    """Per-sample focal cross-entropy minus the weighted entropy, in float64."""
    y_true = np.asarray(y_true, "float64")
    log_p = log_softmax(logits)
    p = np.exp(log_p)
    num_classes = y_true.shape[-1]
    targets = y_true * (1.0 - label_smoothing) + label_smoothing / num_classes
    alpha = np.ones(num_classes) if alpha is None else np.broadcast_to(alpha, (num_classes,))
    focal = (alpha * (1.0 - p) ** gamma * -targets * log_p).sum(axis=-1)
    entropy = -(p * log_p).sum(axis=-1)
    return focal - uncertainty_weight * entropy


def one_hot(rng, batch, num_classes):
    return np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, size=batch)]


def test_hand_checked_value_with_default_focusing():
    # equal logits: p = (0.5, 0.5); focal = (1 - 0.5)^2 log 2 = 0.1732868,
    # entropy log 2, so 0.1732868 - 0.1 * 0.6931472 = 0.1039721
    value = FocalUncertaintyLoss()([[1.0, 0.0]], [[0.0, 0.0]])
    np.testing.assert_allclose(as_numpy(value), 0.1039721, rtol=1e-6)


def test_hand_checked_value_with_class_alpha_and_label_smoothing():
    # logits (log 3, 0): p = (0.75, 0.25); label 1 smoothed by 0.2 -> t = (0.1, 0.9)
    # gamma 1, alpha (2, 1): 2 * 0.25 * 0.1 * -log 0.75 = 0.0143841
    #                      + 1 * 0.75 * 0.9 * -log 0.25 = 0.9357487 -> 0.9501328
    loss = FocalUncertaintyLoss(
        gamma=1.0, alpha=[2.0, 1.0], uncertainty_weight=0.0, label_smoothing=0.2
    )
    value = loss([[0.0, 1.0]], [[math.log(3.0), 0.0]])
    np.testing.assert_allclose(as_numpy(value), 0.9501328, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"gamma": 0.5, "alpha": 0.25, "uncertainty_weight": 0.3},
        {"gamma": 3.0, "alpha": [0.1, 0.2, 0.3, 0.4, 0.5], "label_smoothing": 0.1},
        {"gamma": 0.0, "uncertainty_weight": 1.0, "label_smoothing": 0.3},
    ],
)
def test_matches_numpy_reference_on_random_logits(kwargs):
    rng = np.random.default_rng(len(kwargs))
    y_true = one_hot(rng, 8, 5)
    logits = rng.normal(scale=2.0, size=(8, 5)).astype("float32")
    value = FocalUncertaintyLoss(**kwargs, reduction=None)(y_true, logits)
    np.testing.assert_allclose(
        as_numpy(value), focal_uncertainty_reference(y_true, logits, **kwargs), rtol=1e-5, atol=1e-6
    )


def test_probabilities_give_the_value_of_their_logits():
    rng = np.random.default_rng(2)
    y_true = one_hot(rng, 6, 4)
    logits = rng.normal(size=(6, 4))
    probabilities = np.exp(log_softmax(logits)).astype("float32")
    loss = FocalUncertaintyLoss(
        gamma=1.5, uncertainty_weight=0.2, from_logits=False, reduction=None
    )
    np.testing.assert_allclose(
        as_numpy(loss(y_true, probabilities)),
        focal_uncertainty_reference(y_true, logits, gamma=1.5, uncertainty_weight=0.2),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("alpha", [0.25, 0.7, [0.1, 0.6, 0.3]])
@pytest.mark.parametrize("from_logits", [True, False])
def test_focal_term_equals_keras_categorical_focal_crossentropy(alpha, from_logits):
    rng = np.random.default_rng(9)
    y_true = one_hot(rng, 10, 3)
    logits = rng.normal(scale=1.5, size=(10, 3)).astype("float32")
    y_pred = logits if from_logits else np.exp(log_softmax(logits)).astype("float32")
    settings_ = {"alpha": alpha, "gamma": 2.5, "label_smoothing": 0.15, "from_logits": from_logits}
    keras_value = keras.losses.CategoricalFocalCrossentropy(**settings_, reduction=None)(
        y_true, y_pred
    )
    ours = FocalUncertaintyLoss(**settings_, uncertainty_weight=0.0, reduction=None)(y_true, y_pred)
    np.testing.assert_allclose(as_numpy(ours), as_numpy(keras_value), rtol=1e-5, atol=1e-7)


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    logits=hnp.arrays("float32", (4, 5), elements=st.floats(-30.0, 30.0, width=32)),
    labels=hnp.arrays("int64", (4,), elements=st.integers(0, 4)),
)
def test_without_focusing_alpha_or_entropy_it_is_categorical_crossentropy(logits, labels):
    y_true = np.eye(5, dtype="float32")[labels]
    value = FocalUncertaintyLoss(gamma=0.0, alpha=None, uncertainty_weight=0.0, reduction=None)(
        y_true, logits
    )
    cross_entropy = -(y_true * log_softmax(logits)).sum(axis=-1)
    np.testing.assert_allclose(as_numpy(value), cross_entropy, rtol=1e-5, atol=1e-5)
    keras_value = keras.losses.categorical_crossentropy(y_true, logits, from_logits=True)
    np.testing.assert_allclose(as_numpy(value), as_numpy(keras_value), rtol=1e-5, atol=1e-5)


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    logits=hnp.arrays("float32", (3, 4), elements=st.floats(-1e4, 1e4, width=32)),
    labels=hnp.arrays("int64", (3,), elements=st.integers(0, 3)),
    gamma=st.sampled_from([0.0, 0.5, 2.0]),
)
def test_value_and_gradient_are_finite_for_large_logits(logits, labels, gamma):
    y_true = keras.ops.convert_to_tensor(np.eye(4, dtype="float32")[labels])
    loss = FocalUncertaintyLoss(gamma=gamma, alpha=0.5, uncertainty_weight=0.5, label_smoothing=0.1)
    value = as_numpy(loss(y_true, logits))
    gradient = as_numpy(
        input_gradient(lambda x: loss(y_true, x), keras.ops.convert_to_tensor(logits))
    )
    assert np.isfinite(value)
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gamma": 2.0, "alpha": [0.2, 0.5, 0.3], "uncertainty_weight": 0.4, "label_smoothing": 0.1},
        {"gamma": 0.5, "alpha": None, "uncertainty_weight": 0.0, "label_smoothing": 0.0},
    ],
)
def test_gradient_matches_finite_differences_of_the_reference(kwargs):
    rng = np.random.default_rng(17)
    y_true = one_hot(rng, 3, 3).astype("float64")
    logits = rng.normal(size=(3, 3))
    loss = FocalUncertaintyLoss(**kwargs, dtype=GRADIENT_DTYPE)
    gradient = as_numpy(
        input_gradient(
            lambda x: loss(keras.ops.convert_to_tensor(y_true, GRADIENT_DTYPE), x),
            keras.ops.convert_to_tensor(logits, GRADIENT_DTYPE),
        )
    )
    expected = central_differences(
        lambda z: focal_uncertainty_reference(y_true, z, **kwargs).mean(), logits
    )
    np.testing.assert_allclose(gradient, expected, rtol=GRADIENT_RTOL, atol=1e-7)


def test_config_keeps_alpha_as_given():
    loss = FocalUncertaintyLoss(gamma=1.0, alpha=(0.25, 0.75), label_smoothing=0.05)
    config = loss.get_config()
    assert config["alpha"] == [0.25, 0.75]
    assert FocalUncertaintyLoss.from_config(config).alpha == [0.25, 0.75]
    assert FocalUncertaintyLoss(alpha=0.5).get_config()["alpha"] == 0.5


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"gamma": -0.5}, "gamma"),
        ({"gamma": float("inf")}, "gamma"),
        ({"uncertainty_weight": -0.1}, "uncertainty_weight"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": [0.5, -0.5]}, "alpha"),
        ({"alpha": "balanced"}, "alpha"),
        ({"alpha": []}, "alpha"),
        ({"from_logits": "yes"}, "from_logits"),
    ],
)
def test_invalid_hyperparameters_are_a_value_error(kwargs, argument):
    with pytest.raises(ValueError, match=rf"FocalUncertaintyLoss.*`{argument}`"):
        FocalUncertaintyLoss(**kwargs)


def test_alpha_of_the_wrong_length_is_a_value_error_naming_the_shapes():
    loss = FocalUncertaintyLoss(alpha=[0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"FocalUncertaintyLoss.*alpha.*\(3,\).*\(2, 4\)"):
        loss(np.eye(4)[:2], np.zeros((2, 4)))


@pytest.mark.parametrize(
    ("true_shape", "pred_shape"), [((2, 3), (2, 4)), ((2,), (2, 4)), ((2, 4), (2, 4, 1))]
)
def test_mismatched_shapes_are_a_value_error(true_shape, pred_shape):
    with pytest.raises(ValueError, match=r"FocalUncertaintyLoss.*" + re.escape(str(pred_shape))):
        FocalUncertaintyLoss()(np.zeros(true_shape), np.zeros(pred_shape))
