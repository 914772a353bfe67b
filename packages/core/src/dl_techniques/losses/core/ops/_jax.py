"""The JAX kernels of the primitives that :func:`native_backends` lists for it.

The framework is imported inside :func:`kernels`, which the dispatch calls on the
first call that needs a kernel: nothing in a loss imports a framework at import.
"""

from collections.abc import Callable
from typing import Any

import keras


def kernels() -> dict[str, Callable[..., Any]]:
    """The JAX kernels by primitive name; the dispatch builds them once."""
    import jax

    def lgamma(x):
        return jax.lax.lgamma(keras.ops.convert_to_tensor(x))

    def softmax_expectation(logits):
        # One division per row after the two sums: dividing every exponential
        # first (the reference) made XLA's CPU backend write the broadcast
        # reciprocal out as a tensor of the logits' size.
        logits = keras.ops.convert_to_tensor(logits)
        peak = jax.lax.stop_gradient(jax.numpy.max(logits, axis=-1, keepdims=True))
        weights = jax.numpy.exp(logits - peak)
        bins = jax.numpy.arange(logits.shape[-1], dtype=logits.dtype)
        return jax.numpy.sum(weights * bins, axis=-1) / jax.numpy.sum(weights, axis=-1)

    return {"lgamma": lgamma, "softmax_expectation": softmax_expectation}
