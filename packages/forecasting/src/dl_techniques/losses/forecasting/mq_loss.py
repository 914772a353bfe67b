"""Multi-quantile pinball loss for probabilistic forecasts."""

from collections.abc import Sequence
from typing import Any

import keras

from dl_techniques.losses.core import shapes, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.forecasting import _per_sample


@register_serializable
class MQLoss(PerSampleLoss):
    """Multi-quantile pinball (quantile) loss.

    `y_pred` carries one forecast per quantile on its trailing axis, in the
    order of `quantiles` (not sorted). For each element and quantile ``q``:

    ```
    pinball_q(y, yhat_q) = q * max(y - yhat_q, 0) + (1 - q) * max(yhat_q - y, 0)
    mq = mean over quantiles and non-batch axes of pinball_q
    ```

    This is the MEAN over the ``Q`` quantiles. ``neuralforecast``'s
    ``MQLoss`` (3.3) sums over the quantiles despite its docstring, so its
    value is ``Q`` times this one. With the single quantile 0.5 the loss is
    half the mean absolute error.

    Shapes: `y_pred` ``(B, ..., Q)``; `y_true` ``(B, ...)`` or
    ``(B, ..., 1)``.

    Reference:
        Koenker, R., & Bassett, G. (1978). Regression Quantiles.
        Econometrica, 46(1), 33-50.

    Args:
        quantiles: Sequence of distinct floats in (0, 1), one per entry of
            `y_pred`'s trailing axis. A single quantile is allowed. Kept
            exactly as given in the config. Defaults to ``(0.1, 0.5, 0.9)``.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"mq_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = MQLoss(quantiles=(0.1, 0.9))
    # y = 1; the 0.1 forecast 0 is 1 too low, the 0.9 forecast 3 is 2 too high:
    # (0.1 * 1 + 0.1 * 2) / 2 = 0.15
    loss([[1.0]], [[[0.0, 3.0]]])
    ```
    """

    def __init__(
        self,
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
        reduction: str | None = "sum_over_batch_size",
        name: str = "mq_loss",
        dtype: Any = None,
    ) -> None:
        self.quantiles = _validated_quantiles(quantiles)
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true, y_pred = _per_sample.as_float_pair(y_true, y_pred)
        pred_shape = shapes.static_shape(y_pred)
        num_quantiles = len(self.quantiles)
        if len(pred_shape) < 2 or pred_shape[-1] not in (None, num_quantiles):
            raise ValueError(
                "MQLoss: `y_pred` must have shape (batch, ..., num_quantiles) "
                f"with num_quantiles={num_quantiles} for quantiles "
                f"{self.quantiles}; got y_pred shape {pred_shape}."
            )
        true_shape = shapes.static_shape(y_true)
        if shapes.shapes_match(true_shape, pred_shape[:-1]):
            y_true = keras.ops.expand_dims(y_true, axis=-1)
        elif not shapes.shapes_match(true_shape, pred_shape[:-1] + (1,)):
            raise ValueError(
                "MQLoss: `y_true` must have the shape of y_pred without its "
                "quantile axis, or with a trailing 1 instead of it; got y_true "
                f"shape {true_shape} and y_pred shape {pred_shape}."
            )

        quantiles = keras.ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        error = y_true - y_pred
        # q max(e, 0) + (1 - q) max(-e, 0) written as a single maximum.
        pinball = keras.ops.maximum(quantiles * error, (quantiles - 1.0) * error)
        return _per_sample.mean_over_non_batch_axes(pinball)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "quantiles": list(self.quantiles),
        }


def _validated_quantiles(quantiles: Any) -> list[float]:
    """Returns the quantiles as a list of floats, or raises ``ValueError``."""
    if isinstance(quantiles, (str, bytes)) or not hasattr(quantiles, "__iter__"):
        raise ValueError(
            "MQLoss: `quantiles` must be a sequence of floats in (0, 1), e.g. "
            f"(0.5,); got quantiles={quantiles!r}."
        )
    values = list(quantiles)
    if not values:
        raise ValueError("MQLoss: `quantiles` must hold at least one quantile; got [].")
    for value in values:
        if not validation.is_real_number(value) or not 0.0 < value < 1.0:
            raise ValueError(
                "MQLoss: every quantile must be a number in the open interval "
                f"(0, 1); got {value!r} in quantiles={values!r}."
            )
    values = [float(value) for value in values]
    if len(set(values)) != len(values):
        repeated = sorted({value for value in values if values.count(value) > 1})
        raise ValueError(
            f"MQLoss: `quantiles` must be distinct; {repeated} repeated in quantiles={values!r}."
        )
    return values
