"""Numeric helpers for loss tests, written once for every family.

A loss test compares what the backend computes with a float64 numpy reference.
These helpers are the pieces such a test needs around the reference:

- :func:`as_numpy`: a tensor, variable or structure of them as float64 numpy.
- :func:`central_differences`: the gradient of a numpy function, numerically.
- :func:`backend_gradient`: the gradient of a scalar function of a tensor, by
  the current backend's own differentiation (``tf.GradientTape``,
  ``jax.grad``, torch autograd), optionally compiled.
- :func:`assert_gradient_matches_central_differences`: the two above compared,
  the gradient check of a loss against its numpy reference.
- :func:`gradient_dtype` and :func:`float64_enabled`: the precision a gradient
  check can run in on the current backend.
- :func:`compiled`: a function compiled by the backend's tracing compiler.
- :func:`compiled_on_jax`: a function run as one ``jax.jit`` program on jax
  and eagerly elsewhere, for value tests of large losses.
- :func:`softmax`, :func:`log_softmax`, :func:`sigmoid`, :func:`entropy`:
  the float64 numpy pieces most references are built from.

Example:

```python
import keras
import numpy as np
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    backend_gradient,
    central_differences,
)

point = np.array([0.5, -1.0, 2.0])
numeric = central_differences(lambda x: x**3, point)
analytic = backend_gradient(lambda x: keras.ops.sum(x**3), point, dtype="float32")
np.testing.assert_allclose(analytic, numeric, rtol=1e-5)
np.testing.assert_allclose(as_numpy(keras.ops.square(point)), point**2)
```
"""

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import keras
import numpy as np

_TORCH_ARRAY_WARNING = r"__array__ implementation doesn't accept a copy keyword"


def as_numpy(value: Any) -> Any:
    """Returns a tensor, variable or array as a float64 numpy array.

    Mappings and tuples are converted leaf by leaf and keep their structure;
    anything else (a tensor, a ``keras.Variable``, a numpy array, a number or
    a list of numbers) becomes one array. Floating values keep every digit
    they have (a float64 tensor is not rounded through float32); integer and
    boolean values become their float64 equivalents.

    Args:
        value: A backend tensor, a ``keras.Variable``, array-like data, or a
            mapping or tuple of those.

    Returns:
        A float64 ``np.ndarray``, or the same structure of them.
    """
    if isinstance(value, Mapping):
        return {key: as_numpy(leaf) for key, leaf in value.items()}
    if isinstance(value, tuple):
        return tuple(as_numpy(leaf) for leaf in value)
    return _leaf_as_numpy(value)


def central_differences(
    fn: Callable[[np.ndarray], Any], point: Any, step: float = 1e-6
) -> np.ndarray:
    """Returns the gradient of ``sum(fn(point))`` by central differences.

    ```
    gradient[i] = (sum fn(point + step e_i) - sum fn(point - step e_i)) / (2 step)
    ```

    ``fn`` is called on float64 copies of ``point`` with one entry moved. It
    may return a scalar or an array; an array is summed, as
    :func:`dl_techniques.losses.core.gradients.input_gradient` sums, so a
    per-sample reference is compared with the gradient of its total.

    Args:
        fn: A numpy function of an array shaped like ``point``.
        point: Where the gradient is taken; converted to float64.
        step: The half-width of each difference.

    Returns:
        A float64 array shaped like ``point``.
    """
    point = np.array(point, dtype=np.float64)
    gradient = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        forward, backward = point.copy(), point.copy()
        forward[index] += step
        backward[index] -= step
        gradient[index] = (np.sum(fn(forward)) - np.sum(fn(backward))) / (2.0 * step)
    return gradient


def backend_gradient(
    fn: Callable[[Any], Any],
    point: Any,
    *,
    dtype: str | None = None,
    compiled: bool = False,
) -> np.ndarray:
    """Returns ``d fn(point) / d point`` by the current backend's autodiff.

    ``fn`` maps a tensor shaped like ``point`` to a scalar tensor. The gradient
    is taken with ``tf.GradientTape`` on tensorflow, ``jax.grad`` on jax and
    ``torch.autograd`` on torch; it does not go through
    :func:`dl_techniques.losses.core.gradients.input_gradient`, so it can check
    that function too.

    Args:
        fn: A scalar function of one tensor.
        point: Where the gradient is taken: a tensor or array-like data.
        dtype: The dtype ``point`` is converted to; by default the dtype Keras
            gives it.
        compiled: Whether to differentiate inside ``tf.function(jit_compile=True)``
            on tensorflow and ``jax.jit`` on jax; torch differentiates eagerly.

    Returns:
        The gradient as a float64 numpy array shaped like ``point``.

    Raises:
        ValueError: On a backend other than tensorflow, jax or torch.
    """
    tensor = keras.ops.convert_to_tensor(point, dtype=dtype)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def differentiate(values):
            with tf.GradientTape() as tape:
                tape.watch(values)
                result = fn(values)
            return tape.gradient(result, values)

        if compiled:
            differentiate = tf.function(differentiate, jit_compile=True)
        return as_numpy(differentiate(tensor))
    if backend == "jax":
        import jax

        differentiate = jax.grad(fn)
        if compiled:
            differentiate = jax.jit(differentiate)
        return as_numpy(differentiate(tensor))
    if backend == "torch":
        values = tensor.detach().requires_grad_(True)
        fn(values).backward()
        return as_numpy(values.grad)
    raise ValueError(
        f"backend_gradient: backend {backend!r} is not supported; use tensorflow, jax or torch."
    )


