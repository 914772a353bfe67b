"""The timing harness the tools/bench_*.py scripts share.

Each timed call is one forward pass plus the gradient with respect to
``y_pred``, compiled the way a training step is on the current backend, and
the functions are called in a fresh shuffled order each round so machine load
hits them alike.
"""

import random
import statistics
import time

import keras


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


def finish(outputs):
    """Waits for asynchronous backends (jax dispatch) to finish the call."""
    for output in outputs:
        keras.ops.convert_to_numpy(output)


def time_pairs(pairs, repetitions, warmup, torch_compile):
    """Returns ``{label: median seconds}``, the functions called in turn."""
    steps = {}
    for label, fn, y_true, y_pred in pairs:
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


def add_timing_arguments(parser, repetitions, warmup):
    """Adds ``--repetitions``, ``--warmup``, ``--torch-compile`` and ``--threads``."""
    parser.add_argument("--repetitions", type=int, default=repetitions)
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--torch-compile", action="store_true")
    parser.add_argument("--threads", type=int, default=None)


def parse_timing_arguments(parser):
    """Parses the arguments and pins torch's intra-op threads to ``--threads``."""
    arguments = parser.parse_args()
    if arguments.threads and keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(arguments.threads)
    return arguments


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
