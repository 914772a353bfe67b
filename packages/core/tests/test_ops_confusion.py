"""core.ops.soft_confusion_counts: native and reference paths against numpy, value and gradient.

With the amplified predictions ``yhat = sigmoid(L (p - 0.5))`` and
``L = a TP + b FN + c FP + d TN`` for random coefficients, away from the
clamps (FN, TN > 0), the chain rule gives per cell

```
dL/dp = w (t y + c - d) L yhat (1 - yhat),   t = a - b - c + d
dL/dy = w (t yhat + b - d)
```

times ``q (1 - q)`` for logits ``x`` with ``q = sigmoid(x)``; the counts
themselves are checked against float64 numpy.
"""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import ops
from dl_techniques.losses.core.testing.numeric import as_numpy, backend_gradient, sigmoid

BACKEND = keras.backend.backend()
FUNCTIONS = [ops.soft_confusion_counts, ops.soft_confusion_counts_reference]
SCALE = 7.0


def confusion_inputs(seed=0, shape=(64, 5)):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=shape).astype("float32")
    probabilities = rng.uniform(0.05, 0.95, size=shape).astype("float32")
    weights = rng.integers(0, 3, size=shape).astype("float32")
    return labels, probabilities, weights


def numpy_counts(labels, predictions, weights, from_logits, axis):
    labels, predictions = labels.astype("float64"), predictions.astype("float64")
    weights = weights.astype("float64")
    probabilities = sigmoid(predictions) if from_logits else predictions
    amplified = sigmoid(SCALE * (probabilities - 0.5))
    tp = (weights * labels * amplified).sum(axis=axis)
    fp = (weights * (1.0 - labels) * amplified).sum(axis=axis)
    fn = (weights * labels * (1.0 - amplified)).sum(axis=axis)
    tn = (weights * (1.0 - labels) * (1.0 - amplified)).sum(axis=axis)
    return tp, fn, fp, tn


def coefficients(axis, classes):
    rng = np.random.default_rng(3)
    shape = () if axis is None else (classes,)
    return [rng.normal(size=shape).astype("float32") for _ in range(4)]


def combined(counts, factors):
    return sum(
        keras.ops.sum(count * keras.ops.convert_to_tensor(factor))
        for count, factor in zip(counts, factors, strict=True)
    )


def numpy_gradients(labels, predictions, weights, from_logits, factors):
    a, b, c, d = (np.asarray(factor, "float64") for factor in factors)
    predictions = predictions.astype("float64")
    probabilities = sigmoid(predictions) if from_logits else predictions
    amplified = sigmoid(SCALE * (probabilities - 0.5))
    slope = SCALE * amplified * (1.0 - amplified)
    if from_logits:
        slope = slope * probabilities * (1.0 - probabilities)
    t = a - b - c + d
    prediction_gradient = weights * (t * labels + c - d) * slope
    label_gradient = weights * (t * amplified + b - d)
    return prediction_gradient, label_gradient


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("axis", [None, 0])
def test_soft_confusion_counts_match_numpy_value_and_gradients(
    function, weighted, from_logits, axis
):
    labels, probabilities, weights = confusion_inputs()
    predictions = np.log(probabilities / (1.0 - probabilities)) if from_logits else probabilities
    predictions = predictions.astype("float32")
    given = weights if weighted else None
    cell_weights = weights if weighted else np.ones_like(weights)
    factors = coefficients(axis, labels.shape[1])
    label_tensor = keras.ops.convert_to_tensor(labels)
    prediction_tensor = keras.ops.convert_to_tensor(predictions)

    def loss_of_predictions(x):
        return combined(function(labels, x, SCALE, from_logits, given, axis), factors)

    def loss_of_labels(y):
        return combined(function(y, prediction_tensor, SCALE, from_logits, given, axis), factors)

    values = function(label_tensor, prediction_tensor, SCALE, from_logits, given, axis)
    prediction_gradient = backend_gradient(loss_of_predictions, predictions)
    label_gradient = backend_gradient(loss_of_labels, labels)

    expected = numpy_counts(labels, predictions, cell_weights, from_logits, axis)
    for value, expected_value in zip(values, expected, strict=True):
        assert tuple(keras.ops.shape(value)) == np.shape(expected_value)
        np.testing.assert_allclose(as_numpy(value), expected_value, rtol=1e-5, atol=1e-4)
    expected_prediction, expected_label = numpy_gradients(
        labels, predictions, cell_weights, from_logits, factors
    )
    np.testing.assert_allclose(prediction_gradient, expected_prediction, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(label_gradient, expected_label, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_soft_confusion_counts_compiled_gradient_matches_numpy(function):
    labels, probabilities, weights = confusion_inputs(seed=1)
    factors = coefficients(0, labels.shape[1])

    gradient = backend_gradient(
        lambda x: combined(function(labels, x, SCALE, False, weights, 0), factors),
        probabilities,
        compiled=True,
    )

    expected, _ = numpy_gradients(labels, probabilities, weights, False, factors)
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(
    BACKEND not in ops.native_backends("soft_confusion_counts"),
    reason="the reference is the only path on this backend",
)
def test_soft_confusion_counts_native_matches_reference_at_the_clamps():
    # Perfect predictions: FN = sum y - TP is exactly 0, where the gradient of
    # the clamp splits in half as the reference's maximum does on this backend.
    labels, _, _ = confusion_inputs(seed=2)
    factors = coefficients(None, labels.shape[1])

    predictions = keras.ops.convert_to_tensor(labels)

    def gradient(function):
        # With respect to the labels: the slope of the saturated amplifier
        # makes the predictions' gradient 0 on both sides of the clamp.
        return backend_gradient(
            lambda y: combined(function(y, predictions, 73.0, False, None, None), factors), labels
        )

    counts = ops.soft_confusion_counts(labels, predictions, 73.0)
    assert float(as_numpy(counts[1])) == 0.0
    np.testing.assert_allclose(
        gradient(ops.soft_confusion_counts),
        gradient(ops.soft_confusion_counts_reference),
        rtol=1e-6,
        atol=1e-12,
    )


def test_soft_confusion_counts_rejects_other_axes():
    labels, probabilities, _ = confusion_inputs()

    with pytest.raises(ValueError, match="`axis` must be None or 0"):
        ops.soft_confusion_counts(labels, probabilities, SCALE, axis=1)


def test_soft_confusion_counts_runs_the_native_kernel_where_listed(monkeypatch):
    assert ops.native_backends("soft_confusion_counts") == ("torch",)
    labels, probabilities, _ = confusion_inputs()
    if BACKEND != "torch":
        # tensorflow and jax run the reference, which XLA fuses when compiled.
        return
    import torch

    calls = []
    original = torch.dot

    def spy(*args, **kwargs):
        calls.append("dot")
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "dot", spy)

    ops.soft_confusion_counts(labels, probabilities, SCALE)

    # The micro-averaged TP of the native kernel is one dot product.
    assert calls == ["dot"]
