"""Value checks on loss inputs, run without a per-step device-to-host read.

A check on input values (labels in range, targets in {0, 1}, probabilities in
[0, 1], integer ids) has to read the tensor on the host. Inside a compiled
function there is nothing to read, and in an eager training loop on an
accelerator a read on every step would synchronise the device every step. So
value checks run on eager calls only, and only on the first eager call of a
loss instance, unless the environment variable ``DL_LOSSES_VALIDATE`` is
``always``, which checks every eager call.

A loss opts in by decorating the method that receives the inputs::

    class MyLoss(keras.losses.Loss):
        @validation.checks_values
        def call(self, y_true, y_pred):
            validation.check_binary("MyLoss", "y_true", y_true)
            ...

The ``check_*`` functions read values only while a check is due: outside a
decorated method (a plain function, a helper called directly) it is due on
every eager call. Shape checks are not value checks: they need no read and
always run.

Hyper-parameter checks (``check_positive``, ``check_interval``, ...) run in
constructors and raise ``ValueError`` naming the loss, the argument and the
value.
"""

import contextvars
import functools
import math
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import keras
import numpy as np

from dl_techniques.losses.core.numerics import holds_values

ENVIRONMENT_VARIABLE = "DL_LOSSES_VALIDATE"

_Method = TypeVar("_Method", bound=Callable[..., Any])

# Whether value checks are due in the current decorated call; None outside one.
_DUE: contextvars.ContextVar[bool | None] = contextvars.ContextVar("dl_losses_due", default=None)
# Set to True by a check that read values, so the call can be marked as checked.
_READ: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "dl_losses_read", default=None
)
_CHECKED_ATTRIBUTE = "_dl_losses_values_checked"


def always_validate() -> bool:
    """Whether ``DL_LOSSES_VALIDATE=always`` asks for checks on every eager call."""
    return os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() == "always"


