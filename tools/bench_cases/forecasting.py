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
    print_cuda_peaks,
    print_fixed_cost,
    print_pair_table,
    torch_available,
    torch_cuda_peaks,
    torch_reference_note,
)

from dl_techniques.losses.forecasting import (
    CRPSLoss,
    GaussianNLL,
    HuberLoss,
    MASELoss,
    MQLoss,
    NegativeBinomialNLL,
    PoissonNLL,
    SMAPELoss,
    StudentTNLL,
    TweedieLoss,
)


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
        levels = torch.tensor(quantiles, dtype=y_pred.dtype, device=y_pred.device)
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
    print_cuda_peaks(torch_cuda_peaks([row for row in timed if row[0] != EMPTY_STEP]))


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


def inline_ensemble_crps(y_true, samples):
    # The pairwise form, O(S^2) per element.
    accuracy = keras.ops.mean(keras.ops.abs(samples - keras.ops.expand_dims(y_true, -1)), axis=-1)
    pairs = keras.ops.abs(keras.ops.expand_dims(samples, -1) - keras.ops.expand_dims(samples, -2))
    crps = accuracy - 0.5 * keras.ops.mean(pairs, axis=(-2, -1))
    return keras.ops.mean(crps, axis=1)


def inline_gaussian_crps(y_true, head):
    sigma = keras.ops.softplus(head[..., 1]) + 1e-6
    z = (y_true - head[..., 0]) / sigma
    density = keras.ops.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    crps = sigma * (z * keras.ops.erf(z / np.sqrt(2.0)) + 2.0 * density - 1.0 / np.sqrt(np.pi))
    return keras.ops.mean(crps, axis=1)


def inline_gaussian_nll(y_true, head):
    sigma = keras.ops.softplus(head[..., 1]) + 1e-6
    z = (y_true - head[..., 0]) / sigma
    return keras.ops.mean(keras.ops.log(sigma) + 0.5 * np.log(2.0 * np.pi) + 0.5 * z * z, axis=1)


def inline_poisson_without_log_factorial(counts, head):
    rate = keras.ops.softplus(head[..., 0]) + 1e-6
    return keras.ops.mean(rate - counts * keras.ops.log(rate), axis=1)


def inline_tweedie(power):
    def tweedie(counts, log_mu):
        cross = counts * keras.ops.exp((1.0 - power) * log_mu) / (1.0 - power)
        mean = keras.ops.exp((2.0 - power) * log_mu) / (2.0 - power)
        target = keras.ops.power(counts, 2.0 - power) / ((1.0 - power) * (2.0 - power))
        return keras.ops.mean(2.0 * (target - cross + mean), axis=1)

    return tweedie


def torch_distribution_references(power):
    """``{loss name: (label, TorchReference)}``: ``torch.distributions`` in eager torch."""
    import torch
    import torch.nn.functional as functional

    def positive(raw):
        return functional.softplus(raw) + 1e-6

    def ensemble_crps(y_true, samples):
        accuracy = (samples - y_true.unsqueeze(-1)).abs().mean(dim=-1)
        spread = torch.cdist(
            samples.reshape(-1, samples.shape[-1], 1),
            samples.reshape(-1, samples.shape[-1], 1),
            p=1,
        )
        return (accuracy.reshape(-1) - 0.5 * spread.mean(dim=(-2, -1))).mean()

    def gaussian_crps(y_true, head):
        normal = torch.distributions.Normal(0.0, 1.0)
        sigma = positive(head[..., 1])
        z = (y_true - head[..., 0]) / sigma
        pdf = normal.log_prob(z).exp()
        return (sigma * (z * (2.0 * normal.cdf(z) - 1.0) + 2.0 * pdf - np.pi**-0.5)).mean()

    def nll(distribution):
        return lambda y_true, head: -distribution(head).log_prob(y_true).mean()

    def negative_binomial(head):
        mu, alpha = positive(head[..., 0]), positive(head[..., 1])
        return torch.distributions.NegativeBinomial(1.0 / alpha, probs=mu / (mu + 1.0 / alpha))

    def tweedie(counts, log_mu):
        cross = counts * torch.exp((1.0 - power) * log_mu) / (1.0 - power)
        mean = torch.exp((2.0 - power) * log_mu) / (2.0 - power)
        target = counts.pow(2.0 - power) / ((1.0 - power) * (2.0 - power))
        return (2.0 * (target - cross + mean)).mean()

    distributions = {
        "GaussianNLL": lambda h: torch.distributions.Normal(h[..., 0], positive(h[..., 1])),
        "StudentTNLL": lambda h: torch.distributions.StudentT(
            2.0 + functional.softplus(h[..., 2]), h[..., 0], positive(h[..., 1])
        ),
        "PoissonNLL": lambda h: torch.distributions.Poisson(positive(h[..., 0])),
        "NegativeBinomialNLL": negative_binomial,
    }
    references = {
        name: (f"torch {name.removesuffix('NLL')}.log_prob", TorchReference(nll(make)))
        for name, make in distributions.items()
    }
    references["CRPSLoss ensemble"] = ("torch cdist CRPS", TorchReference(ensemble_crps))
    references["CRPSLoss gaussian"] = ("torch Normal CRPS", TorchReference(gaussian_crps))
    references["TweedieLoss"] = ("torch Tweedie deviance", TorchReference(tweedie))
    return references


