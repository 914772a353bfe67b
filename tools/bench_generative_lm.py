"""Times NanoVLMLoss against keras.losses.SparseCategoricalCrossentropy on LM-sized logits.

Each timed call is one forward pass plus the gradient with respect to the
logits, compiled the way a training step is on the current backend:

- jax: ``jax.jit(jax.value_and_grad(...))``;
- tensorflow: ``tf.function(jit_compile=True)`` around a ``GradientTape``;
- torch: eager autograd by default (what Keras' torch backend runs unless
  ``model.compile(jit_compile=True)`` is asked for); ``--torch-compile`` wraps
  the forward function in ``torch.compile`` instead.

All losses see the same ``(batch, length, vocab)`` float32 logits, by default
``(8, 512, 32000)`` (524 MB), and ``(batch, length)`` token ids. The ids
are all valid, since Keras' loss cannot take an ignore id such as -100;
``NanoVLMLoss`` treats ignored ids at the same cost (a masked safe id). Rows:

- ``NanoVLMLoss(shift=False)``: the same tokens Keras scores, so the ratio
  measures the loss's own overhead (masking, token mean);
- ``NanoVLMLoss()``: the default next-token form (``shift=True``);
- ``NanoVLMLoss(label_smoothing=0.1)``: one more gather and mean per token.

Calls are interleaved in a fresh shuffled order each round; the table shows
median times and the ratio to ``SparseCategoricalCrossentropy``. Target:
ratio <= 1.2. On eager torch ``NanoVLMLoss`` also checks the id range (one
host round trip per call), which the jit backends skip. ``--threads`` pins
torch's intra-op threads, which steadies eager timings on a shared machine.

    KERAS_BACKEND=jax python tools/bench_generative_lm.py --repetitions 10
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

from dl_techniques.losses.generative.nano_vlm_loss import NanoVLMLoss

BASELINE = "SparseCategoricalCrossentropy"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--vocab", type=int, default=32000)
    add_timing_arguments(parser, repetitions=10, warmup=2)
    arguments = parse_timing_arguments(parser)

    rng = np.random.default_rng(0)
    shape = (arguments.batch, arguments.length)
    labels = keras.ops.convert_to_tensor(rng.integers(0, arguments.vocab, size=shape), "int32")
    logits = keras.ops.convert_to_tensor(
        rng.standard_normal(size=(*shape, arguments.vocab), dtype=np.float32)
    )

    losses = [
        ("NanoVLMLoss(shift=False)", NanoVLMLoss(shift=False)),
        ("NanoVLMLoss()", NanoVLMLoss()),
        ("NanoVLMLoss(smoothing=0.1)", NanoVLMLoss(label_smoothing=0.1)),
        (BASELINE, keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
    ]
    medians = time_pairs(
        [(label, loss, labels, logits) for label, loss in losses],
        arguments.repetitions,
        arguments.warmup,
        arguments.torch_compile,
    )

    backend = keras.backend.backend()
    mode = compile_mode(arguments.torch_compile)
    print(
        f"backend {backend} ({mode}); logits {(*shape, arguments.vocab)}; "
        f"forward + gradient w.r.t. logits, median of {arguments.repetitions}"
    )
    print_ratio_table("loss", [label for label, _ in losses], medians, BASELINE, "ms", 1.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