def assert_gradient_matches_central_differences(
    fn: Callable[[Any, str], Any],
    reference: Callable[[np.ndarray], Any],
    point: Any,
    *,
    rtol: float,
    atol: float = 0.0,
    float32_rtol: float | None = None,
    float32_atol: float | None = None,
    dtype: str | None = None,
    compiled: bool = False,
    step: float = 1e-6,
) -> np.ndarray:
    """Asserts that the backend's gradient of ``fn`` is the numerical gradient of ``reference``.

    ```
    analytic  = d fn(point, dtype) / d point           (backend_gradient)
    numerical = d sum(reference(point)) / d point      (central_differences, float64)
    |analytic - numerical| <= atol + rtol |numerical|  elementwise
    ```

    The check a loss test makes of its gradient: ``fn`` runs the loss on the
    backend and ``reference`` is the float64 numpy formula of the same value.
    ``fn`` receives the tensor and the dtype it is in, so the loss can compute
    in that dtype (``SomeLoss(dtype=dtype)``) rather than round through
    float32. Where the backend cannot compute in float64 (jax without x64, see
    :func:`gradient_dtype`) the gradient is a float32 one and the float32
    tolerances apply.

    Args:
        fn: ``fn(values, dtype)``, a scalar tensor: the loss at ``values``.
        reference: A numpy function of a float64 array shaped like ``point``;
            an array result is summed.
        point: Where both gradients are taken.
        rtol: Relative tolerance for a float64 gradient.
        atol: Absolute tolerance for a float64 gradient.
        float32_rtol: Relative tolerance for a gradient computed in float32
            (or a lower precision); ``rtol`` if None.
        float32_atol: Absolute tolerance for such a gradient; ``atol`` if None.
        dtype: The dtype ``point`` is converted to and ``fn`` computes in; by
            default :func:`gradient_dtype`.
        compiled: Whether the backend gradient is taken inside a compiled
            function (see :func:`backend_gradient`).
        step: The half-width of each central difference.

    Returns:
        The backend gradient, a float64 array shaped like ``point``, for
        further checks (finiteness, zeros at ignored positions).

    Raises:
        AssertionError: When the gradients differ beyond the tolerances.

    Example:

    ```python
    import keras
    import numpy as np
    from dl_techniques.losses.core.testing.numeric import (
        assert_gradient_matches_central_differences,
    )

    assert_gradient_matches_central_differences(
        lambda values, dtype: keras.ops.sum(keras.ops.softplus(values)),
        lambda values: np.logaddexp(0.0, values),
        np.array([0.5, -1.0, 2.0]),
        rtol=1e-6,
        float32_rtol=1e-4,
    )
    ```
    """
    dtype = dtype or gradient_dtype()
    with float64_enabled():
        analytic = backend_gradient(
            lambda values: fn(values, dtype), point, dtype=dtype, compiled=compiled
        )
    numerical = central_differences(reference, point, step=step)
    if dtype != "float64":
        rtol = rtol if float32_rtol is None else float32_rtol
        atol = atol if float32_atol is None else float32_atol
    np.testing.assert_allclose(
        analytic,
        numerical,
        rtol=rtol,
        atol=atol,
        err_msg=f"backend gradient ({dtype}) vs central differences of the reference",
    )
    return analytic


THOROUGH_VARIABLE = "DL_LOSSES_THOROUGH"


def thorough_run() -> bool:
    """Whether ``DL_LOSSES_THOROUGH`` asks for the thorough run (``dev.py test --thorough``)."""
    return os.environ.get(THOROUGH_VARIABLE, "") not in ("", "0")


