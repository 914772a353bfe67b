"""Times the segmentation losses dice and lovasz against keras.losses.Dice, and lovasz's growth.

Each timed call is one forward pass plus the gradient with respect to
``y_pred``, compiled the way a training step is on the current backend:

- jax: ``jax.jit(jax.value_and_grad(...))``;
- tensorflow: ``tf.function(jit_compile=True)`` around a ``GradientTape``;
- torch: eager autograd by default; ``--torch-compile`` wraps the forward
  function in ``torch.compile`` instead (minutes of compile time on CPU).

Two tables:

1. On ``(batch, 128, 128, 19)`` softmax probabilities and one-hot targets,
   the same inputs in the same run, calls interleaved in a fresh shuffled
   order each round: ``create_segmentation_loss_function("dice")``,
   ``create_segmentation_loss_function("lovasz")`` and the baseline
   ``keras.losses.Dice`` (which pools every class into one Dice, so it does
   less work than the per-class mean).
2. Lovasz-softmax at 64x64, 128x128 and 256x256: the median time, its ratio
   to the smallest size, and the ratios of ``P`` and ``P log P`` over the
   same sizes, ``P = batch * height * width`` being the pixels each class
   sorts. A time ratio that follows ``P log P`` (and not ``P^2``) shows the
   sort-based O(P log P) implementation.

    KERAS_BACKEND=jax python tools/bench_vision.py --repetitions 30
"""

import argparse
import math
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

from dl_techniques.losses.vision.segmentation_loss import create_segmentation_loss_function
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig

BASELINE = "keras.losses.Dice"
GROWTH_SIZES = (64, 128, 256)


def segmentation_inputs(rng, batch, size, classes):
    """One-hot targets and softmax probabilities of shape ``(batch, size, size, classes)``."""
    labels = rng.integers(0, classes, size=(batch, size, size))
    one_hot = np.eye(classes, dtype="float32")[labels]
    logits = rng.normal(size=(batch, size, size, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    return (
        keras.ops.convert_to_tensor(one_hot),
        keras.ops.convert_to_tensor(probabilities.astype("float32")),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--classes", type=int, default=19)
    add_timing_arguments(parser, repetitions=30, warmup=3)
    arguments = parse_timing_arguments(parser)

    rng = np.random.default_rng(0)
    config = SegmentationLossConfig(num_classes=arguments.classes)
    dice = create_segmentation_loss_function("dice", config)
    lovasz = create_segmentation_loss_function("lovasz", config)

    y_true, y_pred = segmentation_inputs(rng, arguments.batch, 128, arguments.classes)
    losses = [("dice", dice), ("lovasz", lovasz), (BASELINE, keras.losses.Dice())]
    medians = time_pairs(
        [(label, loss, y_true, y_pred) for label, loss in losses],
        arguments.repetitions,
        arguments.warmup,
        arguments.torch_compile,
    )

    backend = keras.backend.backend()
    mode = compile_mode(arguments.torch_compile)
    print(
        f"backend {backend} ({mode}); forward + gradient w.r.t. y_pred, median of "
        f"{arguments.repetitions}"
    )
    print(f"input ({arguments.batch}, 128, 128, {arguments.classes})")
    print_ratio_table("loss", [label for label, _ in losses], medians, BASELINE, "ms")

    growth = {}
    for size in GROWTH_SIZES:
        y_true, y_pred = segmentation_inputs(rng, arguments.batch, size, arguments.classes)
        growth[size] = time_pairs(
            [("lovasz", lovasz, y_true, y_pred)],
            arguments.repetitions,
            arguments.warmup,
            arguments.torch_compile,
        )["lovasz"]
    print()
    print(f"lovasz growth, ({arguments.batch}, S, S, {arguments.classes})")
    header = f"{'S':>5}{'ms':>10}{'time ratio':>12}{'P ratio':>10}{'P log P ratio':>15}"
    print(header)
    print("-" * len(header))
    smallest = GROWTH_SIZES[0]
    pixels_smallest = arguments.batch * smallest * smallest
    for size in GROWTH_SIZES:
        pixels = arguments.batch * size * size
        print(
            f"{size:>5}{growth[size] * 1e3:>10.2f}{growth[size] / growth[smallest]:>12.2f}"
            f"{pixels / pixels_smallest:>10.2f}"
            f"{pixels * math.log(pixels) / (pixels_smallest * math.log(pixels_smallest)):>15.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
