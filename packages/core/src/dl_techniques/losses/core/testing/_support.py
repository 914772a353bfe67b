"""Conversions and assertions shared by the conformance checks."""

import re
import warnings

import keras
import numpy as np

_TORCH_ARRAY_WARNING = r"__array__ implementation doesn't accept a copy keyword"


def to_tensors(structure, float_dtype="float32"):
    """Converts every leaf to a backend tensor, floating leaves to ``float_dtype``."""

    def convert(leaf):
        tensor = keras.ops.convert_to_tensor(leaf)
        if is_floating(tensor):
            tensor = keras.ops.cast(tensor, float_dtype)
        return tensor

    return keras.tree.map_structure(convert, structure)


def to_numpy(value):
    """Returns a tensor as a float64 numpy array."""
    with warnings.catch_warnings():
        # numpy 2 warns on every torch tensor Keras converts; the warning is
        # about torch, not about the loss under test, and would bury its report.
        warnings.filterwarnings("ignore", message=_TORCH_ARRAY_WARNING, category=DeprecationWarning)
        converted = keras.ops.convert_to_numpy(keras.ops.cast(value, "float32"))
    return np.asarray(converted, dtype=np.float64)


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
