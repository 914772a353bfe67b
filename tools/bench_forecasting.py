"""Times each forecasting loss against a plain keras.ops baseline of the same formula.

Each timed call is one forward pass plus the gradient with respect to
``y_pred``, compiled the way a training step is on the current backend:

- jax: ``jax.jit(jax.value_and_grad(...))``;
- tensorflow: ``tf.function(jit_compile=True)`` around a ``GradientTape``;
- torch: eager autograd by default (what Keras' torch backend runs unless
  ``model.compile(jit_compile=True)`` is asked for); ``--torch-compile`` wraps
  the forward function in ``torch.compile`` instead (minutes of compile time
  on CPU, so off by default).

Pairs (ours vs baseline), on the same inputs in the same run, calls
interleaved so machine load hits both alike; the table shows median times:

- HuberLoss vs ``keras.losses.Huber``;
- MQLoss vs an inline ``keras.ops`` pinball loss averaged over quantiles;
- MASELoss vs an inline ``keras.ops`` MASE (concatenated history + target);
- SMAPELoss vs an inline ``keras.ops`` sMAPE.

The inline baselines return one value per sample and are wrapped in a
minimal ``keras.losses.Loss`` subclass, as ``model.compile(loss=fn)`` wraps a
function, so both sides go through the same Keras reduction. The baselines
skip the safety of the library losses (shape checks, the safe denominators
that keep 0/0 finite), so the ratio is what that safety costs.
Target: ratio <= 1.1. ``--threads`` pins torch's intra-op threads, which
steadies eager timings on a shared machine.

    KERAS_BACKEND=jax python tools/bench_forecasting.py --repetitions 300
"""

import argparse
import sys

import keras
import numpy as np
from benchmarking import add_timing_arguments, compile_mode, parse_timing_arguments, time_pairs

from dl_techniques.losses.forecasting import HuberLoss, MASELoss, MQLoss, SMAPELoss

QUANTILES = (0.1, 0.5, 0.9)


def inline_pinball(y_true, y_pred):
    quantiles = keras.ops.convert_to_tensor(QUANTILES, dtype=y_pred.dtype)
    error = keras.ops.expand_dims(y_true, axis=-1) - y_pred
    pinball = keras.ops.maximum(quantiles * error, (quantiles - 1.0) * error)
    return keras.ops.mean(pinball, axis=(1, 2))


def inline_mase(seasonality):
    def mase(history_and_target, y_pred):
        horizon = y_pred.shape[1]
        history = history_and_target[:, :-horizon]
        target = history_and_target[:, -horizon:]
        scale = keras.ops.mean(
            keras.ops.abs(history[:, seasonality:] - history[:, :-seasonality]), axis=1
        )
        return keras.ops.mean(keras.ops.abs(target - y_pred), axis=1) / scale

    return mase


def inline_smape(y_true, y_pred):
    ratio = 2.0 * keras.ops.abs(y_true - y_pred) / (keras.ops.abs(y_true) + keras.ops.abs(y_pred))
    return keras.ops.mean(ratio, axis=1)


class FunctionLoss(keras.losses.Loss):
    """A per-sample function as a Keras loss, as ``compile(loss=fn)`` wraps it."""

    def __init__(self, fn):
        super().__init__(name=fn.__name__)
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--history", type=int, default=192)
    parser.add_argument("--seasonality", type=int, default=24)
    add_timing_arguments(parser, repetitions=300, warmup=10)
    arguments = parse_timing_arguments(parser)

    rng = np.random.default_rng(0)
    shape = (arguments.batch, arguments.horizon)
    target = keras.ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))
    forecast = keras.ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))
    quantile_forecast = keras.ops.convert_to_tensor(
        rng.normal(size=(*shape, len(QUANTILES))).astype("float32")
    )
    history_and_target = keras.ops.convert_to_tensor(
        rng.normal(size=(arguments.batch, arguments.history + arguments.horizon)).astype("float32")
    )

    comparisons = [
        ("HuberLoss", HuberLoss(), "keras.losses.Huber", keras.losses.Huber(), target, forecast),
        (
            "MQLoss",
            MQLoss(quantiles=QUANTILES),
            "inline pinball",
            FunctionLoss(inline_pinball),
            target,
            quantile_forecast,
        ),
        (
            "MASELoss",
            MASELoss(seasonality=arguments.seasonality),
            "inline MASE",
            FunctionLoss(inline_mase(arguments.seasonality)),
            history_and_target,
            forecast,
        ),
        ("SMAPELoss", SMAPELoss(), "inline sMAPE", FunctionLoss(inline_smape), target, forecast),
    ]
    pairs = []
    for name, loss, baseline_name, baseline, y_true, y_pred in comparisons:
        pairs.append((name, loss, y_true, y_pred))
        pairs.append((baseline_name, baseline, y_true, y_pred))
    medians = time_pairs(pairs, arguments.repetitions, arguments.warmup, arguments.torch_compile)

    backend = keras.backend.backend()
    mode = compile_mode(arguments.torch_compile)
    print(
        f"backend {backend} ({mode}); batch {arguments.batch}, horizon {arguments.horizon}, "
        f"{len(QUANTILES)} quantiles, history {arguments.history}; forward + gradient "
        f"w.r.t. y_pred, median of {arguments.repetitions}"
    )
    header = f"{'loss':<11}{'us':>9}  {'baseline':<20}{'us':>9}  {'ratio':>6}"
    print(header)
    print("-" * len(header))
    worst = 0.0
    for name, _, baseline_name, *_ in comparisons:
        ours, theirs = medians[name] * 1e6, medians[baseline_name] * 1e6
        ratio = ours / theirs
        worst = max(worst, ratio)
        print(f"{name:<11}{ours:>9.1f}  {baseline_name:<20}{theirs:>9.1f}  {ratio:>6.2f}")
    print(f"worst ratio {worst:.2f} (target <= 1.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
