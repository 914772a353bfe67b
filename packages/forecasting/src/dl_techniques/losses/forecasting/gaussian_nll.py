"""Gaussian negative log-likelihood of a probabilistic forecast head."""

import math
from typing import Any

import keras

from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.forecasting import _distribution_head

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


@register_serializable
class GaussianNLL(_distribution_head.DistributionHeadLoss):
    """Negative log-likelihood of the targets under a predicted Gaussian.

    `y_pred` holds two raw parameters per forecast element on its last axis,
    ``(mu, raw_sigma)``, with ``sigma = softplus(raw_sigma) + 1e-6``. Each
    element contributes the exact negative log-density

    ```
    z = (y - mu) / sigma
    nll = log sigma + 0.5 log(2 pi) + 0.5 z**2
    ```

    which equals ``-torch.distributions.Normal(mu, sigma).log_prob(y)``; the
    loss of a sample is the mean over its non-batch axes.

    Shapes: `y_pred` ``(B, ..., 2)``; `y_true` ``(B, ...)`` or ``(B, ..., 1)``.

    Reference:
        Nix, D. A., & Weigend, A. S. (1994). Estimating the mean and variance
        of the target probability distribution. IEEE International Conference
        on Neural Networks, 1, 55-60.

    Args:
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"gaussian_nll"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = GaussianNLL()
    # mu = 1, sigma = softplus(0.5413233) + 1e-6 = 1.0: 0.5 log(2 pi) + 0.5 = 1.4189
    loss([[2.0]], [[[1.0, 0.5413233]]])
    ```
    """

    parameter_names = ("mu", "raw_sigma")

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "gaussian_nll",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def negative_log_likelihood(self, y_true: Any, *raw_parameters: Any) -> Any:
        mu, raw_sigma = raw_parameters
        sigma = _distribution_head.positive(raw_sigma)
        z = (y_true - mu) / sigma
        return keras.ops.log(sigma) + _HALF_LOG_TWO_PI + 0.5 * keras.ops.square(z)
