"""Spiegelhalter's Z statistic as a streaming Keras metric."""

from typing import Any

import keras

from dl_techniques.losses.classification import _calibration
from dl_techniques.losses.core import shapes, validation
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class SpiegelhalterZMetric(keras.metrics.Metric):
    """Spiegelhalter's Z over every batch seen since the last reset.

    The weighted sums of Spiegelhalter's statistic accumulate per class over
    all ``update_state`` calls, so the result equals one computation on the
    concatenated batches (eps = 1e-7):

    ```
    numerator_c = sum_i w_i (y_ic - p_ic)(1 - 2 p_ic)
    variance_c  = sum_i w_i (1 - 2 p_ic)^2 p_ic (1 - p_ic)
    Z_c         = numerator_c / sqrt(variance_c + eps)
    result      = Z_0                          (num_classes=1: binary, signed)
    result      = sqrt(mean_c Z_c^2)           (num_classes >= 2: one-vs-rest)
    ```

    Under calibration each Z_c is approximately standard normal, so
    ``|result| > 1.96`` rejects calibration at the 5 % level for binary
    inputs. A positive binary Z means over-confidence (outcomes are less
    extreme than the predictions: rarer where p > 0.5, more frequent where
    p < 0.5); a negative Z means under-confidence.

    Binary inputs are ``(B,)`` or ``(B, 1)``; multi-class inputs are one-hot
    ``(B, num_classes)``. With ``from_logits=True`` a single column goes
    through a sigmoid and several through a softmax. ``sample_weight`` of
    shape ``(B,)`` or ``(B, 1)`` weights rows: a weight ``k`` equals
    repeating the row ``k`` times, and it never broadcasts against the class
    axis. The result is 0 before any update. Targets outside [0, 1], and
    probabilities outside [0, 1] with ``from_logits=False``, raise a
    ``ValueError`` on the first eager ``update_state`` of an instance (every
    eager one with ``DL_LOSSES_VALIDATE=always``; never under ``jit``).

    Reference:
        Spiegelhalter, D. J. (1986). Probabilistic prediction in patient
        management and clinical trials. Statistics in Medicine, 5(5),
        421-433.

    Args:
        num_classes: Number of prediction columns: 1 for binary inputs,
            C >= 2 for one-hot multi-class inputs. Defaults to 1.
        from_logits: Bool; whether ``y_pred`` holds logits. Defaults to
            False.
        name: Name of the metric. Defaults to ``"spiegelhalter_z"``.
        dtype: Dtype of the metric's state and result. Defaults to
            ``keras.backend.floatx()``.

    Example:

    ```python
    metric = SpiegelhalterZMetric()
    metric.update_state([1.0], [0.1])   # numerator 0.72, variance 0.0576
    metric.update_state([1.0], [0.7])   # numerator -0.12, variance 0.0336
    metric.result()                     # 0.6 / sqrt(0.0912) = 1.9868
    ```
    """

    def __init__(
        self,
        num_classes: int = 1,
        from_logits: bool = False,
        name: str = "spiegelhalter_z",
        dtype: Any | None = None,
    ) -> None:
        validation.check_positive_int("SpiegelhalterZMetric", "num_classes", num_classes)
        validation.check_bool("SpiegelhalterZMetric", "from_logits", from_logits)
        super().__init__(name=name, dtype=dtype)
        self.num_classes = num_classes
        self.from_logits = from_logits
        self.numerator = self.add_variable(
            shape=(num_classes,), initializer="zeros", dtype=self.dtype, name="numerator"
        )
        self.variance = self.add_variable(
            shape=(num_classes,), initializer="zeros", dtype=self.dtype, name="variance"
        )

    @validation.checks_values
    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> None:
        y_pred = keras.ops.convert_to_tensor(y_pred, dtype=self.dtype)
        y_true = keras.ops.convert_to_tensor(y_true, dtype=self.dtype)
        original_shape = shapes.static_shape(y_pred)
        y_true, y_pred = _calibration.as_class_columns("SpiegelhalterZMetric", y_true, y_pred)
        if y_pred.shape[-1] != self.num_classes:
            raise ValueError(
                f"SpiegelhalterZMetric: `y_pred` must have {self.num_classes} class "
                f"column(s) (num_classes={self.num_classes}); got y_pred shape "
                f"{original_shape}."
            )
        _calibration.check_value_ranges("SpiegelhalterZMetric", y_true, y_pred, self.from_logits)
        weights = _calibration.column_weights("SpiegelhalterZMetric", sample_weight, y_pred)
        probs = _calibration.probabilities(y_pred, self.from_logits)
        numerator, variance = _calibration.spiegelhalter_sums(y_true, probs, weights)
        self.numerator.assign_add(keras.ops.cast(numerator, self.dtype))
        self.variance.assign_add(keras.ops.cast(variance, self.dtype))

    def result(self) -> Any:
        z = _calibration.z_statistic(self.numerator, self.variance)
        if self.num_classes == 1:
            return z[0]
        return keras.ops.sqrt(keras.ops.mean(keras.ops.square(z)))

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self._dtype_policy.name,
            "num_classes": self.num_classes,
            "from_logits": self.from_logits,
        }
