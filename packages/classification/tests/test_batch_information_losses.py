"""What DecoupledInformationLoss and GoodhartAwareLoss share, against numpy references.

Both are the cross-entropy plus a weighted entropy of each prediction ``p_i``
and a weighted term of the batch-mean prediction ``p_bar``, in which
``sample_weight`` counts as a frequency: a weight of 2 is the sample twice.
Their own hand-checked values, properties and argument checks stay in
``test_decoupled_information.py`` and ``test_goodhart_aware.py``.
"""

import dataclasses
import re
from collections.abc import Callable

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.classification.decoupled_information_loss import (
    DecoupledInformationLoss,
)
from dl_techniques.losses.classification.goodhart_aware_loss import GoodhartAwareLoss
from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    entropy,
    gradient_dtype,
    hypothesis_examples,
    log_softmax,
)

# float32 on jax without x64, where the gradient gets a looser tolerance.
GRADIENT_DTYPE = gradient_dtype()
GRADIENT_RTOL = 2e-3 if GRADIENT_DTYPE == "float32" else 1e-6


def decoupled_reference(
    y_true, logits, uncertainty_weight=0.2, diversity_weight=0.01, label_smoothing=0.0, weights=None
):
    """Per-sample values ``CE_i - u H(p_i) - d H(p_bar)``, p_bar weighted by ``weights``."""
    y_true = np.asarray(y_true, "float64")
    log_p = log_softmax(logits)
    p = np.exp(log_p)
    targets = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    weights = np.ones(len(p)) if weights is None else np.asarray(weights, "float64")
    mean_prediction = (weights[:, None] * p).sum(axis=0) / weights.sum()
    cross_entropy = -(targets * log_p).sum(axis=-1)
    return (
        cross_entropy
        - uncertainty_weight * entropy(p)
        - diversity_weight * entropy(mean_prediction)
    )


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


@dataclasses.dataclass(frozen=True)
class InformationLoss:
    """One of the two losses, its reference and the names of its two term weights."""

    loss_class: type
    reference: Callable[..., np.ndarray]
    sample_term: str
    """Weight of each prediction's entropy ``H(p_i)``."""
    batch_term: str
    """Weight of the term of the batch-mean prediction ``p_bar``."""

    def kwargs(self, sample=None, batch=None, **others):
        """Constructor (and reference) arguments with the term weights named for this loss."""
        named = {self.sample_term: sample, self.batch_term: batch}
        return {**{name: value for name, value in named.items() if value is not None}, **others}

    def __call__(self, sample=None, batch=None, **others):
        return self.loss_class(**self.kwargs(sample, batch, **others))


LOSSES = [
    InformationLoss(
        DecoupledInformationLoss, decoupled_reference, "uncertainty_weight", "diversity_weight"
    ),
    InformationLoss(GoodhartAwareLoss, goodhart_reference, "entropy_weight", "mi_weight"),
]
BOTH = pytest.mark.parametrize("spec", LOSSES, ids=lambda spec: spec.loss_class.__name__)


def reference_weighted_mean(values, weights):
    return np.sum(weights * values) / np.sum(weights)


def one_hot(rng, batch, num_classes):
    return np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, size=batch)]


@BOTH
@pytest.mark.parametrize(
    "terms",
    [
        {},
        {"sample": 0.0, "batch": 1.0, "label_smoothing": 0.2},
        {"sample": 0.6, "batch": 0.3, "label_smoothing": 0.05},
    ],
)
def test_matches_numpy_reference_on_random_logits(spec, terms):
    rng = np.random.default_rng(len(terms) + 1)
    y_true = one_hot(rng, 9, 6)
    logits = rng.normal(scale=2.0, size=(9, 6)).astype("float32")
    value = spec(**terms, reduction=None)(y_true, logits)
    np.testing.assert_allclose(
        as_numpy(value),
        spec.reference(y_true, logits, **spec.kwargs(**terms)),
        rtol=1e-5,
        atol=1e-6,
    )


@BOTH
def test_probabilities_give_the_value_of_their_logits(spec):
    rng = np.random.default_rng(4)
    y_true = one_hot(rng, 5, 3)
    logits = rng.normal(size=(5, 3))
    probabilities = np.exp(log_softmax(logits)).astype("float32")
    loss = spec(batch=0.3, from_logits=False, reduction=None)
    np.testing.assert_allclose(
        as_numpy(loss(y_true, probabilities)),
        spec.reference(y_true, logits, **spec.kwargs(batch=0.3)),
        rtol=1e-5,
        atol=1e-6,
    )


