"""Brier score of probabilistic classification."""

from typing import Any

import keras

from dl_techniques.losses.classification import _calibration
from dl_techniques.losses.core import validation
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class BrierScoreLoss(keras.losses.Loss):
    """Brier score: the squared error of predicted probabilities, per sample.

    For one-hot multi-class targets ``(B, C)``, C >= 2, each sample gives

    ```
    brier_i = sum_c (y_ic - p_ic)^2          in [0, 2]
    ```

    and for binary targets ``(B,)`` or ``(B, 1)``, with p the probability of
    the positive class,

    ```
    brier_i = (y_i - p_i)^2                  in [0, 1]
    ```

    The mean over samples equals ``sklearn.metrics.brier_score_loss`` in
    both cases (its multi-class form sums over classes; its binary form
    scores the positive class only). The Brier score is a proper scoring
    rule: its expectation is minimised by the true class probabilities, so
    it rewards calibration as well as accuracy.

    With ``from_logits=True`` a single column goes through a sigmoid and
    several columns through a softmax over the class axis. With
    ``from_logits=False`` predictions must lie in [0, 1]; so must the
    targets (soft targets are accepted). Those value checks run on the
    first eager call of an instance (every eager call with
    ``DL_LOSSES_VALIDATE=always``) and are skipped under ``jit``; a NaN
    prediction is not rejected and gives a NaN loss.

    The loss is per sample (``call`` returns shape ``(B,)``), so Keras
    applies ``sample_weight`` and the reduction. Keras masks are applied by
    Keras as for any per-sample loss.

    Reference:
        Brier, G. W. (1950). Verification of forecasts expressed in terms of
        probability. Monthly Weather Review, 78(1), 1-3.

    Args:
        from_logits: Bool; whether ``y_pred`` holds logits. Defaults to
            False.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"brier_score_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = BrierScoreLoss()
    loss([[0.0, 1.0]], [[0.2, 0.8]])  # 0.2^2 + 0.2^2 = 0.08
    loss([1.0, 0.0], [0.9, 0.3])      # (0.01 + 0.09) / 2 = 0.05
    ```
    """

    def __init__(
        self,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "brier_score_loss",
        dtype: Any | None = None,
    ) -> None:
        validation.check_bool("BrierScoreLoss", "from_logits", from_logits)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true, y_pred = _calibration.as_class_columns("BrierScoreLoss", y_true, y_pred)
        _calibration.check_value_ranges("BrierScoreLoss", y_true, y_pred, self.from_logits)
        probs = _calibration.probabilities(y_pred, self.from_logits)
        return _calibration.brier_per_sample(y_true, probs)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "from_logits": self.from_logits,
        }