def checks_values(method: _Method) -> _Method:
    """Makes the value checks inside ``method`` run on the first eager call only.

    The instance is marked as checked once a call in which a check read values
    returns without raising; a call that raised, or a traced call in which no
    check could read anything, leaves it unmarked, so the next eager call
    checks again. Inside another decorated call (a loss built from losses) the
    outermost call decides.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _torch_compiling() or _DUE.get() is not None:
            return method(self, *args, **kwargs)
        due = always_validate() or not getattr(self, _CHECKED_ATTRIBUTE, False)
        read: list[bool] = []
        due_token = _DUE.set(due)
        read_token = _READ.set(read)
        try:
            result = method(self, *args, **kwargs)
        finally:
            _DUE.reset(due_token)
            _READ.reset(read_token)
        if read:
            _mark_checked(self)
        return result

    return wrapper  # type: ignore[return-value]


def values_due(*tensors: Any) -> bool:
    """Whether a value check on ``tensors`` should read them now.

    True when every tensor holds values (eager, not traced) and the current
    call is due for checks: always outside a decorated method, on the first
    eager call of the instance inside one.
    """
    if not all(holds_values(tensor) for tensor in tensors) or _tracing_jax():
        return False
    if _DUE.get() is False:
        return False
    read = _READ.get()
    if read is not None:
        read.append(True)
    return True


def check_in_range(
    owner: str,
    argument: str,
    tensor: Any,
    low: float,
    high: float,
    hint: str = "",
) -> None:
    """Raises ``ValueError`` when ``tensor`` has values outside ``[low, high]``.

    NaN is not outside the interval: a NaN input is left to propagate to a NaN
    loss, never turned into an error message about its range.
    """
    if not values_due(tensor):
        return
    tensor = keras.ops.convert_to_tensor(tensor)
    outside = keras.ops.logical_or(tensor < low, tensor > high)
    _raise_if_any(
        outside,
        tensor,
        lambda count, total: (
            f"{owner}: `{argument}` must lie in [{low}, {high}]; {count} of {total} entries "
            f"(shape {_shape(tensor)}) are outside, from {_minimum(tensor)} to "
            f"{_maximum(tensor)}.{_sentence(hint)}"
        ),
    )


def check_probabilities(owner: str, argument: str, tensor: Any) -> None:
    """Raises ``ValueError`` for probabilities outside [0, 1] (``from_logits=False``)."""
    check_in_range(
        owner,
        argument,
        tensor,
        0.0,
        1.0,
        hint="Pass from_logits=True if these are logits.",
    )


def check_binary(owner: str, argument: str, tensor: Any, what: str = "targets") -> None:
    """Raises ``ValueError`` when ``tensor`` holds values other than 0 and 1.

    For one-hot or binary targets, and masks, where the math assumes hard
    labels. NaN entries are left to propagate.
    """
    if not values_due(tensor):
        return
    tensor = keras.ops.convert_to_tensor(tensor)
    if keras.backend.standardize_dtype(tensor.dtype) == "bool":
        return
    other = keras.ops.logical_or(
        keras.ops.logical_and(tensor > 0, tensor < 1),
        keras.ops.logical_or(tensor < 0, tensor > 1),
    )
    _raise_if_any(
        other,
        tensor,
        lambda count, total: (
            f"{owner}: `{argument}` must hold {what} equal to 0 or 1; {count} of {total} "
            f"entries (shape {_shape(tensor)}) are other values, from {_minimum(tensor)} to "
            f"{_maximum(tensor)}."
        ),
    )


def check_integers(
    owner: str,
    argument: str,
    tensor: Any,
    low: int | None = None,
    high: int | None = None,
    ignore: int | None = None,
) -> None:
    """Raises ``ValueError`` for ids with a fraction or outside ``[low, high)``.

    ``ignore`` is an id accepted wherever it appears (an ``ignore_index``).
    """
    if not values_due(tensor):
        return
    tensor = keras.ops.convert_to_tensor(tensor)
    if "int" in keras.backend.standardize_dtype(tensor.dtype):
        bad = keras.ops.zeros(keras.ops.shape(tensor), dtype="bool")
        values = tensor
    else:
        values = keras.ops.cast(tensor, "float32")
        bad = keras.ops.not_equal(values, keras.ops.floor(values))
    if low is not None:
        bad = keras.ops.logical_or(bad, values < low)
    if high is not None:
        bad = keras.ops.logical_or(bad, values >= high)
    if ignore is not None:
        bad = keras.ops.logical_and(bad, keras.ops.not_equal(values, ignore))
    if low is None and high is None:
        rule = "integers"
    else:
        rule = f"integers in [{'-inf' if low is None else low}, {'inf' if high is None else high})"
    if ignore is not None:
        rule += f" or the ignore id {ignore}"
    _raise_if_any(
        bad,
        tensor,
        lambda count, total: (
            f"{owner}: `{argument}` must hold {rule}; {count} of {total} entries "
            f"(shape {_shape(tensor)}) are not, from {_minimum(tensor)} to {_maximum(tensor)}."
        ),
    )


def check_finite(owner: str, argument: str, tensor: Any, consequence: str = "") -> None:
    """Raises ``ValueError`` when ``tensor`` holds NaN or an infinity."""
    if not values_due(tensor):
        return
    tensor = keras.ops.convert_to_tensor(tensor)
    non_finite = keras.ops.logical_not(keras.ops.isfinite(tensor))
    _raise_if_any(
        non_finite,
        tensor,
        lambda count, total: (
            f"{owner}: `{argument}` must be finite; {count} of {total} entries "
            f"(shape {_shape(tensor)}) are NaN or infinite.{_sentence(consequence)}"
        ),
    )


def _raise_if_any(bad: Any, tensor: Any, message: Callable[[int, int], str]) -> None:
    count = int(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.cast(bad, "int32"))))
    if count:
        raise ValueError(f"{message(count, math.prod(_shape(tensor)))}{_examples(bad, tensor)}")


def _examples(bad: Any, tensor: Any, limit: int = 3) -> str:
    flags = np.asarray(keras.ops.convert_to_numpy(bad)).reshape(-1)
    values = np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32")))
    positions = np.flatnonzero(flags)[:limit]
    listed = ", ".join(
        f"{values.reshape(-1)[position]:g} at index "
        f"{tuple(int(i) for i in np.unravel_index(position, values.shape))}"
        for position in positions
    )
    return f" First: {listed}."


def _tracing_jax() -> bool:
    # Concrete arrays captured by a jitted function hold values, but what is
    # computed from them there is traced: nothing can be read.
    if keras.backend.backend() != "jax":
        return False
    import jax

    return isinstance(jax.numpy.zeros(()), jax.core.Tracer)


def _torch_compiling() -> bool:
    # torch.compile cannot trace a ContextVar; nothing can be read there anyway.
    if keras.backend.backend() != "torch":
        return False
    import torch

    return torch.compiler.is_compiling()


def _mark_checked(instance: Any) -> None:
    # object.__setattr__ keeps Keras' attribute tracking on layers out of it.
    object.__setattr__(instance, _CHECKED_ATTRIBUTE, True)


def _shape(tensor: Any) -> tuple[int, ...]:
    return tuple(int(size) for size in keras.ops.shape(tensor))


def _minimum(tensor: Any) -> float:
    return _extreme(tensor, keras.ops.min)


def _maximum(tensor: Any) -> float:
    return _extreme(tensor, keras.ops.max)


def _extreme(tensor: Any, reduce: Callable[[Any], Any]) -> float:
    values = keras.ops.cast(tensor, "float32")
    finite = keras.ops.isfinite(values)
    if not bool(keras.ops.convert_to_numpy(keras.ops.any(finite))):
        return float("nan")
    fill = float("inf") if reduce is keras.ops.min else float("-inf")
    return float(keras.ops.convert_to_numpy(reduce(keras.ops.where(finite, values, fill))))


def _sentence(text: str) -> str:
    return f" {text}" if text else ""


def is_real_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (booleans excluded)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_bool(owner: str, argument: str, value: Any) -> None:
    """Raises ``ValueError`` unless the hyper-parameter ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: `{argument}` must be a bool; got {argument}={value!r}.")


