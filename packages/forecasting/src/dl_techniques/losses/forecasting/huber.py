"""Huber loss for robust regression and point forecasting."""

from typing import Any

from dl_techniques.losses.core import ops, shapes, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.forecasting import _per_sample


@register_serializable
class HuberLoss(PerSampleLoss):
    """Huber loss: quadratic for small errors, linear for large ones.

    With ``e = y_pred - y_true`` each element contributes

    ```
    huber(e) = 0.5 * e**2                   if |e| <= delta
               delta * (|e| - 0.5 * delta)  otherwise
    ```

    and the loss of a sample is the mean over all its non-batch axes, so
    ``call`` returns one value per sample. Reduced over the batch, the value
    equals ``keras.losses.Huber(delta)``; unlike Keras 3.15's class,
    ``get_config`` keeps ``delta``.

    `y_true` and `y_pred` share one shape ``(B, ...)``; a trailing axis of
    length 1 on either side is dropped, as in Keras' losses.

    Reference:
        Huber, P. J. (1964). Robust Estimation of a Location Parameter.
        The Annals of Mathematical Statistics, 35(1), 73-101.

    Args:
        delta: Positive float, the error size where the loss turns from
            quadratic to linear. Defaults to 1.0.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"huber_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = HuberLoss(delta=1.0)
    loss([[0.0, 1.0]], [[0.5, 3.0]])  # (0.125 + 1.5) / 2 = 0.8125
    ```
    """

    def __init__(
        self,
        delta: float = 1.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "huber_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_positive("HuberLoss", "delta", delta)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.delta = float(delta)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true, y_pred = self._checked(y_true, y_pred)
        per_element = ops.huber(y_true, y_pred, self.delta)
        return _per_sample.mean_over_non_batch_axes(per_element)

    def batch_mean(self, y_true: Any, y_pred: Any) -> Any:
        # Every sample averages the same number of elements: one fused mean.
        return ops.huber_mean(*self._checked(y_true, y_pred), self.delta)

    def _checked(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        y_true, y_pred = _per_sample.as_float_pair(y_true, y_pred)
        y_true, y_pred = shapes.squeeze_trailing_unit_axis(y_true, y_pred)
        shapes.check_min_rank("HuberLoss", "y_pred", y_pred, 1, "(batch, ...)")
        shapes.check_same_shape("HuberLoss", y_true, y_pred)
        return y_true, y_pred

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "delta": self.delta,
        }
