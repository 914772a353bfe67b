"""Each forecasting loss against a plain keras.ops baseline of the same formula.

Pairs (ours vs baseline), on the same inputs in the same run:

- HuberLoss vs ``keras.losses.Huber``;
- MQLoss vs an inline ``keras.ops`` pinball loss averaged over quantiles;
- MASELoss vs an inline ``keras.ops`` MASE (concatenated history + target);
- SMAPELoss vs an inline ``keras.ops`` sMAPE.

The inline baselines return one value per sample and are wrapped in a minimal
``keras.losses.Loss`` subclass, as ``model.compile(loss=fn)`` wraps a function,
so both sides go through the same Keras reduction. The baselines skip the
safety of the library losses (shape checks, the safe denominators that keep 0/0
finite), so the ratio is what that safety costs. Target: ratio <= 1.1.

Where torch is installed, a second table times each loss against the native
torch formula in eager torch on the same data (``F.huber_loss``; the pinball
loss, MASE and sMAPE written with ``torch`` ops), on every Keras backend.
"""

import keras
import numpy as np
from benchmarking import (
    EMPTY_STEP,
    Case,
    TorchReference,
    empty_step,
    print_fixed_cost,
    print_pair_table,
    torch_available,
    torch_reference_note,
)

from dl_techniques.losses.forecasting import HuberLoss, MASELoss, MQLoss, SMAPELoss


def quantile_grid(count):
    """``count`` evenly spaced quantiles in (0, 1): 0.1, ..., 0.9 for 9."""
    return tuple(float(q) for q in np.linspace(0.0, 1.0, count + 2)[1:-1].round(6))


def inline_pinball(quantiles):
    def pinball(y_true, y_pred):
        levels = keras.ops.convert_to_tensor(quantiles, dtype=y_pred.dtype)
        error = keras.ops.expand_dims(y_true, axis=-1) - y_pred
        values = keras.ops.maximum(levels * error, (levels - 1.0) * error)
        return keras.ops.mean(values, axis=(1, 2))

    return pinball


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


def torch_references(seasonality, quantiles):
    """``{loss name: (reference label, TorchReference)}``: the formulas in eager torch."""
    import torch
    import torch.nn.functional as functional

    def pinball(y_true, y_pred):
        levels = torch.tensor(quantiles, dtype=y_pred.dtype)
        error = y_true.unsqueeze(-1) - y_pred
        return torch.maximum(levels * error, (levels - 1.0) * error).mean()

    def mase(history_and_target, y_pred):
        horizon = y_pred.shape[1]
        history, target = history_and_target[:, :-horizon], history_and_target[:, -horizon:]
        scale = (history[:, seasonality:] - history[:, :-seasonality]).abs().mean(dim=1)
        return ((target - y_pred).abs().mean(dim=1) / scale).mean()

    def smape(y_true, y_pred):
        return (2.0 * (y_true - y_pred).abs() / (y_true.abs() + y_pred.abs())).mean()

    return {
        "HuberLoss": ("F.huber_loss", TorchReference(lambda t, p: functional.huber_loss(p, t))),
        "MQLoss": ("torch pinball", TorchReference(pinball)),
        "MASELoss": ("torch MASE", TorchReference(mase)),
        "SMAPELoss": ("torch sMAPE", TorchReference(smape)),
    }


def run_forecasting(params, timing):
    batch, horizon, history = params["batch"], params["horizon"], params["history"]
    seasonality = params["seasonality"]
    quantiles = quantile_grid(params["quantiles"])
    rng = np.random.default_rng(0)

    def tensor(*shape):
        return keras.ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))

    target = tensor(batch, horizon)
    forecast = tensor(batch, horizon)
    quantile_forecast = tensor(batch, horizon, len(quantiles))
    history_and_target = tensor(batch, history + horizon)

    comparisons = [
        ("HuberLoss", HuberLoss(), "keras.losses.Huber", keras.losses.Huber(), target, forecast),
        (
            "MQLoss",
            MQLoss(quantiles=quantiles),
            "inline pinball",
            FunctionLoss(inline_pinball(quantiles)),
            target,
            quantile_forecast,
        ),
        (
            "MASELoss",
            MASELoss(seasonality=seasonality),
            "inline MASE",
            FunctionLoss(inline_mase(seasonality)),
            history_and_target,
            forecast,
        ),
        ("SMAPELoss", SMAPELoss(), "inline sMAPE", FunctionLoss(inline_smape), target, forecast),
    ]
    references = torch_references(seasonality, quantiles) if torch_available() else {}
    timed = []
    for name, loss, baseline_name, baseline, y_true, y_pred in comparisons:
        timed.append((name, loss, y_true, y_pred))
        timed.append((baseline_name, baseline, y_true, y_pred))
        if name in references:
            reference_name, reference = references[name]
            timed.append((reference_name, reference, y_true, y_pred))
    timed.append((EMPTY_STEP, empty_step, target, forecast))
    medians = timing.medians(timed)
    timing.print_header(
        f"batch {batch}, horizon {horizon}, {len(quantiles)} quantiles, history {history}; "
        "forward + gradient w.r.t. y_pred"
    )
    pairs = [(name, baseline_name) for name, _, baseline_name, *_ in comparisons]
    print_pair_table(pairs, medians, "us", 1.1)
    print_fixed_cost(medians)
    print()
    if references:
        print("against the native torch formula, eager torch, same data:")
        pairs = [(name, references[name][0]) for name, *_ in comparisons]
        print_pair_table(pairs, medians, "us")
    else:
        print(torch_reference_note())


CASES = [
    Case(
        "forecasting",
        "HuberLoss, MQLoss, MASELoss, SMAPELoss vs keras.ops baselines (target ratio <= 1.1)",
        run_forecasting,
        params={"batch": 4096, "horizon": 256, "history": 512, "seasonality": 24, "quantiles": 9},
        quick={"batch": 8, "horizon": 12, "history": 24, "seasonality": 4, "quantiles": 3},
        repetitions=100,
        warmup=10,
    )
]
