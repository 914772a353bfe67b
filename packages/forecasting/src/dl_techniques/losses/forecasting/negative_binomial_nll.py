"""Negative binomial negative log-likelihood of an overdispersed count head."""

from typing import Any

import keras

from dl_techniques.losses.core import ops
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.forecasting import _distribution_head


@register_serializable
class NegativeBinomialNLL(_distribution_head.DistributionHeadLoss):
    """Negative log-likelihood of count targets under a predicted negative binomial.

    `y_pred` holds two raw parameters per forecast element on its last axis,
    ``(raw_mu, raw_alpha)``: the mean ``mu = softplus(raw_mu) + 1e-6`` and the
    dispersion ``alpha = softplus(raw_alpha) + 1e-6``, so that the variance is
    ``mu + alpha mu**2`` (the DeepAR parametrisation). With ``r = 1 / alpha``
    each element contributes

    ```
    nll = (r + y) log(1 + alpha mu) - y log(alpha mu)
          - log Gamma(r + y) + log Gamma(y + 1) + log Gamma(r)
    ```

    which equals ``-torch.distributions.NegativeBinomial(total_count=1 /
    alpha, probs=mu / (mu + 1 / alpha)).log_prob(y)``; the loss of a sample is
    the mean over its non-batch axes. As ``alpha -> 0`` it tends to the
    Poisson likelihood of ``mu``. There ``r`` is large, and the difference
    ``log Gamma(r + y) - log Gamma(r)`` of two large numbers, which loses
    digits in float32 when taken as written (about 0.01 at ``alpha = 1e-4``,
    as in torch), is computed in a rearranged form that keeps float32
    precision. The gradient is finite at ``y = 0``. Targets must be
    non-negative (checked on the first eager call). Keras has no ``lgamma``
    op: ``log Gamma`` is Lanczos' approximation.

    Shapes: `y_pred` ``(B, ..., 2)``; `y_true` ``(B, ...)`` or ``(B, ..., 1)``.

    Reference:
        Salinas, D., Flunkert, V., Gasthaus, J., & Januschowski, T. (2020).
        DeepAR: Probabilistic forecasting with autoregressive recurrent
        networks. International Journal of Forecasting, 36(3), 1181-1191.

    Args:
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"negative_binomial_nll"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = NegativeBinomialNLL()
    # mu = 1, alpha = 1 (r = 1: geometric, P(y = 0) = 1/2), y = 0: log 2 = 0.6931
    loss([[0.0]], [[[0.5413233, 0.5413233]]])
    ```
    """

    parameter_names = ("raw_mu", "raw_alpha")
    non_negative_target = True

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "negative_binomial_nll",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def negative_log_likelihood(self, y_true: Any, *raw_parameters: Any) -> Any:
        raw_mu, raw_alpha = raw_parameters
        mu = _distribution_head.positive(raw_mu)
        alpha = _distribution_head.positive(raw_alpha)
        total_count = 1.0 / alpha
        alpha_mu = alpha * mu
        return (
            (total_count + y_true) * keras.ops.log1p(alpha_mu)
            - y_true * keras.ops.log(alpha_mu)
            - ops.lgamma_increment(total_count, y_true)
            + ops.lgamma(y_true + 1.0)
        )
