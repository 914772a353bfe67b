"""Dtype handling shared by the losses."""

import keras

_HALF_DTYPES = ("float16", "bfloat16")


def upcast_half(tensor):
    """Returns ``tensor`` as float32 when it is float16 or bfloat16.

    Losses compute in float32 for half-precision inputs and let Keras cast the
    result back to the loss dtype.
    """
    tensor = keras.ops.convert_to_tensor(tensor)
    if keras.backend.standardize_dtype(tensor.dtype) in _HALF_DTYPES:
        return keras.ops.cast(tensor, "float32")
    return tensor


def as_float(tensor, like):
    """Returns ``tensor`` cast to the floating dtype of ``like``."""
    return keras.ops.cast(tensor, keras.backend.standardize_dtype(like.dtype))


def holds_values(tensor):
    """Whether ``tensor`` holds values that can be read on the host now.

    False while a function is traced or compiled (``tf.function``, ``jax.jit``,
    ``torch.compile``): a check on input values then has nothing to read, and
    reading would break the compiled graph. Keras has no public op for this, so
    each backend's own test is asked, imported lazily.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    if backend == "jax":
        import jax

        return not isinstance(tensor, jax.core.Tracer)
    if backend == "torch":
        import torch

        return not torch.compiler.is_compiling()
    return True