def run_probabilistic(params, timing):
    """CRPSLoss (ensemble and Gaussian forms), the likelihood heads and TweedieLoss.

    Each is paired with an inline ``keras.ops`` formula where Keras has the ops
    for one (it has no lgamma: StudentTNLL and NegativeBinomialNLL have none,
    and the Poisson baseline drops ``log y!``); the ensemble baseline is the
    pairwise O(S^2) form that CRPSLoss replaces by a sort. A second table pairs
    each with ``torch.distributions`` (or the torch formula) in eager torch.
    """
    batch, horizon, samples = params["batch"], params["horizon"], params["samples"]
    power = 1.5
    rng = np.random.default_rng(1)

    def tensor(values):
        return keras.ops.convert_to_tensor(np.asarray(values, dtype="float32"))

    target = tensor(rng.normal(size=(batch, horizon)))
    counts = tensor(rng.poisson(3.0, size=(batch, horizon)))
    ensemble = tensor(rng.normal(size=(batch, horizon, samples)))

    def head(parameters):
        return tensor(rng.normal(size=(batch, horizon, parameters)))

    gaussian_head = head(2)
    comparisons = [
        (
            "CRPSLoss ensemble",
            CRPSLoss(),
            "inline pairwise CRPS",
            inline_ensemble_crps,
            target,
            ensemble,
        ),
        (
            "CRPSLoss gaussian",
            CRPSLoss(form="gaussian"),
            "inline Gaussian CRPS",
            inline_gaussian_crps,
            target,
            gaussian_head,
        ),
        (
            "GaussianNLL",
            GaussianNLL(),
            "inline Gaussian NLL",
            inline_gaussian_nll,
            target,
            gaussian_head,
        ),
        ("StudentTNLL", StudentTNLL(), None, None, target, head(3)),
        (
            "PoissonNLL",
            PoissonNLL(),
            "inline rate - y log rate",
            inline_poisson_without_log_factorial,
            counts,
            head(1),
        ),
        ("NegativeBinomialNLL", NegativeBinomialNLL(), None, None, counts, head(2)),
        (
            "TweedieLoss",
            TweedieLoss(power=power),
            "inline Tweedie deviance",
            inline_tweedie(power),
            counts,
            head(1)[..., 0],
        ),
    ]
    references = torch_distribution_references(power) if torch_available() else {}
    timed = [(name, loss, y_true, y_pred) for name, loss, _, _, y_true, y_pred in comparisons]
    timed += [
        (label, FunctionLoss(formula), y_true, y_pred)
        for _, _, label, formula, y_true, y_pred in comparisons
        if formula is not None
    ]
    timed += [
        (*references[name], y_true, y_pred)
        for name, _, _, _, y_true, y_pred in comparisons
        if name in references
    ]
    medians = timing.medians([*timed, (EMPTY_STEP, empty_step, target, ensemble)])
    timing.print_header(
        f"batch {batch}, horizon {horizon}, {samples} ensemble samples; "
        "forward + gradient w.r.t. y_pred"
    )
    print("against inline keras.ops formulas (the Poisson baseline drops log y!):")
    pairs = [
        (name, baseline_name)
        for name, _, baseline_name, baseline, *_ in comparisons
        if baseline is not None
    ]
    print_pair_table(pairs, medians, "us")
    print_fixed_cost(medians)
    print()
    if references:
        print("against torch.distributions and the torch formulas, eager torch, same data:")
        pairs = [(name, references[name][0]) for name, *_ in comparisons]
        print_pair_table(pairs, medians, "us")
    else:
        print(torch_reference_note())


CASES.append(
    Case(
        "forecasting_probabilistic",
        "CRPSLoss and the likelihood heads vs keras.ops formulas and torch.distributions",
        run_probabilistic,
        params={"batch": 512, "horizon": 64, "samples": 32},
        quick={"batch": 8, "horizon": 12, "samples": 8},
        repetitions=30,
        warmup=3,
    )
)
