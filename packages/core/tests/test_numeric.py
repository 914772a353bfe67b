"""The numeric test helpers on the current Keras backend, against hand-derived values."""

import math

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.testing import numeric
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    backend_gradient,
    central_differences,
    compiled,
    entropy,
    float64_enabled,
    gradient_dtype,
    log_softmax,
    sigmoid,
    softmax,
)

BACKEND = keras.backend.backend()


def test_as_numpy_gives_float64_of_every_tensor_dtype():
    for dtype in ("float16", "bfloat16", "float32", "int32", "bool"):
        array = as_numpy(keras.ops.cast(keras.ops.convert_to_tensor([0.0, 1.0, 2.0]), dtype))
        assert array.dtype == np.float64
        np.testing.assert_array_equal(array, [0.0, 1.0, 1.0] if dtype == "bool" else [0, 1, 2])


def test_as_numpy_keeps_float64_digits():
    with float64_enabled():
        tensor = keras.ops.convert_to_tensor(np.array([1.0 + 1e-12]), "float64")
        assert as_numpy(tensor)[0] == 1.0 + 1e-12


def test_as_numpy_reads_variables_arrays_and_numbers():
    variable = keras.Variable(np.array([[1.5, -2.0]], "float32"))
    np.testing.assert_array_equal(as_numpy(variable), [[1.5, -2.0]])
    assert as_numpy(np.float32(0.25)).dtype == np.float64
    np.testing.assert_array_equal(as_numpy([1, 2]), [1.0, 2.0])


def test_as_numpy_converts_mappings_and_tuples_leaf_by_leaf():
    structure = {"scores": keras.ops.ones((2,)), "pair": (keras.ops.zeros((1,)), 3)}
    converted = as_numpy(structure)
    assert set(converted) == {"scores", "pair"}
    np.testing.assert_array_equal(converted["scores"], [1.0, 1.0])
    assert isinstance(converted["pair"], tuple)
    np.testing.assert_array_equal(converted["pair"][0], [0.0])
    assert converted["pair"][1] == 3.0


def test_central_differences_of_a_cubic_match_its_derivative():
    point = np.array([[0.5, -1.0], [2.0, 0.0]])
    gradient = central_differences(lambda x: np.sum(x**3 + np.sin(x)), point)
    np.testing.assert_allclose(gradient, 3 * point**2 + np.cos(point), rtol=1e-8, atol=1e-8)


def test_central_differences_sum_an_array_valued_function():
    point = np.array([1.0, -2.0, 0.5])
    weights = np.array([2.0, 3.0, -1.0])
    gradient = central_differences(lambda x: weights * np.exp(x), point)
    np.testing.assert_allclose(gradient, weights * np.exp(point), rtol=1e-8)


def test_central_differences_work_in_float64_on_float32_points():
    point = np.array([1.0, 3.0], "float32")
    gradient = central_differences(lambda x: np.log(x).sum(), point, step=1e-7)
    assert gradient.dtype == np.float64
    np.testing.assert_allclose(gradient, 1.0 / point.astype("float64"), rtol=1e-7)


@pytest.mark.parametrize("compile_it", [False, True], ids=["eager", "compiled"])
def test_backend_gradient_of_a_quadratic_is_twice_the_point(compile_it):
    point = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.5]], "float32")
    gradient = backend_gradient(
        lambda x: keras.ops.sum(keras.ops.square(x)), point, compiled=compile_it
    )
    assert gradient.dtype == np.float64
    assert gradient.shape == point.shape
    np.testing.assert_allclose(gradient, 2.0 * point, rtol=1e-6)


def test_backend_gradient_agrees_with_central_differences():
    point = np.random.default_rng(0).normal(size=(3, 4))
    dtype = gradient_dtype()
    gradient = backend_gradient(
        lambda x: keras.ops.sum(keras.ops.tanh(x) * keras.ops.exp(0.5 * x)), point, dtype=dtype
    )
    expected = central_differences(lambda x: np.tanh(x) * np.exp(0.5 * x), point)
    tolerance = {"rtol": 1e-7} if dtype == "float64" else {"rtol": 1e-5, "atol": 1e-6}
    np.testing.assert_allclose(gradient, expected, **tolerance)


def test_gradient_dtype_is_float64_except_on_jax_without_x64():
    assert gradient_dtype() == ("float32" if BACKEND == "jax" else "float64")
    with float64_enabled():
        assert gradient_dtype() == "float64"
    assert gradient_dtype() == ("float32" if BACKEND == "jax" else "float64")


def test_compiled_function_gives_the_eager_value():
    def affine(x, scale):
        return keras.ops.sum(x * scale) + 1.0

    x = keras.ops.convert_to_tensor([1.0, 2.0, 3.0])
    scale = keras.ops.convert_to_tensor(2.0)
    for kwargs in (
        {},
        {"jit_compile": False},
        {"trace_torch": True},
        {"trace_torch": True, "fullgraph": False},
    ):
        np.testing.assert_allclose(as_numpy(compiled(affine, **kwargs)(x, scale)), 13.0)


@pytest.mark.parametrize("trace_torch", [False, True])
def test_compiled_runs_traced_except_eager_torch(trace_torch):
    traced = []

    def record(x):
        traced.append(_is_tracing(x))
        return x + 1.0

    compiled(record, trace_torch=trace_torch)(keras.ops.ones((2,)))
    assert traced == [BACKEND != "torch" or trace_torch]


def _is_tracing(tensor):
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly()
    if BACKEND == "jax":
        import jax

        return isinstance(tensor, jax.core.Tracer)
    import torch

    return torch.compiler.is_compiling()


def test_softmax_and_log_softmax_are_stable_float64():
    logits = np.array([[1000.0, 1000.0 + math.log(3.0)], [0.0, 0.0]], "float32")
    probabilities = softmax(logits)
    assert probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities, [[0.25, 0.75], [0.5, 0.5]], rtol=1e-4)
    np.testing.assert_allclose(log_softmax(logits), np.log(probabilities), rtol=1e-12)
    np.testing.assert_allclose(softmax(logits.T, axis=0), probabilities.T)


def test_sigmoid_is_the_logistic_function():
    np.testing.assert_allclose(sigmoid([0.0, math.log(3.0), -math.log(3.0)]), [0.5, 0.75, 0.25])
    assert sigmoid(np.float32(1.0)).dtype == np.float64


def test_entropy_in_nats_with_zero_log_zero():
    probabilities = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(
        entropy(probabilities), [math.log(2.0), 0.0, 1.5 * math.log(2.0)], rtol=1e-12
    )
    np.testing.assert_allclose(entropy(probabilities.T, axis=0), entropy(probabilities))


def test_hypothesis_examples_are_cut_on_jax_unless_thorough(monkeypatch):
    monkeypatch.delenv(numeric.THOROUGH_VARIABLE, raising=False)
    expected = 8 if keras.backend.backend() == "jax" else 25
    assert numeric.hypothesis_examples(25) == expected
    assert numeric.hypothesis_examples(6) == (5 if keras.backend.backend() == "jax" else 6)
    monkeypatch.setenv(numeric.THOROUGH_VARIABLE, "1")
    assert numeric.hypothesis_examples(25) == 25
