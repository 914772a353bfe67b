"""core.ops.overlap_sums: native and reference paths against numpy, value and gradient.

``L = sum(a * intersection + b * predicted + c * actual)`` with random
coefficients has the gradients ``w (a y + b)`` with respect to the
predictions and ``w (a p + c)`` with respect to the labels, per row ``n`` and
class ``k``; the sums themselves are checked against float64 numpy.
"""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import ops
from dl_techniques.losses.core.testing.numeric import as_numpy, backend_gradient

BACKEND = keras.backend.backend()
FUNCTIONS = [ops.overlap_sums, ops.overlap_sums_reference]
# (2, 1024, 3) pooled over (0, 1): 2048 rows, summed natively in 8 blocks of
# 256; (2, 5, 3) per group over the 5 rows of axis -2: no whole block.
CASES = [((2, 1024, 3), (0, 1)), ((2, 5, 3), -2)]


def overlap_inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.eye(shape[-1], dtype="float32")[rng.integers(0, shape[-1], size=shape[:-1])]
    labels = (0.9 * labels + 0.1 * rng.uniform(size=shape)).astype("float32")
    predictions = rng.uniform(size=shape).astype("float32")
    weights = rng.integers(0, 3, size=shape[:-1]).astype("float32")
    return labels, predictions, weights


def summed_axes(shape, axis):
    return (0, 1) if axis == (0, 1) else (len(shape) - 2,)


def numpy_sums(labels, predictions, weights, axes):
    labels, predictions = labels.astype("float64"), predictions.astype("float64")
    row_weights = weights.astype("float64")[..., None]
    return (
        (row_weights * labels * predictions).sum(axis=axes),
        (row_weights * predictions).sum(axis=axes),
        (row_weights * labels).sum(axis=axes),
    )


def coefficients(shape, axes):
    rng = np.random.default_rng(3)
    kept = tuple(size for index, size in enumerate(shape) if index not in axes)
    return [rng.normal(size=kept).astype("float32") for _ in range(3)]


def combined(sums, factors):
    return sum(
        keras.ops.sum(total * keras.ops.convert_to_tensor(factor))
        for total, factor in zip(sums, factors, strict=True)
    )


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("shape", "axis"), CASES)
def test_overlap_sums_match_numpy_value_and_prediction_gradient(function, weighted, shape, axis):
    labels, predictions, weights = overlap_inputs(shape)
    axes = summed_axes(shape, axis)
    given = weights if weighted else None
    row_weights = weights if weighted else np.ones(shape[:-1], "float32")
    factors = coefficients(shape, axes)

    values = function(labels, keras.ops.convert_to_tensor(predictions), given, axis)
    gradient = backend_gradient(
        lambda x: combined(function(labels, x, given, axis), factors), predictions
    )

    for value, expected in zip(
        values, numpy_sums(labels, predictions, row_weights, axes), strict=True
    ):
        np.testing.assert_allclose(as_numpy(value), expected, rtol=1e-5, atol=1e-5)
    intersection, predicted, _ = (np.expand_dims(factor, axes) for factor in factors)
    expected_gradient = row_weights[..., None] * (intersection * labels + predicted)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_overlap_sums_compiled_gradients_reach_labels_and_predictions(function):
    shape, axis = CASES[0]
    labels, predictions, weights = overlap_inputs(shape, seed=1)
    axes = summed_axes(shape, axis)
    factors = coefficients(shape, axes)
    label_tensor = keras.ops.convert_to_tensor(labels)
    prediction_tensor = keras.ops.convert_to_tensor(predictions)

    prediction_gradient = backend_gradient(
        lambda x: combined(function(label_tensor, x, weights, axis), factors),
        predictions,
        compiled=True,
    )
    label_gradient = backend_gradient(
        lambda y: combined(function(y, prediction_tensor, weights, axis), factors),
        labels,
        compiled=True,
    )

    intersection, predicted, actual = (np.expand_dims(factor, axes) for factor in factors)
    row_weights = weights[..., None]
    np.testing.assert_allclose(
        prediction_gradient, row_weights * (intersection * labels + predicted), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        label_gradient, row_weights * (intersection * predictions + actual), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("axis", [-1, 0, (0, 2)])
def test_overlap_sums_rejects_axes_that_do_not_end_before_the_classes(function, axis):
    labels, predictions, _ = overlap_inputs(CASES[1][0])

    with pytest.raises(ValueError, match="consecutive axes ending at the second to last"):
        function(labels, keras.ops.convert_to_tensor(predictions), None, axis)


def test_overlap_sums_runs_the_native_kernel_where_listed(monkeypatch):
    assert ops.native_backends("overlap_sums") == ("tensorflow", "torch")
    labels, predictions, _ = overlap_inputs(CASES[0][0])
    calls = []
    if BACKEND == "torch":
        import torch

        module, attribute = torch, "addcmul"
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        module, attribute = tf, "reshape"
    else:
        # jax runs the reference, which XLA fuses under jit.
        return
    original = getattr(module, attribute)

    def spy(tensor, *args, **kwargs):
        calls.append(np.asarray(args[0]).tolist() if attribute == "reshape" else attribute)
        return original(tensor, *args, **kwargs)

    monkeypatch.setattr(module, attribute, spy)

    backend_gradient(
        lambda x: keras.ops.sum(ops.overlap_sums(labels, x, None, (0, 1))[0]), predictions
    )

    if BACKEND == "torch":
        # The backward pass of the native function: one addcmul for the predictions.
        assert calls == ["addcmul"]
    else:
        # 2048 rows summed as 8 rows of 256 x 3 values, then 256 rows of 3.
        assert [8, 768] in calls and [256, 3] in calls