def check_positive(owner: str, argument: str, value: Any) -> None:
    """Raises ``ValueError`` unless ``value`` is a finite number > 0."""
    if not (is_real_number(value) and value > 0):
        raise ValueError(
            f"{owner}: `{argument}` must be a finite number > 0; got {argument}={value!r}."
        )


def check_non_negative(owner: str, argument: str, value: Any) -> None:
    """Raises ``ValueError`` unless ``value`` is a finite number >= 0."""
    if not (is_real_number(value) and value >= 0):
        raise ValueError(
            f"{owner}: `{argument}` must be a finite number >= 0; got {argument}={value!r}."
        )


def check_interval(owner: str, argument: str, value: Any, low: float, high: float) -> None:
    """Raises ``ValueError`` unless ``value`` is a number in the closed ``[low, high]``."""
    if not (is_real_number(value) and low <= value <= high):
        raise ValueError(
            f"{owner}: `{argument}` must be a number in [{low:g}, {high:g}]; "
            f"got {argument}={value!r}."
        )


def check_positive_int(owner: str, argument: str, value: Any) -> None:
    """Raises ``ValueError`` unless ``value`` is an integer >= 1 (booleans excluded)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"{owner}: `{argument}` must be an integer >= 1; got {argument}={value!r}."
        )


def check_choice(owner: str, argument: str, value: Any, choices: Sequence[Any]) -> None:
    """Raises ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(
            f"{owner}: `{argument}` must be one of {listed}; got {argument}={value!r}."
        )
