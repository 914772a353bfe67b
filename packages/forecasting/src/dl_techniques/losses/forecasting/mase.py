"""Mean absolute scaled error, scaled by the in-sample seasonal naive error."""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops, shapes, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.forecasting import _per_sample

_DICT_KEYS = ("target", "insample")


@register_serializable
class MASELoss(PerSampleLoss):
    """Mean absolute scaled error (MASE) of a forecast.

    The absolute forecast error is divided by the mean absolute error of the
    seasonal naive forecast on the series' own in-sample history ``h``
    (never on the forecast window), so series of different scales weigh
    alike. With seasonality ``m``, for each sample ``b`` and series:

    ```
    scale_b = mean_t |h[t] - h[t - m]|       over the in-sample history
    mase_b  = mean_h |y[h] - yhat[h]| / scale_b
    ```

    A series whose in-sample scale is 0 (a constant history) contributes 0,
    as ``neuralforecast``'s divide-no-nan, and its gradient stays finite.
    For multivariate input ``(B, T, N)`` each sample and series has its own
    scale, and a sample's loss is the mean over its series.

    `y_true` takes one of two forms:

    - a dict ``{"target": y, "insample": h}``, ``y`` shaped like `y_pred`
      ``(B, H[, N])`` and ``h`` of shape ``(B, L[, N])``;
    - one tensor ``(B, L + H[, N])`` whose first ``L`` steps are the history
      and whose last ``H`` steps are the target, ``H`` being the time length
      of `y_pred`. This form works with a stock ``model.fit``.

    The history length ``L`` must exceed ``seasonality``.

    Reference:
        Hyndman, R. J., & Koehler, A. B. (2006). Another look at measures of
        forecast accuracy. International Journal of Forecasting, 22(4),
        679-688.

    Args:
        seasonality: Positive int, the season length ``m`` of the naive
            forecast that sets the scale (1: the previous step). Defaults to 1.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"mase_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = MASELoss(seasonality=1)
    history = [[1.0, 2.0, 4.0]]   # scale = (1 + 2) / 2 = 1.5
    target = [[5.0, 6.0]]
    forecast = [[5.0, 3.0]]       # mean |error| = 1.5
    loss({"target": target, "insample": history}, forecast)  # 1.0
    loss([[1.0, 2.0, 4.0, 5.0, 6.0]], forecast)               # same, 1.0
    ```
    """

    def __init__(
        self,
        seasonality: int = 1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "mase_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_positive_int("MASELoss", "seasonality", seasonality)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.seasonality = int(seasonality)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        target, insample, y_pred = self._split(y_true, y_pred)

        forecast_error = ops.mean(keras.ops.abs(target - y_pred), axis=1)
        naive_error = keras.ops.abs(
            insample[:, self.seasonality :] - insample[:, : -self.seasonality]
        )
        scale = ops.mean(naive_error, axis=1)
        # A series with a zero scale contributes 0, with a finite (zero) gradient.
        return _per_sample.mean_over_non_batch_axes(numerics.safe_divide(forecast_error, scale))

    def _split(self, y_true: Any, y_pred: Any) -> tuple[Any, Any, Any]:
        """Returns ``(target, insample, y_pred)`` after checking their shapes."""
        layout = "(batch, horizon[, series])"
        if isinstance(y_true, dict):
            if set(y_true) != set(_DICT_KEYS):
                raise ValueError(
                    "MASELoss: a dict `y_true` must have exactly the keys "
                    f"{list(_DICT_KEYS)}; got keys {sorted(y_true)}."
                )
            target, y_pred = _per_sample.as_float_pair(y_true["target"], y_pred)
            insample = _per_sample.as_float_pair(y_true["insample"], y_pred)[0]
            target, y_pred = shapes.squeeze_trailing_unit_axis(target, y_pred)
            shapes.check_min_rank("MASELoss", "y_pred", y_pred, 2, layout)
            shapes.check_same_shape("MASELoss", target, y_pred, 'y_true["target"]')
            insample, _ = shapes.squeeze_trailing_unit_axis(insample, y_pred)
            expected = (y_pred.shape[0], None, *y_pred.shape[2:])
            if not shapes.shapes_match(shapes.static_shape(insample), expected):
                raise ValueError(
                    'MASELoss: `y_true["insample"]` must have shape '
                    "(batch, insample_length[, series]) matching y_pred's batch "
                    f"and series axes; got insample shape "
                    f"{shapes.static_shape(insample)} and y_pred shape "
                    f"{shapes.static_shape(y_pred)}."
                )
        else:
            y_true, y_pred = _per_sample.as_float_pair(y_true, y_pred)
            y_true, y_pred = shapes.squeeze_trailing_unit_axis(y_true, y_pred)
            shapes.check_min_rank("MASELoss", "y_pred", y_pred, 2, layout)
            true_shape = shapes.static_shape(y_true)
            pred_shape = shapes.static_shape(y_pred)
            expected = (pred_shape[0], None, *pred_shape[2:])
            if not shapes.shapes_match(true_shape, expected):
                raise ValueError(
                    "MASELoss: `y_true` must be a dict {'target', 'insample'} or "
                    "a tensor (batch, insample_length + horizon[, series]) "
                    "matching y_pred's batch and series axes; got y_true shape "
                    f"{true_shape} and y_pred shape {pred_shape}."
                )
            if true_shape[1] is not None and pred_shape[1] is not None:
                if true_shape[1] <= pred_shape[1]:
                    raise ValueError(
                        "MASELoss: the time axis of `y_true` must hold the "
                        "in-sample history followed by the horizon of y_pred, "
                        f"so be longer than {pred_shape[1]}; got y_true shape "
                        f"{true_shape} and y_pred shape {pred_shape}."
                    )
                insample_length = true_shape[1] - pred_shape[1]
            else:
                insample_length = keras.ops.shape(y_true)[1] - keras.ops.shape(y_pred)[1]
            insample = y_true[:, :insample_length]
            target = y_true[:, insample_length:]

        history_length = shapes.static_shape(insample)[1]
        if history_length is not None and history_length <= self.seasonality:
            raise ValueError(
                "MASELoss: the in-sample history must be longer than "
                f"`seasonality`={self.seasonality}; got insample length "
                f"{history_length} (y_pred shape {shapes.static_shape(y_pred)})."
            )
        return target, insample, y_pred

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "seasonality": self.seasonality,
        }
