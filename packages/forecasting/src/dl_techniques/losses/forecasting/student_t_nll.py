"""Student-t negative log-likelihood of a probabilistic forecast head."""

import math
from typing import Any

import keras

from dl_techniques.losses.core import ops
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.forecasting import _distribution_head

_HALF_LOG_PI = 0.5 * math.log(math.pi)
_MIN_DEGREES_OF_FREEDOM = 2.0


@register_serializable
class StudentTNLL(_distribution_head.DistributionHeadLoss):
    """Negative log-likelihood of the targets under a predicted Student-t.

    `y_pred` holds three raw parameters per forecast element on its last
    axis, ``(mu, raw_sigma, raw_nu)``, with ``sigma = softplus(raw_sigma) +
    1e-6`` and ``nu = 2 + softplus(raw_nu)`` degrees of freedom (so the
    variance ``sigma**2 nu / (nu - 2)`` is finite). Each element contributes

    ```
    z = (y - mu) / sigma
    nll = 0.5 (nu + 1) log(1 + z**2 / nu) + log sigma + 0.5 log(nu pi)
          + log Gamma(nu / 2) - log Gamma((nu + 1) / 2)
    ```

    which equals ``-torch.distributions.StudentT(nu, mu, sigma).log_prob(y)``;
    the loss of a sample is the mean over its non-batch axes. Keras has no
    ``lgamma`` op: ``log Gamma`` is Lanczos' approximation (relative error
    below 2e-10 in exact arithmetic), and the difference of the two
    ``log Gamma`` terms is taken in a form that keeps float32 precision for
    large ``nu``.

    Shapes: `y_pred` ``(B, ..., 3)``; `y_true` ``(B, ...)`` or ``(B, ..., 1)``.

    Reference:
        Lange, K. L., Little, R. J. A., & Taylor, J. M. G. (1989). Robust
        Statistical Modeling Using the t Distribution. Journal of the American
        Statistical Association, 84(408), 881-896.

    Args:
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"student_t_nll"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = StudentTNLL()
    # y = mu, sigma = 1, nu = 2 + softplus(0.5413233) = 3:
    # 0.5 log(3 pi) + log Gamma(1.5) - log Gamma(2) = 1.0009
    loss([[0.0]], [[[0.0, 0.5413233, 0.5413249]]])
    ```
    """

    parameter_names = ("mu", "raw_sigma", "raw_nu")

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "student_t_nll",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def negative_log_likelihood(self, y_true: Any, *raw_parameters: Any) -> Any:
        mu, raw_sigma, raw_nu = raw_parameters
        sigma = _distribution_head.positive(raw_sigma)
        nu = _MIN_DEGREES_OF_FREEDOM + keras.ops.softplus(raw_nu)
        z = (y_true - mu) / sigma
        return (
            0.5 * (nu + 1.0) * keras.ops.log1p(keras.ops.square(z) / nu)
            + keras.ops.log(sigma)
            + 0.5 * keras.ops.log(nu)
            + _HALF_LOG_PI
            - ops.lgamma_increment(0.5 * nu, 0.5)
        )
