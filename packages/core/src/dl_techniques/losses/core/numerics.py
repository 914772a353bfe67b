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
