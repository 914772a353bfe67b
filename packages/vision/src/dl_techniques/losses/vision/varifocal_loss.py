"""Varifocal loss of VarifocalNet: IoU-aware classification scores for dense detectors."""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops, shapes, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable

_OWNER = "VarifocalLoss"
# Probabilities are clipped to [eps, 1 - eps] before the log when
# from_logits=False, as keras.losses.binary_crossentropy clips them.
_PROBABILITY_EPSILON = 1e-7


@register_serializable
class VarifocalLoss(PerSampleLoss):
    """Binary cross-entropy to an IoU-aware target, down-weighting negatives only.

    `y_true` holds the IoU-aware classification score ``q`` of every anchor
    (or query) and class: the IoU of the predicted box with its ground truth
    at the ground-truth class, 0 elsewhere. `y_pred` holds the logits ``x``
    (probabilities ``p`` with ``from_logits=False``), the same shape. Per
    element, with ``p = sigmoid(x)``,

    ```
    bce(p, q) = -q log p - (1 - q) log(1 - p)
    w         = q                 if q > 0  (positives, weighted by their IoU)
                alpha p^gamma     if q = 0  (negatives, focal down-weighting)
    vfl       = w bce(p, q)
    ```

    and the loss of a sample is the sum over the last (class) axis of
    ``vfl``, averaged over its other non-batch axes (anchors). This is
    Ultralytics' ``VarifocalLoss`` (``.mean(1)`` over anchors, summed over
    classes; Ultralytics also sums over the batch where Keras averages) and
    VarifocalNet's ``iou_weighted`` form; as in both, the weight ``w`` is
    part of the graph, so the gradient flows through ``p^gamma`` too.

    With ``from_logits=False`` the probabilities are clipped to
    ``[1e-7, 1 - 1e-7]`` inside the log, as Keras' binary cross-entropy
    does. `y_true` must lie in [0, 1] (checked on the first eager call).

    Reference:
        Zhang, H., Wang, Y., Dayoub, F., & Sunderhauf, N. (2021).
        VarifocalNet: An IoU-aware Dense Object Detector. CVPR.

    Args:
        alpha: Positive float, the weight of the negatives. Defaults to 0.75.
        gamma: Non-negative float, the focusing exponent of the negatives.
            Defaults to 2.0.
        from_logits: Whether `y_pred` holds logits (True) or probabilities.
            Defaults to True.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"varifocal_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = VarifocalLoss()
    # one anchor, two classes: a positive with IoU 0.8 and a negative, logits 0
    loss([[[0.8, 0.0]]], [[[0.0, 0.0]]])  # 0.8 log 2 + 0.75 * 0.25 log 2 = 0.6845
    ```
    """

    def __init__(
        self,
        alpha: float = 0.75,
        gamma: float = 2.0,
        from_logits: bool = True,
        reduction: str | None = "sum_over_batch_size",
        name: str = "varifocal_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_positive(_OWNER, "alpha", alpha)
        validation.check_non_negative(_OWNER, "gamma", gamma)
        validation.check_bool(_OWNER, "from_logits", from_logits)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.from_logits = from_logits

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = numerics.upcast_half(y_pred)
        y_true = numerics.as_float(y_true, y_pred)
        shapes.check_same_shape(_OWNER, y_true, y_pred)
        shapes.check_min_rank(_OWNER, "y_pred", y_pred, 2, "(batch, ..., classes)")
        validation.check_in_range(_OWNER, "y_true", y_true, 0.0, 1.0)
        if self.from_logits:
            probability = keras.ops.sigmoid(y_pred)
            bce = ops.sigmoid_cross_entropy(y_true, y_pred)
        else:
            validation.check_probabilities(_OWNER, "y_pred", y_pred)
            probability = y_pred
            clipped = keras.ops.clip(y_pred, _PROBABILITY_EPSILON, 1.0 - _PROBABILITY_EPSILON)
            bce = -(y_true * keras.ops.log(clipped) + (1.0 - y_true) * keras.ops.log1p(-clipped))
        negative_weight = self.alpha * keras.ops.power(probability, self.gamma)
        weight = keras.ops.where(y_true > 0.0, y_true, negative_weight)
        per_class = keras.ops.sum(weight * bce, axis=-1)
        if len(per_class.shape) == 1:
            return per_class
        return keras.ops.mean(per_class, axis=tuple(range(1, len(per_class.shape))))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "alpha": self.alpha,
            "gamma": self.gamma,
            "from_logits": self.from_logits,
        }
