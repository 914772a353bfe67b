"""Which primitives have a native kernel on which backend, and the choice of path.

A primitive calls ``_dispatch`` with its name and its ``keras.ops`` reference and
gets the current backend's native kernel where ``_NATIVE_NAMES`` lists that
backend, the reference otherwise. A backend's kernels come from ``kernels()`` of
the module named after it, built once: for Keras' backend when ``core.ops`` is
imported (:func:`preload_native_kernels`), for another on the first call that
needs them.
"""

import importlib
from collections.abc import Callable
from typing import Any

import keras

_NATIVE_NAMES: dict[str, frozenset[str]] = {
    "as_tensor": frozenset({"torch"}),
    "blockwise_softplus_sums": frozenset({"torch"}),
    "softmax_cross_entropy": frozenset({"tensorflow", "torch"}),
    "sigmoid_cross_entropy": frozenset({"tensorflow", "torch"}),
    "softmax_expectation": frozenset({"jax"}),
    "huber": frozenset({"torch"}),
    "huber_mean": frozenset({"torch"}),
    "lgamma": frozenset({"jax", "tensorflow", "torch"}),
    "lgamma_increment": frozenset({"torch"}),
    "mean": frozenset({"torch"}),
    "l2_normalize": frozenset({"torch"}),
    "lovasz_absolute_errors": frozenset({"torch"}),
    "overlap_sums": frozenset({"tensorflow", "torch"}),
    "pairwise_distances": frozenset({"torch"}),
    "pairwise_where": frozenset({"torch"}),
    "safe_divide": frozenset({"torch"}),
    "rowwise_where": frozenset({"torch"}),
    "soft_confusion_counts": frozenset({"torch"}),
    "sort": frozenset({"tensorflow"}),
    "sort_descending": frozenset({"torch"}),
}


def native_backends(primitive: str) -> tuple[str, ...]:
    """The backends on which ``primitive`` (a function name here) runs a native kernel."""
    if primitive not in _NATIVE_NAMES:
        raise ValueError(
            f"native_backends: unknown primitive {primitive!r}; "
            f"expected one of {sorted(_NATIVE_NAMES)}."
        )
    return tuple(sorted(_NATIVE_NAMES[primitive]))


def _dispatch(primitive: str, reference: Callable[..., Any]) -> Callable[..., Any]:
    backend = keras.backend.backend()
    if backend not in _NATIVE_NAMES[primitive]:
        return reference
    kernels = _KERNELS.get(backend)
    if kernels is None:
        kernels = _load_native_kernels(backend)
    return kernels[primitive]


# The built kernels by backend. A plain dict, not a cached loader: torch.compile
# traces through functools.cache into the import, which it cannot trace.
_KERNELS: dict[str, dict[str, Callable[..., Any]]] = {}


def _load_native_kernels(backend: str) -> dict[str, Callable[..., Any]]:
    # Imported on first use, not at the top: the kernels use helpers of the
    # primitives' modules, which import this one.
    module = importlib.import_module(f"{__package__}._{backend}")
    _KERNELS[backend] = module.kernels()
    return _KERNELS[backend]


def preload_native_kernels() -> None:
    """Builds the kernels of Keras' backend now, if it has any.

    Keras has imported that backend's framework already, so this imports
    nothing new. A first call of a primitive inside ``torch.compile`` (or a
    jit trace) must find them built: the tracer cannot import a module.
    """
    backend = keras.backend.backend()
    if backend not in _KERNELS and any(backend in names for names in _NATIVE_NAMES.values()):
        _load_native_kernels(backend)
