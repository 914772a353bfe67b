"""The timing harness of ``tools/bench.py`` and the ``Case`` its case modules define.

Each timed call is one forward pass plus the gradient with respect to
``y_pred``, compiled the way a training step is on the current backend
(``jax.jit``; ``tf.function(jit_compile=True)``; eager torch, what Keras runs
unless ``model.compile(jit_compile=True)`` is asked for, or ``torch.compile``),
and the functions are called in a fresh shuffled order each round so machine
load hits them alike. A ``TorchReference`` is timed in eager torch whatever the
Keras backend, on the same data (on the GPU where torch sees one), so a case
can put the native torch formula (``torch.nn.functional``) beside the library
on every backend.
"""

import dataclasses
import random
import statistics
import time
from collections.abc import Callable

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark of ``tools/bench.py``.

    ``run(params, timing)`` builds the workload from ``params`` (``params`` with
    the command line's ``--set`` overrides, parsed as the default's type), times
    it with ``timing`` (a ``Timing``) and prints its table. ``quick`` holds the
    sizes of ``--quick``, small enough to check in seconds that the case runs.
    """

    name: str
    summary: str
    run: Callable
    params: dict = dataclasses.field(default_factory=dict)
    quick: dict = dataclasses.field(default_factory=dict)
    repetitions: int = 30
    warmup: int = 3


@dataclasses.dataclass(frozen=True)
class TorchReference:
    """A native torch loss ``fn(y_true, y_pred) -> scalar``, timed in eager torch.

    Its inputs are the case's inputs as torch CPU tensors, converted once
    before timing; the gradient is taken with respect to ``y_pred``.
    """

    fn: Callable


EMPTY_STEP = "empty step"
"""The label of :func:`empty_step` in a case's timings."""


def empty_step(y_true, y_pred):
    """The sum of ``y_pred``: timed like a loss, the fixed cost of one compiled step.

    On jax and tf XLA this is the dispatch of a compiled function with these
    inputs and a gradient; in eager torch, one reduction and its backward.
    """
    return sum(keras.ops.sum(leaf) for leaf in keras.tree.flatten(y_pred))


def print_fixed_cost(medians, unit="us"):
    """Prints the median of :func:`empty_step` from ``medians``."""
    scale = {"us": 1e6, "ms": 1e3}[unit]
    print(
        f"fixed cost: an {EMPTY_STEP} (the sum of y_pred, compiled the same way) takes "
        f"{medians[EMPTY_STEP] * scale:.{1 if unit == 'us' else 3}f} {unit} on the same inputs"
    )


def torch_available():
    """Whether torch imports here, for the reference rows of a case."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_reference_note():
    """The line a case prints when it leaves out its torch reference rows."""
    return "torch is not installed here: no native torch reference rows"


@dataclasses.dataclass(frozen=True)
class Timing:
    """How a case times its functions: rounds, warm-up calls and torch compilation."""

    repetitions: int
    warmup: int
    torch_compile: bool

    def medians(self, pairs):
        """``time_pairs`` with these settings."""
        return time_pairs(pairs, self.repetitions, self.warmup, self.torch_compile)

    def print_header(self, workload):
        """Prints the backend, its compile mode, ``workload`` and the number of rounds."""
        print(
            f"backend {keras.backend.backend()} ({compile_mode(self.torch_compile)}); "
            f"{workload}, median of {self.repetitions}"
        )


def compiled_value_and_gradient(loss_fn, torch_compile):
    """Returns ``f(y_true, y_pred) -> (value, d value / d y_pred)``, compiled."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(jax.value_and_grad(lambda y_pred, y_true: loss_fn(y_true, y_pred)))
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def step(y_pred, y_true):
            with tf.GradientTape() as tape:
                tape.watch(y_pred)
                value = loss_fn(y_true, y_pred)
            return value, tape.gradient(value, y_pred)

        return step
    if backend == "torch":
        import torch

        forward = torch.compile(loss_fn) if torch_compile else loss_fn

        def step(y_pred, y_true):
            y_pred = y_pred.detach().requires_grad_(True)
            value = forward(y_true, y_pred)
            (gradient,) = torch.autograd.grad(value, y_pred)
            return value, gradient

        return step
    raise SystemExit(f"unsupported backend {backend!r}")


def torch_reference_step(reference, y_true, y_pred):
    """Returns ``step(y_pred, y_true)`` for a ``TorchReference`` and its inputs as torch tensors."""
    import torch

    device = torch_device()

    def to_torch(leaf):
        return torch.from_numpy(np.array(keras.ops.convert_to_numpy(leaf))).to(device)

    def step(y_pred, y_true):
        y_pred = y_pred.detach().requires_grad_(True)
        value = reference.fn(y_true, y_pred)
        (gradient,) = torch.autograd.grad(value, y_pred)
        return value, gradient

    return step, keras.tree.map_structure(to_torch, y_true), to_torch(y_pred)


