"""Times F1Loss and BrierScoreLoss against keras.losses.BinaryCrossentropy.

Each timed call is one forward pass plus the gradient with respect to
``y_pred``, compiled the way a training step is on the current backend:

- jax: ``jax.jit(jax.value_and_grad(...))``;
- tensorflow: ``tf.function(jit_compile=True)`` around a ``GradientTape``;
- torch: eager autograd by default (what Keras' torch backend runs unless
  ``model.compile(jit_compile=True)`` is asked for); ``--torch-compile`` wraps
  the forward function in ``torch.compile`` instead (minutes of compile time
  on CPU, so off by default).

All three losses see the same ``(batch, classes)`` input in the same run:
one-hot targets (valid for the Brier score's multi-class form and as
multi-label targets for F1 and cross-entropy) and softmax probabilities.
Calls are interleaved in a fresh shuffled order each round, so machine load
hits every loss alike; the table shows median times and the ratio to
``keras.losses.BinaryCrossentropy``. Target: ratio <= 1.5. On eager torch
the library losses also check label values (a host round trip per call),
which the jit backends skip. ``--threads`` pins torch's intra-op threads,
which steadies eager timings on a shared machine.

    KERAS_BACKEND=jax python tools/bench_classification.py --repetitions 300
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

from dl_techniques.losses.classification.brier_score_loss import BrierScoreLoss
from dl_techniques.losses.classification.f1_loss import F1Loss

BASELINE = "BinaryCrossentropy"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=16)
    add_timing_arguments(parser, repetitions=300, warmup=10)
    arguments = parse_timing_arguments(parser)

    rng = np.random.default_rng(0)
    classes = rng.integers(0, arguments.classes, size=arguments.batch)
    one_hot = np.eye(arguments.classes, dtype="float32")[classes]
    logits = rng.normal(size=(arguments.batch, arguments.classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y_true = keras.ops.convert_to_tensor(one_hot)
    y_pred = keras.ops.convert_to_tensor(probabilities.astype("float32"))

    losses = [
        ("F1Loss", F1Loss()),
        ("BrierScoreLoss", BrierScoreLoss()),
        (BASELINE, keras.losses.BinaryCrossentropy()),
    ]
    medians = time_pairs(
        [(label, loss, y_true, y_pred) for label, loss in losses],
        arguments.repetitions,
        arguments.warmup,
        arguments.torch_compile,
    )

    backend = keras.backend.backend()
    mode = compile_mode(arguments.torch_compile)
    print(
        f"backend {backend} ({mode}); input ({arguments.batch}, {arguments.classes}); "
        f"forward + gradient w.r.t. y_pred, median of {arguments.repetitions}"
    )
    print_ratio_table("loss", [label for label, _ in losses], medians, BASELINE, "us", 1.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
