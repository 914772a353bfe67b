"""Dtypes and safe arithmetic shared by the losses."""

from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch
from dl_techniques.losses.core.ops._dtypes import dtype_name

HALF_DTYPES = ("float16", "bfloat16")
"""Floating dtypes a loss computes in float32 instead."""


def compute_dtype(dtype: str) -> str:
    """Returns the dtype a loss computes in: float32 for a half dtype, else ``dtype``."""
    if dtype == "float32":
        return dtype
    return "float32" if keras.backend.standardize_dtype(dtype) in HALF_DTYPES else dtype


def as_tensor(value: Any, dtype: str | None = None) -> Any:
    """``value`` as ``keras.ops.convert_to_tensor(value, dtype)`` gives it.

    A backend tensor already on Keras' device and of ``dtype`` (a Keras dtype
    name) is returned as it is: losses call this on every input of every
    call, and the identity conversion and cast it skips cost microseconds of
    dispatch per eager call, which a training step pays several times over
    once the large tensors of the step have pushed the interpreter's state out
    of the caches. On torch (``ops.native_backends('as_tensor')``) a
    ``torch.Tensor`` is checked against Keras' device and dtype directly.
    """
    return _dispatch("as_tensor", as_tensor_reference)(value, dtype)


def as_tensor_reference(value: Any, dtype: str | None = None) -> Any:
    """:func:`as_tensor` through ``keras.ops``: a backend tensor is cast only when needed."""
    if not keras.ops.is_tensor(value) or isinstance(value, keras.Variable):
        return keras.ops.convert_to_tensor(value, dtype)
    if dtype is None or dtype_name(value) == dtype:
        return value
    return keras.ops.cast(value, dtype)


def upcast_half(tensor):
    """Returns ``tensor`` as float32 when it is float16 or bfloat16.

    Losses compute in float32 for half-precision inputs and let Keras cast the
    result back to the loss dtype.
    """
    tensor = as_tensor(tensor)
    if dtype_name(tensor) in HALF_DTYPES:
        return keras.ops.cast(tensor, "float32")
    return tensor


def as_float(tensor, like):
    """Returns ``tensor`` cast to the floating dtype of ``like``."""
    return as_tensor(tensor, dtype_name(like))


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


def safe_divide(numerator: Any, denominator: Any, empty_value: float = 0.0) -> Any:
    """``numerator / denominator``, and ``empty_value`` where the denominator is 0.

    For ratios of non-negative sums (a mean over a possibly empty set, a Dice
    ratio of an absent class). The gradient stays finite where the denominator
    is 0. NaN is divided through, never replaced: ``NaN > 0`` is false, so a
    test of the denominator alone would turn a NaN input into ``empty_value``.
    On torch the same operations run as torch calls (``ops.native_backends``
    lists it): seven ``keras.ops`` dispatches cost more than the division of
    a batch of per-sample sums.
    """
    return _dispatch("safe_divide", safe_divide_reference)(numerator, denominator, empty_value)


def safe_divide_reference(numerator: Any, denominator: Any, empty_value: float = 0.0) -> Any:
    """:func:`safe_divide` in ``keras.ops``."""
    numerator = keras.ops.convert_to_tensor(numerator)
    denominator = keras.ops.convert_to_tensor(denominator)
    not_a_number = keras.ops.logical_or(keras.ops.isnan(numerator), keras.ops.isnan(denominator))
    divisible = keras.ops.logical_or(denominator > 0, not_a_number)
    ratio = numerator / keras.ops.where(divisible, denominator, keras.ops.ones_like(denominator))
    return keras.ops.where(divisible, ratio, keras.ops.cast(empty_value, ratio.dtype))


def weighted_mean(values: Any, weights: Any, axis: int | tuple[int, ...] | None = None) -> Any:
    """``sum(w v) / sum(w)`` over ``axis`` (all axes by default); 0 where ``sum(w)`` is 0.

    ``weights`` broadcast against ``values``; with frequency weights an
    integer weight ``k`` counts a value ``k`` times.
    """
    values = keras.ops.convert_to_tensor(values)
    weights = keras.ops.broadcast_to(
        as_float(keras.ops.convert_to_tensor(weights), values), keras.ops.shape(values)
    )
    total = keras.ops.sum(weights, axis=axis)
    return safe_divide(keras.ops.sum(values * weights, axis=axis), total)