def hypothesis_examples(count: int) -> int:
    """The number of hypothesis examples a property test draws on this backend.

    ``count`` everywhere but on jax, the slowest backend to compile each new
    input shape, where a third of it (at least 5) keeps the suite inside its
    time budget; ``DL_LOSSES_THOROUGH=1`` (``tools/dev.py test --thorough``)
    restores ``count`` there too.
    """
    if thorough_run() or keras.backend.backend() != "jax":
        return count
    return max(5, count // 3)


def gradient_dtype() -> str:
    """Returns the most precise float dtype the current backend computes in.

    ``"float64"`` on tensorflow and torch, and on jax where x64 is enabled
    (see :func:`float64_enabled`); ``"float32"`` on jax otherwise, since
    enabling x64 for one test would change every other test of the process.
    Gradient checks against :func:`central_differences` run in this dtype and
    choose their tolerance by it.
    """
    with warnings.catch_warnings():
        # jax without x64 warns that it truncates the probe to float32.
        warnings.simplefilter("ignore", UserWarning)
        probe = keras.ops.convert_to_tensor(np.zeros(1), dtype="float64")
    return keras.backend.standardize_dtype(probe.dtype)


@contextlib.contextmanager
def float64_enabled() -> Iterator[None]:
    """Lets jax build float64 arrays inside the block only; a no-op elsewhere."""
    if keras.backend.backend() == "jax":
        import jax

        with jax.enable_x64(True):
            yield
    else:
        yield


def compiled(
    fn: Callable[..., Any],
    *,
    jit_compile: bool = True,
    trace_torch: bool = False,
    fullgraph: bool = True,
) -> Callable[..., Any]:
    """Returns ``fn`` compiled by the current backend's tracing compiler.

    Inside the compiled function tensors are symbolic, as in a compiled
    training step, so a test can check what a loss does when it cannot read
    values.

    Args:
        fn: The function to compile.
        jit_compile: Whether tensorflow compiles with XLA
            (``tf.function(jit_compile=True)``) or only traces a graph.
        trace_torch: Whether torch traces ``fn`` with
            ``torch.compile(backend="eager")``; by default torch runs it
            eagerly.
        fullgraph: With ``trace_torch``, whether torch must trace ``fn`` as
            one graph. ``False`` lets it fall back to eager around what it
            cannot trace, so an exception ``fn`` raises reaches the caller as
            itself rather than wrapped in a torch compile error.

    Returns:
        ``jax.jit(fn)`` on jax, a ``tf.function`` on tensorflow, and ``fn`` or
        its ``torch.compile`` on torch.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit_compile)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "torch" and trace_torch:
        import torch

        return torch.compile(fn, backend="eager", fullgraph=fullgraph)
    return fn


def compiled_on_jax(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Returns ``jax.jit(fn)`` on jax and ``fn`` itself on the other backends.

    Eager jax compiles every operation anew for each new input shape (tens of
    milliseconds apiece on a CPU), so one eager call of a loss made of a few
    hundred operations, such as the YOLO detection loss, costs seconds for
    each shape a test uses; compiling the whole function costs one
    compilation. The values are those of the eager call: a value test on jax
    can use it freely. Tests of what happens only eagerly (value checks on
    the first eager call) must call the loss itself.

    Args:
        fn: The function of tensors (and structures of them) to run.

    Returns:
        ``jax.jit(fn)`` on jax, ``fn`` elsewhere.
    """
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    return fn


def softmax(logits: Any, axis: int = -1) -> np.ndarray:
    """Returns ``exp(logits) / sum exp(logits)`` along ``axis``, in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def log_softmax(logits: Any, axis: int = -1) -> np.ndarray:
    """Returns ``logits - log sum exp(logits)`` along ``axis``, in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def sigmoid(logits: Any) -> np.ndarray:
    """Returns ``1 / (1 + exp(-logits))``, in float64."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def entropy(probabilities: Any, axis: int = -1) -> np.ndarray:
    """Returns the Shannon entropy ``-sum p log p`` along ``axis``, in float64.

    Zero probabilities contribute nothing (``0 log 0 = 0``).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=axis)


def _leaf_as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, keras.Variable):
        value = value.value
    dtype = getattr(value, "dtype", None)
    if dtype is not None and keras.backend.standardize_dtype(dtype) == "bfloat16":
        # numpy has no bfloat16; float32 holds every bfloat16 value exactly.
        value = keras.ops.cast(value, "float32")
    with warnings.catch_warnings():
        # numpy 2 warns on every torch tensor Keras converts; the warning is
        # about torch, not about the loss under test, and would bury its report.
        warnings.filterwarnings("ignore", message=_TORCH_ARRAY_WARNING, category=DeprecationWarning)
        converted = keras.ops.convert_to_numpy(value)
    return np.asarray(converted, dtype=np.float64)


__all__ = [
    "as_numpy",
    "assert_gradient_matches_central_differences",
    "backend_gradient",
    "central_differences",
    "compiled",
    "entropy",
    "float64_enabled",
    "gradient_dtype",
    "log_softmax",
    "sigmoid",
    "softmax",
    "thorough_run",
]
