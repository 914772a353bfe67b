"""Tweedie deviance for zero-inflated, right-skewed targets."""

from typing import Any

import keras

from dl_techniques.losses.core import shapes, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.forecasting import _distribution_head, _per_sample


@register_serializable
class TweedieLoss(PerSampleLoss):
    """Tweedie deviance of a log-mean forecast, for ``1 < power < 2``.

    `y_pred` is the log of the predicted mean, ``mu = exp(y_pred)``, and
    `y_true` holds non-negative targets (exact zeros allowed: the compound
    Poisson-gamma distributions of ``1 < p < 2`` put mass at 0). Each element
    contributes the unit deviance

    ```
    d(y, mu) = 2 (y**(2 - p) / ((1 - p)(2 - p)) - y mu**(1 - p) / (1 - p)
                  + mu**(2 - p) / (2 - p))
    ```

    which is 0 when ``y = mu`` and positive otherwise; the loss of a sample is
    the mean over its non-batch axes. Reduced over the batch it equals
    scikit-learn's ``mean_tweedie_deviance(y, mu, power=p)``. Its gradient in
    ``y_pred`` is that of LightGBM's ``tweedie`` objective (which drops the
    term without ``mu`` and the factor 2), and is finite at ``y = 0``.

    `y_true` and `y_pred` share one shape ``(B, ...)``; a trailing axis of
    length 1 on either side is dropped, as in Keras' losses.

    Reference:
        Jorgensen, B. (1987). Exponential Dispersion Models. Journal of the
        Royal Statistical Society, Series B, 49(2), 127-162.

    Args:
        power: Float in the open interval (1, 2), the Tweedie variance power
            (``Var y = phi mu**power``). Defaults to 1.5.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"tweedie_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = TweedieLoss(power=1.5)
    # y = 0, mu = exp(0) = 1: 2 * mu**0.5 / 0.5 = 4.0
    loss([[0.0]], [[0.0]])
    ```
    """

    def __init__(
        self,
        power: float = 1.5,
        reduction: str | None = "sum_over_batch_size",
        name: str = "tweedie_loss",
        dtype: Any = None,
    ) -> None:
        if not (validation.is_real_number(power) and 1.0 < power < 2.0):
            raise ValueError(
                "TweedieLoss: `power` must be a number in the open interval (1, 2) "
                f"(compound Poisson-gamma); got power={power!r}."
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.power = float(power)

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true, y_pred = _per_sample.as_float_pair(y_true, y_pred)
        y_true, y_pred = shapes.squeeze_trailing_unit_axis(y_true, y_pred)
        shapes.check_min_rank("TweedieLoss", "y_pred", y_pred, 1, "(batch, ...)")
        shapes.check_same_shape("TweedieLoss", y_true, y_pred)
        _distribution_head.check_non_negative_target("TweedieLoss", y_true)

        one_minus_p, two_minus_p = 1.0 - self.power, 2.0 - self.power
        # y**(2 - p) does not depend on the forecast: it only makes d(mu, mu) = 0.
        target_term = keras.ops.power(keras.ops.relu(y_true), two_minus_p) * (
            2.0 / (one_minus_p * two_minus_p)
        )
        # 2 mu^(2-p) / (2-p) - 2 y mu^(1-p) / (1-p), each power its own exponential.
        mean_term = keras.ops.exp(two_minus_p * y_pred) * (2.0 / two_minus_p)
        cross_term = y_true * keras.ops.exp(one_minus_p * y_pred) * (2.0 / one_minus_p)
        return _per_sample.mean_over_non_batch_axes(target_term - cross_term + mean_term)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "power": self.power,
        }
