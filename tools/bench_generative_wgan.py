"""Times one WGAN-GP critic step with the gradient penalty against one without it.

A critic step is the critic loss on a real and a fake batch and its gradient
with respect to the critic's weights (the optimizer update, the same in both,
is left out). The critic is an MLP ``D -> H -> H -> 1`` with ReLU, written with
``keras.ops`` on one flat weight vector, so the shared harness
(``benchmarking.time_pairs``) differentiates with respect to that vector:

- ``wasserstein``: ``mean D(fake) - mean D(real)``;
- ``wasserstein + penalty``: plus ``compute_gradient_penalty`` (10.0), whose
  input gradient is differentiated again (double backprop).

Compiled as a training step is on the current backend (``jax.jit``,
``tf.function(jit_compile=True)``, eager torch unless ``--torch-compile``);
calls interleaved in a fresh shuffled order each round; median times and
their ratio. The penalty adds an input-gradient pass through the critic and
its backward pass (double backprop); measured ratios were 1.6 (jax, tensorflow)
and 2.1 (eager torch) on a shared 2-core CPU.

    KERAS_BACKEND=jax python tools/bench_generative_wgan.py --repetitions 200
"""

import argparse
import sys

import keras
import numpy as np
from benchmarking import (
    add_timing_arguments,
    compile_mode,
    parse_timing_arguments,
    print_ratio_table,
    time_pairs,
)

from dl_techniques.losses.generative.gradient_penalty import compute_gradient_penalty

BASELINE = "wasserstein"


def critic_fn(features, hidden):
    """Returns ``critic(x, weights)`` for an MLP whose weights are one flat vector."""
    shapes = [(features, hidden), (hidden,), (hidden, hidden), (hidden,), (hidden, 1), (1,)]
    sizes = [int(np.prod(shape)) for shape in shapes]
    offsets = np.cumsum([0, *sizes])

    def critic(samples, weights):
        tensors = [
            keras.ops.reshape(weights[start:stop], shape)
            for start, stop, shape in zip(offsets[:-1], offsets[1:], shapes, strict=True)
        ]
        hidden_1 = keras.ops.relu(keras.ops.matmul(samples, tensors[0]) + tensors[1])
        hidden_2 = keras.ops.relu(keras.ops.matmul(hidden_1, tensors[2]) + tensors[3])
        return keras.ops.matmul(hidden_2, tensors[4]) + tensors[5]

    return critic, int(offsets[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--features", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    add_timing_arguments(parser, repetitions=200, warmup=10)
    arguments = parse_timing_arguments(parser)

    critic, weight_count = critic_fn(arguments.features, arguments.hidden)
    rng = np.random.default_rng(0)
    batches = rng.normal(size=(2, arguments.batch, arguments.features)).astype("float32")
    weights = rng.normal(scale=0.1, size=weight_count).astype("float32")
    samples = keras.ops.convert_to_tensor(batches)
    weights = keras.ops.convert_to_tensor(weights)

    def wasserstein(real_and_fake, critic_weights):
        real_scores = critic(real_and_fake[0], critic_weights)
        fake_scores = critic(real_and_fake[1], critic_weights)
        return keras.ops.mean(fake_scores) - keras.ops.mean(real_scores)

    def wasserstein_with_penalty(real_and_fake, critic_weights):
        penalty = compute_gradient_penalty(
            lambda values: critic(values, critic_weights),
            real_and_fake[0],
            real_and_fake[1],
            lambda_gp=10.0,
            seed=0,
        )
        return wasserstein(real_and_fake, critic_weights) + penalty

    steps = [("wasserstein + penalty", wasserstein_with_penalty), (BASELINE, wasserstein)]
    medians = time_pairs(
        [(label, fn, samples, weights) for label, fn in steps],
        arguments.repetitions,
        arguments.warmup,
        arguments.torch_compile,
    )

    backend = keras.backend.backend()
    mode = compile_mode(arguments.torch_compile)
    print(
        f"backend {backend} ({mode}); critic {arguments.features}-{arguments.hidden}-"
        f"{arguments.hidden}-1, batch {arguments.batch} real + {arguments.batch} fake; "
        f"loss + gradient w.r.t. the critic weights, median of {arguments.repetitions}"
    )
    print_ratio_table("critic step", [label for label, _ in steps], medians, BASELINE, "us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