def torch_device():
    """The device of the torch references: the GPU where torch sees one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def finish(outputs):
    """Waits for asynchronous work (jax dispatch, CUDA kernels) to finish the call.

    Eager torch on the CPU has finished when it returns.
    """
    for output in outputs:
        if not type(output).__module__.startswith("torch"):
            keras.ops.convert_to_numpy(output)
        elif output.is_cuda:
            import torch

            torch.cuda.synchronize()


def time_pairs(pairs, repetitions, warmup, torch_compile):
    """Returns ``{label: median seconds}``, the functions called in turn."""
    steps = {}
    for label, fn, y_true, y_pred in pairs:
        if isinstance(fn, TorchReference):
            steps[label] = torch_reference_step(fn, y_true, y_pred)
        else:
            steps[label] = (compiled_value_and_gradient(fn, torch_compile), y_true, y_pred)
    for step, y_true, y_pred in steps.values():
        for _ in range(warmup):
            finish(step(y_pred, y_true))
    samples = {label: [] for label in steps}
    order = list(steps)
    shuffler = random.Random(0)
    for _ in range(repetitions):
        # A fresh order each round, so no function always follows the same one.
        shuffler.shuffle(order)
        for label in order:
            step, y_true, y_pred = steps[label]
            started = time.perf_counter()
            finish(step(y_pred, y_true))
            samples[label].append(time.perf_counter() - started)
    return {label: statistics.median(times) for label, times in samples.items()}


def torch_cuda_peaks(pairs, torch_compile=False):
    """``{label: bytes}``: the peak GPU memory of one step of each torch function.

    The torch steps of ``pairs`` (``(label, fn, y_true, y_pred)`` as for
    ``time_pairs``): every ``TorchReference``, and the library's functions on
    the torch backend. Measured as the growth of ``torch.cuda``'s peak
    allocation over one step after a warm-up step; empty without torch or a
    GPU.
    """
    if not torch_available():
        return {}
    import torch

    if not torch.cuda.is_available():
        return {}
    peaks = {}
    for label, fn, y_true, y_pred in pairs:
        if isinstance(fn, TorchReference):
            step, y_true, y_pred = torch_reference_step(fn, y_true, y_pred)
        elif keras.backend.backend() == "torch":
            step = compiled_value_and_gradient(fn, torch_compile)
        else:
            continue
        finish(step(y_pred, y_true))
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        finish(step(y_pred, y_true))
        peaks[label] = torch.cuda.max_memory_allocated() - before
    return peaks


def print_cuda_peaks(peaks):
    """Prints ``torch_cuda_peaks``' table; nothing where it is empty."""
    if not peaks:
        return
    width = max(len(label) for label in peaks) + 2
    print("peak GPU memory of one step (torch.cuda.max_memory_allocated growth):")
    for label, peak in peaks.items():
        print(f"{label:<{width}}{peak / 2**20:>10.1f} MiB")


def pin_torch_threads(threads):
    """Pins torch's intra-op threads, which steadies eager timings on a shared machine."""
    if threads and keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(threads)


def compile_mode(torch_compile):
    """Names how ``compiled_value_and_gradient`` compiles on the current backend."""
    backend = keras.backend.backend()
    if backend == "torch":
        return "torch.compile" if torch_compile else "torch eager"
    return {"jax": "jax.jit", "tensorflow": "tf.function(jit_compile=True)"}[backend]


def print_ratio_table(title, labels, medians, baseline, unit="us", target=None):
    """Prints each label's median time and its ratio to ``baseline``.

    Args:
        title: The first column's heading.
        labels: The rows, in order; ``baseline`` among them.
        medians: ``{label: seconds}`` from ``time_pairs``.
        baseline: The label the ratios divide by.
        unit: ``"us"`` or ``"ms"``.
        target: When given, also prints the worst ratio of the other rows
            against this target.
    """
    scale = {"us": 1e6, "ms": 1e3}[unit]
    label_width = max(len(title), *(len(label) for label in labels)) + 2
    ratio_heading = f"ratio to {baseline}"
    header = f"{title:<{label_width}}{unit:>10}  {ratio_heading:>{len(ratio_heading) + 2}}"
    print(header)
    print("-" * len(header))
    for label in labels:
        ratio = medians[label] / medians[baseline]
        print(
            f"{label:<{label_width}}{medians[label] * scale:>10.2f}"
            f"  {ratio:>{len(ratio_heading) + 2}.2f}"
        )
    if target is not None:
        worst = max(medians[label] / medians[baseline] for label in labels if label != baseline)
        print(f"worst ratio {worst:.2f} (target <= {target})")


def print_pair_table(pairs, medians, unit="us", target=None):
    """Prints each function's median time next to its own baseline's, and their ratio.

    Args:
        pairs: ``(label, baseline label)`` rows, in order.
        medians: ``{label: seconds}`` from ``time_pairs``, holding both sides.
        unit: ``"us"`` or ``"ms"``.
        target: When given, also prints the worst ratio against this target.
    """
    scale = {"us": 1e6, "ms": 1e3}[unit]
    label_width = max(len("loss"), *(len(label) for label, _ in pairs)) + 2
    baseline_width = max(len("baseline"), *(len(baseline) for _, baseline in pairs)) + 2
    header = f"{'loss':<{label_width}}{unit:>10}  {'baseline':<{baseline_width}}{unit:>10}  ratio"
    print(header)
    print("-" * len(header))
    for label, baseline in pairs:
        ratio = medians[label] / medians[baseline]
        print(
            f"{label:<{label_width}}{medians[label] * scale:>10.1f}  "
            f"{baseline:<{baseline_width}}{medians[baseline] * scale:>10.1f}  {ratio:>5.2f}"
        )
    if target is not None:
        worst = max(medians[label] / medians[baseline] for label, baseline in pairs)
        print(f"worst ratio {worst:.2f} (target <= {target})")
