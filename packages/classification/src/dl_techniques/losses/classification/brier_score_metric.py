"""Brier score as a streaming Keras metric."""

from typing import Any

import keras

from dl_techniques.losses.classification import _calibration
from dl_techniques.losses.core import validation
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class BrierScoreMetric(keras.metrics.Metric):
    """Weighted mean Brier score over every batch seen since the last reset.

    ```
    brier_i = sum_c (y_ic - p_ic)^2   (one-hot multi-class (B, C))
    brier_i = (y_i - p_i)^2           (binary (B,) or (B, 1))
    result  = sum_i w_i brier_i / sum_i w_i     over all update_state calls
    ```

    The per-sample score is the one of ``BrierScoreLoss``, including its
    ``from_logits`` rule (sigmoid for one column, softmax for several).
    ``sample_weight`` of shape ``(B,)`` or ``(B, 1)`` weights the rows of
    any prediction shape: it never broadcasts against the class axis. The
    result is 0 before any weight has been seen. Targets outside [0, 1], and
    probabilities outside [0, 1] with ``from_logits=False``, raise a
    ``ValueError`` on the first eager ``update_state`` of an instance (every
    eager one with ``DL_LOSSES_VALIDATE=always``; never under ``jit``).

    Reference:
        Brier, G. W. (1950). Verification of forecasts expressed in terms of
        probability. Monthly Weather Review, 78(1), 1-3.

    Args:
        from_logits: Bool; whether ``y_pred`` holds logits. Defaults to
            False.
        name: Name of the metric. Defaults to ``"brier_score"``.
        dtype: Dtype of the metric's state and result. Defaults to
            ``keras.backend.floatx()``.

    Example:

    ```python
    metric = BrierScoreMetric()
    metric.update_state([1.0, 0.0], [0.9, 0.3])  # scores 0.01 and 0.09
    metric.update_state([1.0], [0.5])            # score 0.25
    metric.result()                              # 0.35 / 3 = 0.11667
    ```
    """

    def __init__(
        self, from_logits: bool = False, name: str = "brier_score", dtype: Any | None = None
    ) -> None:
        validation.check_bool("BrierScoreMetric", "from_logits", from_logits)
        super().__init__(name=name, dtype=dtype)
        self.from_logits = from_logits
        self.weighted_total = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="weighted_total"
        )
        self.total_weight = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="total_weight"
        )

    @validation.checks_values
    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> None:
        y_pred = keras.ops.convert_to_tensor(y_pred, dtype=self.dtype)
        y_true = keras.ops.convert_to_tensor(y_true, dtype=self.dtype)
        y_true, y_pred = _calibration.as_class_columns("BrierScoreMetric", y_true, y_pred)
        _calibration.check_value_ranges("BrierScoreMetric", y_true, y_pred, self.from_logits)
        weights = _calibration.column_weights("BrierScoreMetric", sample_weight, y_pred)
        probs = _calibration.probabilities(y_pred, self.from_logits)
        scores = _calibration.brier_per_sample(y_true, probs)
        weighted_sum = keras.ops.sum(keras.ops.squeeze(weights, axis=-1) * scores)
        self.weighted_total.assign_add(keras.ops.cast(weighted_sum, self.dtype))
        self.total_weight.assign_add(keras.ops.cast(keras.ops.sum(weights), self.dtype))

    def result(self) -> Any:
        return keras.ops.divide_no_nan(self.weighted_total, self.total_weight)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self._dtype_policy.name,
            "from_logits": self.from_logits,
        }
