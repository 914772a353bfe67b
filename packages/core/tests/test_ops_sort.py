"""core.ops.sort: native and reference paths give numpy's ascending sort, without gradient."""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import ops
from dl_techniques.losses.core.testing.numeric import as_numpy, backend_gradient, compiled

BACKEND = keras.backend.backend()
FUNCTIONS = [ops.sort, ops.sort_reference]
RNG = np.random.default_rng(5)
# Ties, negative values and both signs of zero, in rows of (2, 3, 40).
INTEGERS = RNG.integers(-6, 6, size=(2, 3, 40)).astype("int32")
FLOATS = np.round(RNG.normal(size=(2, 3, 40)), 1).astype("float32")
FLOATS[0, 0, :4] = [0.0, -0.0, 0.0, -0.0]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("values", [INTEGERS, FLOATS], ids=["int32", "float32"])
@pytest.mark.parametrize("jit", [False, True])
def test_sort_orders_each_row_ascending_like_numpy(function, values, jit):
    run = compiled(function) if jit else function

    result = as_numpy(run(keras.ops.convert_to_tensor(values)))

    np.testing.assert_array_equal(result, np.sort(values, axis=-1))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_sorted_values_carry_no_gradient(function):
    weights = keras.ops.convert_to_tensor(RNG.normal(size=FLOATS.shape).astype("float32"))

    gradient = backend_gradient(
        lambda x: keras.ops.sum(function(x) * weights) + keras.ops.sum(x), FLOATS
    )

    np.testing.assert_array_equal(gradient, np.ones(FLOATS.shape))


def test_sort_runs_xla_sort_on_tensorflow(monkeypatch):
    assert ops.native_backends("sort") == ("tensorflow",)
    if BACKEND != "tensorflow":
        return
    from tensorflow.compiler.tf2xla.python import xla

    calls = []
    original = xla.sort

    def spy(values, *args, **kwargs):
        calls.append(tuple(values.shape))
        return original(values, *args, **kwargs)

    monkeypatch.setattr(xla, "sort", spy)

    ops.sort(keras.ops.convert_to_tensor(INTEGERS))

    assert calls == [INTEGERS.shape]
