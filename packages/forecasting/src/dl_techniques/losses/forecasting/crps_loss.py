"""Continuous ranked probability score of ensemble, quantile and Gaussian forecasts."""

import math
from collections.abc import Sequence
from typing import Any

import keras

from dl_techniques.losses.core import numerics, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.forecasting import _distribution_head, _per_sample

FORMS = ("ensemble", "quantile", "gaussian")
_INVERSE_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INVERSE_SQRT_TWO = 1.0 / math.sqrt(2.0)
_INVERSE_SQRT_TWO_PI = 1.0 / math.sqrt(2.0 * math.pi)


@register_serializable
class CRPSLoss(PerSampleLoss):
    """Continuous ranked probability score (CRPS) of a probabilistic forecast.

    ``CRPS(F, y) = integral (F(x) - 1[x >= y])**2 dx = E|X - y| - 0.5 E|X - X'|``
    with ``X, X'`` independent draws from the forecast ``F``. It is a proper
    score in the units of ``y`` and equals the absolute error for a point
    forecast. Per element, by ``form``:

    ```
    ensemble  (y_pred (B, ..., S): S samples x_s)
        crps = mean_s |x_s - y| - 0.5 mean_{s, s'} |x_s - x_s'|
        fair:  the second mean divides the pair sum by S (S - 1) instead of S**2
    quantile  (y_pred (B, ..., Q): forecasts at the levels `quantiles`)
        crps = 2 mean_q (q max(y - yhat_q, 0) + (1 - q) max(yhat_q - y, 0))
    gaussian  (y_pred (B, ..., 2): mu, raw sigma; sigma = softplus(raw) + 1e-6)
        z = (y - mu) / sigma
        crps = sigma (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))
    ```

    and the loss of a sample is the mean over its non-batch axes. With
    ``scaled=True`` that mean is divided by the sample's mean ``|y|`` (0 where
    every target of the sample is 0), the scaled CRPS of Rangapuram et al.
    (2021). ``neuralforecast``'s ``sCRPS`` (3.3) differs in two ways: it sums
    the pinball losses over the ``Q`` quantiles instead of averaging them (as
    its ``MQLoss`` does: its ``1 / len(quantiles)`` takes the length of a 4-D
    view, 1), and it divides the batch's total by the batch's ``sum |y| +
    1e-5``. With ``S_b`` the sum of ``|y|`` over sample ``b``, its value is
    ``Q sum_b S_b loss_b / (sum_b S_b + 1e-5)`` of this loss's per-sample
    values ``loss_b`` (``Q loss_b S_b / (S_b + 1e-5)`` for one sample).

    The ensemble form is the CRPS of the empirical distribution of the
    samples, the convention of ``properscoring.crps_ensemble``; ``fair=True``
    gives the unbiased estimate of the forecast distribution's CRPS from S
    draws (Ferro 2014) and needs ``S >= 2``. The pair sum is computed in
    ``O(S log S)`` from the sorted errors, ``sum_{s, s'} |x_s - x_s'| =
    2 sum_i (2 i - S - 1) x_(i)``. The quantile form approximates the integral
    ``CRPS = 2 integral_0^1 pinball_q dq`` on a grid, so it wants a dense,
    evenly spread grid (it is twice ``MQLoss`` on the same quantiles). The
    Gaussian form is exact (``properscoring.crps_gaussian``) and takes the
    head layout of ``GaussianNLL``.

    `y_true` has the shape of `y_pred` without its last axis, or with a
    trailing 1 instead of it.

    References:
        Matheson, J. E., & Winkler, R. L. (1976). Scoring Rules for Continuous
        Probability Distributions. Management Science, 22(10), 1087-1096.
        Gneiting, T., & Raftery, A. E. (2007). Strictly Proper Scoring Rules,
        Prediction, and Estimation. JASA, 102(477), 359-378.
        Ferro, C. A. T. (2014). Fair scores for ensemble forecasts. Quarterly
        Journal of the Royal Meteorological Society, 140(683), 1917-1923.
        Rangapuram, S. S., Werner, L. D., Benidis, K., Mercado, P., Gasthaus,
        J., & Januschowski, T. (2021). End-to-End Learning of Coherent
        Probabilistic Forecasts for Hierarchical Time Series. ICML.

    Args:
        form: ``"ensemble"``, ``"quantile"`` or ``"gaussian"``: what the last
            axis of `y_pred` holds. Defaults to ``"ensemble"``.
        quantiles: With ``form="quantile"`` (and only then), a sequence of
            distinct floats in (0, 1), one per entry of `y_pred`'s last axis,
            in that order. Kept exactly as given in the config.
        fair: Bool; with ``form="ensemble"``, the fair (unbiased) ensemble
            CRPS. Defaults to False.
        scaled: Bool; divide each sample's CRPS by its mean absolute target.
            Defaults to False.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"crps_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    # y = 0, samples (-1, 1): mean |x - y| = 1, mean |x - x'| = (0 + 2 + 2 + 0) / 4 = 1
    CRPSLoss()([[0.0]], [[[-1.0, 1.0]]])  # 1 - 0.5 = 0.5
    CRPSLoss(fair=True)([[0.0]], [[[-1.0, 1.0]]])  # 1 - 0.5 * 4 / 2 = 0.0
    CRPSLoss(form="quantile", quantiles=(0.25, 0.75))([[0.0]], [[[-1.0, 1.0]]])  # 0.5
    ```
    """

    def __init__(
        self,
        form: str = "ensemble",
        quantiles: Sequence[float] | None = None,
        fair: bool = False,
        scaled: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "crps_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_choice("CRPSLoss", "form", form, FORMS)
        validation.check_bool("CRPSLoss", "fair", fair)
        validation.check_bool("CRPSLoss", "scaled", scaled)
        if fair and form != "ensemble":
            raise ValueError(
                f"CRPSLoss: `fair=True` applies to form='ensemble' only; got form={form!r}."
            )
        self.quantiles = _quantile_grid(form, quantiles)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.form = form
        self.fair = fair
        self.scaled = scaled

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true, y_pred = _per_sample.as_float_pair(y_true, y_pred)
        if self.form == "ensemble":
            y_true = _distribution_head.target_with_parameter_axis(
                "CRPSLoss", y_true, y_pred, "samples", None
            )
            per_element = self._ensemble(y_true, y_pred)
        elif self.form == "quantile":
            y_true = _distribution_head.target_with_parameter_axis(
                "CRPSLoss", y_true, y_pred, "quantiles", len(self.quantiles or ())
            )
            per_element = self._quantile(y_true, y_pred)
        else:
            y_true = _distribution_head.target_with_parameter_axis(
                "CRPSLoss", y_true, y_pred, "(mu, raw_sigma)", 2
            )
            per_element = _gaussian_crps(y_true[..., 0], y_pred[..., 0], y_pred[..., 1])
        crps = _per_sample.mean_over_non_batch_axes(per_element)
        if not self.scaled:
            return crps
        target_scale = _per_sample.mean_over_non_batch_axes(keras.ops.abs(y_true))
        return numerics.safe_divide(crps, target_scale)

    def _ensemble(self, y_true: Any, y_pred: Any) -> Any:
        num_samples = y_pred.shape[-1]
        if num_samples is None:
            raise ValueError(
                "CRPSLoss: form='ensemble' needs the number of samples (the last axis of "
                f"y_pred) known when the loss is traced; got y_pred shape {tuple(y_pred.shape)}."
            )
        if self.fair and num_samples < 2:
            raise ValueError(
                "CRPSLoss: fair=True needs at least 2 samples on the last axis of y_pred; "
                f"got y_pred shape {tuple(y_pred.shape)}."
            )
        # Errors relative to y: the spread is translation invariant, and its
        # rank weights cancel a common offset only in exact arithmetic, so
        # small numbers keep the weighted sum accurate in float32.
        errors = y_pred - y_true
        accuracy = keras.ops.mean(keras.ops.abs(errors), axis=-1)
        ranks = keras.ops.arange(1, num_samples + 1, dtype=errors.dtype)
        rank_weights = 2.0 * ranks - (num_samples + 1.0)
        # 0.5 sum_{s, s'} |x_s - x_s'| = sum_i (2 i - S - 1) x_(i).
        half_pair_sum = keras.ops.sum(rank_weights * keras.ops.sort(errors, axis=-1), axis=-1)
        pairs = num_samples * (num_samples - 1) if self.fair else num_samples**2
        return accuracy - half_pair_sum / float(pairs)

    def _quantile(self, y_true: Any, y_pred: Any) -> Any:
        levels = keras.ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        shortfall = y_true - y_pred
        pinball = keras.ops.maximum(levels * shortfall, (levels - 1.0) * shortfall)
        return 2.0 * keras.ops.mean(pinball, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "form": self.form,
            "quantiles": None if self.quantiles is None else list(self.quantiles),
            "fair": self.fair,
            "scaled": self.scaled,
        }


def _gaussian_crps(y_true: Any, mu: Any, raw_sigma: Any) -> Any:
    """``sigma (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))`` per element."""
    sigma = _distribution_head.positive(raw_sigma)
    z = (y_true - mu) / sigma
    # 2 Phi(z) - 1 = erf(z / sqrt 2).
    signed_mass = keras.ops.erf(z * _INVERSE_SQRT_TWO)
    density = _INVERSE_SQRT_TWO_PI * keras.ops.exp(-0.5 * keras.ops.square(z))
    return sigma * (z * signed_mass + 2.0 * density - _INVERSE_SQRT_PI)


def _quantile_grid(form: str, quantiles: Any) -> list[float] | None:
    """The validated quantile levels for ``form="quantile"``; None for the other forms."""
    if form != "quantile":
        if quantiles is not None:
            raise ValueError(
                "CRPSLoss: `quantiles` applies to form='quantile' only; got "
                f"form={form!r} with quantiles={quantiles!r}."
            )
        return None
    iterable = hasattr(quantiles, "__iter__") and not isinstance(quantiles, (str, bytes))
    given = list(quantiles) if iterable else []
    if not given:
        raise ValueError(
            "CRPSLoss: form='quantile' needs `quantiles`, a non-empty sequence of distinct "
            f"levels in (0, 1) such as (0.05, 0.15, ..., 0.95); got quantiles={quantiles!r}."
        )
    outside = [q for q in given if not (validation.is_real_number(q) and 0.0 < q < 1.0)]
    if outside:
        raise ValueError(
            f"CRPSLoss: every quantile must lie in the open interval (0, 1); {outside!r} "
            f"in quantiles={given!r} do not."
        )
    levels = [float(q) for q in given]
    if len(set(levels)) < len(levels):
        raise ValueError(f"CRPSLoss: `quantiles` must be distinct; got quantiles={levels!r}.")
    return levels
