"""Symmetric mean absolute percentage error."""

import keras

from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.forecasting import _shapes

# Added to the denominator |y| + |yhat|. Rounding absorbs it into any
# denominator of 2**-35 or more (float32; 2**-446 for float64), so the value
# is exact there; it keeps 0/0 at 0 and, its square being a normal float, keeps
# the gradient finite however small the denominator.
_DENOMINATOR_OFFSET = {"float32": 2.0**-60, "float64": 2.0**-500}


@register_serializable
class SMAPELoss(keras.losses.Loss):
    """Symmetric mean absolute percentage error (sMAPE) of a forecast.

    Each element contributes

    ```
    smape = 2 |y - yhat| / (|y| + |yhat|)      (0 when y = yhat = 0)
    ```

    and the loss of a sample is the mean over all its non-batch axes. The
    range is [0, 2], the ``neuralforecast`` convention; ``percentage=True``
    multiplies by 100 for the M4 competition's [0, 200] scale. The 0/0 case
    gives 0 with a finite (zero) gradient: the denominator carries an offset
    of 2**-60 (float32) that rounding absorbs into every denominator of
    2**-35 or more, so values are exact unless ``|y| + |yhat| < 3e-11``.

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
        percentage=False,
        reduction="sum_over_batch_size",
        name="smape_loss",
        dtype=None,
    ):
        if not isinstance(percentage, bool):
            raise ValueError(
                f"SMAPELoss: `percentage` must be a bool; got percentage={percentage!r}."
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.percentage = percentage

    def call(self, y_true, y_pred):
        y_true, y_pred = _shapes.as_float_pair(y_true, y_pred)
        y_true, y_pred = _shapes.squeeze_trailing_unit_axis(y_true, y_pred)
        _shapes.check_min_rank("SMAPELoss", "y_pred", y_pred, 1, "(batch, ...)")
        _shapes.check_same_shape("SMAPELoss", y_true, y_pred)

        offset = _DENOMINATOR_OFFSET.get(
            keras.backend.standardize_dtype(y_pred.dtype), _DENOMINATOR_OFFSET["float32"]
        )
        denominator = keras.ops.abs(y_true) + keras.ops.abs(y_pred) + offset
        ratio = keras.ops.abs(y_true - y_pred) / denominator
        factor = 200.0 if self.percentage else 2.0
        return factor * _shapes.mean_over_non_batch_axes(ratio)

    def get_config(self):
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "percentage": self.percentage,
        }
