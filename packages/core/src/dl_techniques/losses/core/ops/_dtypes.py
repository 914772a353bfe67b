"""The Keras names of backend dtypes, cached."""

from typing import Any

import keras

# Keras' name of each backend dtype object seen so far: standardize_dtype walks
# a chain of tests, and losses ask for the name of every input on every call.
_DTYPE_NAMES: dict[Any, str] = {}


def dtype_name(tensor: Any) -> str:
    """The Keras name of ``tensor.dtype`` (``"float32"``): ``keras.backend.standardize_dtype``."""
    dtype = tensor.dtype
    try:
        return _DTYPE_NAMES[dtype]
    except KeyError:
        name = _DTYPE_NAMES[dtype] = keras.backend.standardize_dtype(dtype)
        return name
    except TypeError:
        return keras.backend.standardize_dtype(dtype)
