"""The name scope a loss call runs in."""

import contextlib
from typing import Any

import keras

_NO_SCOPE = contextlib.nullcontext()


def loss_name_scope(name: str) -> Any:
    """``keras.name_scope(name)``, the scope of Keras' ``Loss.__call__``, where it names anything.

    Under TensorFlow it names the graph's operations, and under jax it names
    the compiled operations (``jax.named_scope``) for profilers. Under torch
    it only prefixes the paths of variables created inside it, and a loss call
    creates none, so there it is skipped: entering it costs about 10 us of an
    eager training step once the step's large tensors have pushed it out of
    the caches.
    """
    if keras.backend.backend() == "torch":
        return _NO_SCOPE
    return keras.name_scope(name)
