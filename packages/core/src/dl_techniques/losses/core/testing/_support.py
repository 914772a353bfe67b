"""Conversions and assertions shared by the conformance checks."""

import re

import keras
import numpy as np

# checks.py reads tensors through this name; the one definition is as_numpy.
from dl_techniques.losses.core.testing.numeric import as_numpy as to_numpy


def to_tensors(structure, float_dtype="float32"):
    """Converts every leaf to a backend tensor, floating leaves to ``float_dtype``."""

    def convert(leaf):
        tensor = keras.ops.convert_to_tensor(leaf)
        if is_floating(tensor):
            tensor = keras.ops.cast(tensor, float_dtype)
        return tensor

    return keras.tree.map_structure(convert, structure)


def loss_value(loss, y_true, y_pred, sample_weight=None):
    """Returns ``loss(y_true, y_pred[, sample_weight])`` as a float64 numpy array."""
    if sample_weight is None:
        return to_numpy(loss(to_tensors(y_true), to_tensors(y_pred)))
    return to_numpy(
        loss(to_tensors(y_true), to_tensors(y_pred), sample_weight=to_tensors(sample_weight))
    )


def assert_close(case, actual, expected, what, rtol=None, atol=None):
    """Raises ``AssertionError`` naming ``what`` unless the arrays agree."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    rtol = case.rtol if rtol is None else rtol
    atol = case.atol if atol is None else atol
    if actual.shape != expected.shape:
        fail(case, f"{what}: shape {actual.shape}, expected {expected.shape}.")
    if not np.allclose(actual, expected, rtol=rtol, atol=atol):
        difference = np.abs(actual - expected)
        largest = np.nanmax(difference) if np.any(~np.isnan(difference)) else np.nan
        fail(
            case,
            f"{what}: got {_summary(actual)}, expected {_summary(expected)}, "
            f"largest |difference| {largest:.3g} (rtol={rtol}, atol={atol}).",
        )


def file_stem(case_id):
    """Returns ``case_id`` made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", case_id) or "case"


def is_floating(value):
    """Returns whether a tensor (or Keras tensor) has a floating dtype."""
    return keras.backend.is_float_dtype(keras.backend.standardize_dtype(value.dtype))


def _summary(array):
    if array.size <= 6:
        return np.array2string(array, precision=7)
    return f"an array of shape {array.shape}"


def fail(case, message, cause=None):
    """Raises ``AssertionError`` with ``message`` prefixed by the case and class."""
    raise AssertionError(f"{case.case_id} ({case.loss_class.__name__}): {message}") from cause