@BOTH
@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        ("sum_over_batch_size", lambda values, w: reference_weighted_mean(values, w)),
        ("mean_with_sample_weight", lambda values, w: reference_weighted_mean(values, w)),
        ("sum", lambda values, w: np.sum(w * values)),
        (None, lambda values, w: w * values),
    ],
)
def test_sample_weight_weights_the_batch_mean_and_every_reduction(spec, reduction, expected):
    rng = np.random.default_rng(21)
    y_true = one_hot(rng, 7, 4)
    logits = rng.normal(scale=1.5, size=(7, 4)).astype("float32")
    weights = rng.uniform(0.0, 3.0, size=7).astype("float32")
    loss = spec(batch=0.8, reduction=reduction)
    values = spec.reference(y_true, logits, **spec.kwargs(batch=0.8), weights=weights)
    np.testing.assert_allclose(
        as_numpy(loss(y_true, logits, sample_weight=weights)),
        expected(values, weights),
        rtol=1e-5,
        atol=1e-6,
    )


@BOTH
def test_integer_weight_repeats_a_sample_and_zero_weight_drops_it(spec):
    rng = np.random.default_rng(8)
    y_true = one_hot(rng, 4, 3)
    logits = rng.normal(size=(4, 3)).astype("float32")
    loss = spec(sample=0.3, batch=0.6)
    weighted = loss(y_true, logits, sample_weight=np.array([2.0, 0.0, 1.0, 1.0]))
    rows = [0, 0, 2, 3]
    np.testing.assert_allclose(
        as_numpy(weighted), as_numpy(loss(y_true[rows], logits[rows])), rtol=1e-5
    )


@BOTH
@pytest.mark.parametrize("weight_shape", [(), (5, 1)])
def test_scalar_and_column_weights_are_accepted(spec, weight_shape):
    rng = np.random.default_rng(6)
    y_true = one_hot(rng, 5, 3)
    logits = rng.normal(size=(5, 3)).astype("float32")
    loss = spec(batch=0.5)
    weights = np.full(weight_shape, 2.0, "float32")
    # a constant frequency weight changes neither p_bar nor the weighted mean
    np.testing.assert_allclose(
        as_numpy(loss(y_true, logits, sample_weight=weights)),
        spec.reference(y_true, logits, **spec.kwargs(batch=0.5)).mean(),
        rtol=1e-5,
    )


@BOTH
def test_sample_weight_is_honoured_by_compiled_evaluate(spec):
    rng = np.random.default_rng(13)
    y_true = one_hot(rng, 8, 4)
    logits = rng.normal(size=(8, 4)).astype("float32")
    weights = rng.uniform(0.5, 2.0, size=8).astype("float32")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    model.compile(loss=spec(batch=0.7))
    value = model.evaluate(logits, y_true, sample_weight=weights, batch_size=8, verbose=0)
    expected = reference_weighted_mean(
        spec.reference(y_true, logits, **spec.kwargs(batch=0.7), weights=weights), weights
    )
    np.testing.assert_allclose(value, expected, rtol=1e-5)


@BOTH
@pytest.mark.parametrize("weights", [None, np.array([0.5, 2.0, 1.0, 0.0])])
def test_gradient_matches_finite_differences_of_the_reference(spec, weights):
    rng = np.random.default_rng(19)
    y_true = one_hot(rng, 4, 3).astype("float64")
    logits = rng.normal(size=(4, 3))
    kwargs = spec.kwargs(sample=0.4, batch=0.9, label_smoothing=0.1)
    loss = spec.loss_class(**kwargs, dtype=GRADIENT_DTYPE)
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
        lambda z: reference_weighted_mean(
            spec.reference(y_true, z, **kwargs, weights=reference_weights), reference_weights
        ),
        logits,
    )
    np.testing.assert_allclose(gradient, expected, rtol=GRADIENT_RTOL, atol=1e-7)


@BOTH
@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    logits=hnp.arrays("float32", (3, 4), elements=st.floats(-1e4, 1e4, width=32)),
    labels=hnp.arrays("int64", (3,), elements=st.integers(0, 3)),
)
def test_value_and_gradient_are_finite_for_large_logits(spec, logits, labels):
    y_true = keras.ops.convert_to_tensor(np.eye(4, dtype="float32")[labels])
    loss = spec(sample=0.5, batch=0.5)
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


@BOTH
@pytest.mark.parametrize(
    ("true_shape", "pred_shape"), [((2, 3), (2, 4)), ((2,), (2, 4)), ((2, 4, 1), (2, 4, 1))]
)
def test_mismatched_shapes_are_a_value_error(spec, true_shape, pred_shape):
    name = spec.loss_class.__name__
    with pytest.raises(ValueError, match=name + r".*" + re.escape(str(pred_shape))):
        spec()(np.zeros(true_shape), np.zeros(pred_shape))


@BOTH
@pytest.mark.parametrize("weight_shape", [(3,), (5, 2)])
def test_sample_weight_of_the_wrong_shape_is_a_value_error(spec, weight_shape):
    name = spec.loss_class.__name__
    with pytest.raises(
        ValueError, match=name + r".*sample_weight.*" + re.escape(str(weight_shape))
    ):
        spec()(np.eye(5)[:, :4], np.zeros((5, 4)), np.ones(weight_shape))
