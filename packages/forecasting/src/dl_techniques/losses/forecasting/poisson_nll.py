"""Poisson negative log-likelihood of a count forecast head."""

from typing import Any

import keras

from dl_techniques.losses.core import ops
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.forecasting import _distribution_head


@register_serializable
class PoissonNLL(_distribution_head.DistributionHeadLoss):
    """Negative log-likelihood of count targets under a predicted Poisson rate.

    `y_pred` holds one raw parameter per forecast element on its last axis,
    ``(raw_rate,)``, with ``rate = softplus(raw_rate) + 1e-6``. Each element
    contributes the exact negative log-probability

    ```
    nll = rate - y log(rate) + log Gamma(y + 1)
    ```

    which equals ``-torch.distributions.Poisson(rate).log_prob(y)``. Unlike
    ``keras.losses.Poisson`` (``rate - y log(rate)`` on the rate itself) it
    keeps ``log Gamma(y + 1) = log y!``, so the value is a true likelihood
    that can be compared across models and with ``NegativeBinomialNLL``. The
    loss of a sample is the mean over its non-batch axes. The gradient is
    finite at ``y = 0``, where the element contributes ``rate``. Targets must
    be non-negative (checked on the first eager call); a non-integer target
    gets the same formula, as in ``torch.distributions`` without
    ``validate_args``.

    Shapes: `y_pred` ``(B, ..., 1)``; `y_true` ``(B, ...)`` or ``(B, ..., 1)``.

    Reference:
        McCullagh, P., & Nelder, J. A. (1989). Generalized Linear Models
        (2nd ed.), chapter 6. Chapman & Hall.

    Args:
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"poisson_nll"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = PoissonNLL()
    # rate = softplus(0.5413233) + 1e-6 = 1, y = 2: 1 - 2 log 1 + log 2! = 1.6931
    loss([[2.0]], [[[0.5413233]]])
    ```
    """

    parameter_names = ("raw_rate",)
    non_negative_target = True

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "poisson_nll",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def negative_log_likelihood(self, y_true: Any, *raw_parameters: Any) -> Any:
        (raw_rate,) = raw_parameters
        rate = _distribution_head.positive(raw_rate)
        return rate - y_true * keras.ops.log(rate) + ops.lgamma(y_true + 1.0)
