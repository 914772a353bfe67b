"""Spiegelhalter's Z calibration statistic as a batch-level loss."""

from typing import Any

import keras

from dl_techniques.losses.classification import _calibration
from dl_techniques.losses.core import validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable

_NAME = "SpiegelhalterZLoss"


@register_serializable
class SpiegelhalterZLoss(BatchLoss):
    """Squared (or absolute) Spiegelhalter Z statistic of a batch.

    Spiegelhalter's test statistic compares the Brier score of the batch with
    its expectation under the hypothesis that the predictions are calibrated.
    With weights w_i (1 without ``sample_weight``) and eps = 1e-7:

    ```
    Z = sum_i w_i (y_i - p_i)(1 - 2 p_i) / sqrt(sum_i w_i (1 - 2 p_i)^2 p_i (1 - p_i) + eps)
    N = sum_i w_i
    loss = Z^2 / N            (use_squared=True)
    loss = |Z| / sqrt(N)      (use_squared=False)
    ```

    Under calibration Z is approximately standard normal, and it grows like
    sqrt(N) under a fixed miscalibration, so dividing by N (or sqrt(N))
    keeps the scale of the loss independent of the batch size. A batch with
    N = 0 gives 0.

    Binary inputs are ``(B,)`` or ``(B, 1)`` with p the probability of the
    positive class. One-hot multi-class inputs ``(B, C)`` give one statistic
    per class (one-vs-rest: ``y_ic`` against ``p_ic``) and the loss is the
    mean of the per-class losses. With ``from_logits=True`` a single column
    goes through a sigmoid and several through a softmax. With
    ``from_logits=False`` predictions must lie in [0, 1]; so must the
    targets; these value checks run on the first eager call of an instance
    (every eager call with ``DL_LOSSES_VALIDATE=always``) and are skipped
    under ``jit``.

    The value and gradient stay finite when every p is 0, 0.5 or 1 (the
    variance is then 0 and eps alone sets the denominator), although Z^2
    is then as large as ``numerator^2 / eps``.

    The loss is batch-level, so ``sample_weight`` acts inside the sums: a
    weight ``k`` on a row equals repeating the row ``k`` times and a weight 0
    drops it. The weight must have shape ``(B,)`` or ``(B, 1)``. The loss
    returns one scalar, so ``reduction`` has no effect; Keras masks are not
    read (pass a mask as ``sample_weight``).

    Reference:
        Spiegelhalter, D. J. (1986). Probabilistic prediction in patient
        management and clinical trials. Statistics in Medicine, 5(5),
        421-433.

    Args:
        use_squared: Bool; ``Z^2 / N`` when True, ``|Z| / sqrt(N)`` when
            False. Defaults to True.
        from_logits: Bool; whether ``y_pred`` holds logits. Defaults to
            False.
        reduction: Accepted for Keras compatibility; no effect.
        name: Name of the loss instance. Defaults to
            ``"spiegelhalter_z_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = SpiegelhalterZLoss()
    # numerator 0.9 * 0.8 + 0.3 * (-0.4) = 0.6, variance 0.64 * 0.09 + 0.16 * 0.21
    # = 0.0912, Z = 0.6 / sqrt(0.0912) = 1.9868, Z^2 / N = 3.9474 / 2 = 1.9737
    loss([1.0, 1.0], [0.1, 0.7])
    ```
    """

    def __init__(
        self,
        use_squared: bool = True,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "spiegelhalter_z_loss",
        dtype: Any | None = None,
    ) -> None:
        validation.check_bool(_NAME, "use_squared", use_squared)
        validation.check_bool(_NAME, "from_logits", from_logits)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
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
        numerator, variance = _calibration.spiegelhalter_sums(y_true, probs, weights)
        return _calibration.z_loss(numerator, variance, keras.ops.sum(weights), self.use_squared)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "use_squared": self.use_squared,
            "from_logits": self.from_logits,
        }
