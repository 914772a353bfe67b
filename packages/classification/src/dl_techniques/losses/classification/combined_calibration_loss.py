"""Brier score plus Spiegelhalter's Z loss, as one batch-level loss."""

from typing import Any

import keras

from dl_techniques.losses.classification import _calibration
from dl_techniques.losses.core import numerics, validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable

_NAME = "CombinedCalibrationLoss"


@register_serializable
class CombinedCalibrationLoss(BatchLoss):
    """Convex combination of the Brier score and the Spiegelhalter Z loss.

    With weights w_i (1 without ``sample_weight``), ``N = sum_i w_i`` and
    ``brier_i`` and ``Z`` as in ``BrierScoreLoss`` and ``SpiegelhalterZLoss``:

    ```
    brier  = sum_i w_i brier_i / N                       (weighted batch mean)
    z_loss = Z^2 / N   (or |Z| / sqrt(N) when use_squared=False),
             averaged over classes for multi-class inputs
    loss   = alpha * brier + (1 - alpha) * z_loss
    ```

    The Brier term drives each prediction towards its label (sharpness and
    accuracy); the Z term penalises a systematic gap between predicted
    probabilities and observed frequencies over the batch. Both terms are
    scale-free in the batch size. The loss is batch-level and ``sample_weight``
    (shape ``(B,)`` or ``(B, 1)``) weights every sum of both terms, so a
    weight ``k`` on a row equals repeating it ``k`` times and weight 0 drops
    it; N = 0 gives 0. Without weights the Brier term is the plain batch mean
    ``BrierScoreLoss()`` reports. Note that the weighted Brier term divides
    by ``sum w``, whereas ``BrierScoreLoss`` under Keras' default reduction
    divides a weighted sum by the batch size. The loss returns one scalar, so
    ``reduction`` has no effect; Keras masks are not read (pass a mask as
    ``sample_weight``).

    Input conventions (binary ``(B,)``/``(B, 1)`` or one-hot ``(B, C)``, the
    sigmoid/softmax rule for ``from_logits=True``, value checks in [0, 1] on
    the first eager call of an instance) are those of the two component
    losses.

    Reference:
        Brier, G. W. (1950). Verification of forecasts expressed in terms of
        probability. Monthly Weather Review, 78(1), 1-3.
        Spiegelhalter, D. J. (1986). Probabilistic prediction in patient
        management and clinical trials. Statistics in Medicine, 5(5),
        421-433.

    Args:
        alpha: Weight of the Brier term, in [0, 1]; the Z loss gets
            ``1 - alpha``. Defaults to 0.5.
        use_squared: Bool; Z loss ``Z^2 / N`` when True, ``|Z| / sqrt(N)``
            when False. Defaults to True.
        from_logits: Bool; whether ``y_pred`` holds logits. Defaults to
            False.
        reduction: Accepted for Keras compatibility; no effect.
        name: Name of the loss instance. Defaults to
            ``"combined_calibration_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = CombinedCalibrationLoss(alpha=0.5)
    # brier = (0.81 + 0.09) / 2 = 0.45, Z^2 / N = 1.9737 (SpiegelhalterZLoss)
    loss([1.0, 1.0], [0.1, 0.7])  # 0.5 * 0.45 + 0.5 * 1.9737 = 1.2118
    ```
    """

    def __init__(
        self,
        alpha: float = 0.5,
        use_squared: bool = True,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "combined_calibration_loss",
        dtype: Any | None = None,
    ) -> None:
        validation.check_interval(_NAME, "alpha", alpha, 0.0, 1.0)
        validation.check_bool(_NAME, "use_squared", use_squared)
        validation.check_bool(_NAME, "from_logits", from_logits)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = alpha
        self.use_squared = use_squared
        self.from_logits = from_logits

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        y_true, probs, weights = _calibration.batch_columns(
            _NAME,
            y_true,
            keras.ops.cast(y_pred, self.compute_dtype),
            sample_weight,
            self.from_logits,
        )
        brier = numerics.weighted_mean(_calibration.brier_per_sample(y_true, probs), weights[:, 0])
        numerator, variance = _calibration.spiegelhalter_sums(y_true, probs, weights)
        z_loss = _calibration.z_loss(numerator, variance, keras.ops.sum(weights), self.use_squared)
        return self.alpha * brier + (1.0 - self.alpha) * z_loss

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "alpha": self.alpha,
            "use_squared": self.use_squared,
            "from_logits": self.from_logits,
        }
