"""Symmetric mean absolute percentage error."""

from typing import Any

import keras

from dl_techniques.losses.core import shapes, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.forecasting import _per_sample

# Denominators at or below this floor (0/0 included) are raised by 1. Such an
# element then contributes |y - yhat| <= 2**-60, i.e. 0 to float32 precision,
# and its gradient is bounded; an offset added to every denominator instead
# would leave jax, whose |x| has slope 1 at 0, a gradient near 1 / offset.
_DENOMINATOR_FLOOR = 2.0**-60


@register_serializable
class SMAPELoss(PerSampleLoss):
    """Symmetric mean absolute percentage error (sMAPE) of a forecast.

    Each element contributes

    ```
    smape = 2 |y - yhat| / (|y| + |yhat|)      (0 when y = yhat = 0)
    ```

    and the loss of a sample is the mean over all its non-batch axes. The
    range is [0, 2], the ``neuralforecast`` convention; ``percentage=True``
    multiplies by 100 for the M4 competition's [0, 200] scale. The 0/0 case
    gives 0 with a bounded gradient: a denominator ``|y| + |yhat|`` at or
    below 2**-60 (about 1e-18) is raised by 1, so such an element counts as 0
    and every larger denominator is used exactly.

    `y_true` and `y_pred` share one shape ``(B, ...)``; a trailing axis of
    length 1 on either side is dropped, as in Keras' losses.

    Reference:
        Makridakis, S., Spiliotis, E., & Assimakopoulos, V. (2020). The M4
        Competition: 100,000 time series and 61 forecasting methods.
        International Journal of Forecasting, 36(1), 54-74.

    Args:
        percentage: Bool; report on the [0, 200] scale of the M4 competition
            instead of [0, 2]. Defaults to False.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"smape_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = SMAPELoss()
    loss([[1.0, 0.0]], [[3.0, 0.0]])  # (2 * 2 / 4 + 0) / 2 = 0.5
    SMAPELoss(percentage=True)([[1.0, 0.0]], [[3.0, 0.0]])  # 50.0
    ```
    """

    def __init__(
        self,
        percentage: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "smape_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_bool("SMAPELoss", "percentage", percentage)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.percentage = percentage

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true, y_pred = _per_sample.as_float_pair(y_true, y_pred)
        y_true, y_pred = shapes.squeeze_trailing_unit_axis(y_true, y_pred)
        shapes.check_min_rank("SMAPELoss", "y_pred", y_pred, 1, "(batch, ...)")
        shapes.check_same_shape("SMAPELoss", y_true, y_pred)

        denominator = keras.ops.abs(y_true) + keras.ops.abs(y_pred)
        vanishing = keras.ops.cast(denominator <= _DENOMINATOR_FLOOR, denominator.dtype)
        ratio = keras.ops.abs(y_true - y_pred) / (denominator + vanishing)
        factor = 200.0 if self.percentage else 2.0
        return factor * _per_sample.mean_over_non_batch_axes(ratio)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "percentage": self.percentage,
        }
