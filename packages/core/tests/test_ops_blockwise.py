"""core.ops.blockwise_softplus_sums: native path and keras.ops reference against numpy.

Value and both gradients of ``sum_i w_i out_i`` against their closed forms,
for block sizes that divide the columns, leave a short last block, and hold
every column at once, with and without a scale and a bias.
"""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import ops
from dl_techniques.losses.core.testing.numeric import as_numpy, backend_gradient, sigmoid

BACKEND = keras.backend.backend()
RNG = np.random.default_rng(5)
ROWS = RNG.normal(size=(6, 4)).astype("float32")
COLUMNS = RNG.normal(size=(9, 4)).astype("float32")
WEIGHTS = RNG.uniform(0.5, 2.0, size=6).astype("float32")
FUNCTIONS = [ops.blockwise_softplus_sums, ops.blockwise_softplus_sums_reference]


def numpy_logits(rows, columns, scale, bias):
    logits = rows.astype("float64") @ columns.astype("float64").T
    return logits * (1.0 if scale is None else scale) + (0.0 if bias is None else bias)


def weighted_sum(function, rows, columns, scale, bias, block_size):
    sums = function(rows, columns, scale, bias, block_size)
    return keras.ops.sum(sums * keras.ops.convert_to_tensor(WEIGHTS))


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("block_size", [1, 3, 4, 9, 16])
@pytest.mark.parametrize(("scale", "bias"), [(10.0, -10.0), (None, None), (2.0, None)])
def test_value_and_gradients_match_numpy(function, block_size, scale, bias):
    rows, columns = keras.ops.convert_to_tensor(ROWS), keras.ops.convert_to_tensor(COLUMNS)

    value = as_numpy(function(rows, columns, scale, bias, block_size))
    row_gradient = backend_gradient(
        lambda r: weighted_sum(function, r, columns, scale, bias, block_size), ROWS
    )
    column_gradient = backend_gradient(
        lambda c: weighted_sum(function, rows, c, scale, bias, block_size), COLUMNS
    )

    logits = numpy_logits(ROWS, COLUMNS, scale, bias)
    softplus = np.log1p(np.exp(-np.abs(logits))) + np.maximum(logits, 0.0)
    np.testing.assert_allclose(value, softplus.sum(-1), rtol=1e-5, atol=1e-5)
    # d out_i / d logit_ij = sigmoid(logit_ij); d logit_ij / d r_i = s c_j, / d c_j = s r_i.
    slopes = WEIGHTS[:, None] * sigmoid(logits) * (1.0 if scale is None else scale)
    np.testing.assert_allclose(row_gradient, slopes @ COLUMNS, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(column_gradient, slopes.T @ ROWS, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_gradients_match_the_one_block_value_under_compilation(function):
    def both_gradients(rows, columns):
        if BACKEND == "jax":
            import jax

            return jax.jit(
                jax.grad(lambda r, c: weighted_sum(function, r, c, 10.0, -10.0, 4), argnums=(0, 1))
            )(rows, columns)
        if BACKEND == "tensorflow":
            import tensorflow as tf

            @tf.function(jit_compile=True)
            def gradients(r, c):
                with tf.GradientTape() as tape:
                    tape.watch([r, c])
                    value = weighted_sum(function, r, c, 10.0, -10.0, 4)
                return tape.gradient(value, [r, c])

            return gradients(tf.constant(rows), tf.constant(columns))
        import torch

        r = torch.tensor(rows, requires_grad=True)
        c = torch.tensor(columns, requires_grad=True)
        compiled = torch.compile(
            lambda r, c: weighted_sum(function, r, c, 10.0, -10.0, 4), backend="eager"
        )
        compiled(r, c).backward()
        return r.grad, c.grad

    row_gradient, column_gradient = (as_numpy(g) for g in both_gradients(ROWS, COLUMNS))

    slopes = WEIGHTS[:, None] * sigmoid(numpy_logits(ROWS, COLUMNS, 10.0, -10.0)) * 10.0
    np.testing.assert_allclose(row_gradient, slopes @ COLUMNS, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(column_gradient, slopes.T @ ROWS, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(BACKEND != "torch", reason="the torch kernel's own autograd function")
def test_the_torch_kernel_sums_the_row_gradient_in_the_forward_pass():
    import torch

    rows = torch.tensor(ROWS, requires_grad=True)
    frozen = ops.blockwise_softplus_sums(torch.tensor(ROWS), torch.tensor(COLUMNS), 1.0, 0.0, 4)
    trained = ops.blockwise_softplus_sums(rows, torch.tensor(COLUMNS), 1.0, 0.0, 4)

    assert ops.native_backends("blockwise_softplus_sums") == ("torch",)
    assert frozen.grad_fn is None
    assert type(trained.grad_fn).__name__ == "BlockwiseSoftplusSumsBackward"
    (_, _, row_gradient) = trained.grad_fn.saved_tensors
    expected = sigmoid(numpy_logits(ROWS, COLUMNS, 1.0, 0.0)) @ COLUMNS
    np.testing.assert_allclose(row_gradient.numpy(), expected, rtol=1e-5, atol=1e-6)
