"""Focal cross-entropy with a confidence penalty."""

from collections.abc import Sequence
from typing import Any

import keras

from dl_techniques.losses.classification import _information
from dl_techniques.losses.core import shapes, validation
from dl_techniques.losses.core.serialization import register_serializable

_NAME = "FocalUncertaintyLoss"

# Floor of 1 - p_k before the focal power: at a saturated prediction 1 - p_k
# is exactly 0, where (1 - p)^gamma has an infinite derivative for gamma < 1
# (and 0^0 a NaN one). The floor is far below any value the power can resolve.
_ONE_MINUS_P_FLOOR = 1e-30


@register_serializable
class FocalUncertaintyLoss(keras.losses.Loss):
    """Focal cross-entropy minus a weighted entropy of the prediction.

    For one-hot targets ``y`` (smoothed to ``t``) and predicted class
    probabilities ``p_i`` of sample ``i``:

    ```
    t_k     = y_k (1 - s) + s / K                          (label smoothing s)
    focal_i = sum_k alpha_k (1 - p_ik)^gamma * (-t_k log p_ik)
    H(p_i)  = -sum_k p_ik log p_ik
    loss_i  = focal_i - uncertainty_weight * H(p_i)
    ```

    What each term does to training:

    - The focal term is cross-entropy whose class terms are scaled down by
      ``(1 - p_ik)^gamma``: samples the model already gets right contribute
      little, so the gradient concentrates on hard, misclassified samples.
      ``alpha`` re-weights classes (e.g. by inverse frequency).
    - ``-uncertainty_weight * H(p_i)`` is the confidence penalty: minimising
      it raises the entropy of every prediction, which keeps the softmax
      from saturating, discourages over-confident (badly calibrated)
      outputs and keeps gradients alive late in training.

    The focal term is ``keras.losses.CategoricalFocalCrossentropy`` with the
    same ``alpha``, ``gamma`` and ``label_smoothing`` (``alpha=None`` here
    means 1, where Keras defaults to 0.25). From logits it is computed with
    ``log_softmax`` instead of Keras' probabilities clipped to
    ``[epsilon, 1 - epsilon]``, so the two agree wherever that clip is
    inactive, and this one keeps the exact value and gradient for saturated
    logits. With ``gamma=0``, ``alpha=None`` and ``uncertainty_weight=0`` the
    loss is the categorical cross-entropy. Probabilities
    (``from_logits=False``) are renormalised and clipped to
    ``[epsilon, 1 - epsilon]`` as Keras does.

    Shapes: ``y_true`` one-hot ``(B, K)``, ``y_pred`` logits or probabilities
    ``(B, K)``; the loss has one value per sample.

    Targets other than 0 and 1 (label smoothing is applied inside, to hard
    targets) and, with ``from_logits=False``, probabilities outside [0, 1]
    raise a ``ValueError`` on the first eager call of an instance (every
    eager call with ``DL_LOSSES_VALIDATE=always``; never under ``jit``).

    Reference:
        Lin, T.-Y., Goyal, P., Girshick, R., He, K., & Dollar, P. (2017).
        Focal Loss for Dense Object Detection. ICCV.
        https://arxiv.org/abs/1708.02002

        Pereyra, G., Tucker, G., Chorowski, J., Kaiser, L., & Hinton, G.
        (2017). Regularizing Neural Networks by Penalizing Confident Output
        Distributions. https://arxiv.org/abs/1701.06548

    Args:
        gamma: Focusing parameter, >= 0; 0 disables the focal scaling.
            Defaults to 2.0.
        alpha: Class weights: ``None`` (all 1), a number >= 0 applied to every
            class, or a sequence of ``K`` numbers >= 0, one per class.
            Defaults to ``None``.
        uncertainty_weight: Weight >= 0 of the entropy bonus. Defaults to 0.1.
        label_smoothing: Smoothing in [0, 1) of the targets inside the focal
            term. Defaults to 0.0.
        from_logits: Whether ``y_pred`` holds logits (softmax taken inside)
            rather than probabilities. Defaults to True.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to
            ``"focal_uncertainty_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = FocalUncertaintyLoss(gamma=0.0, uncertainty_weight=0.0)
    # Equal logits over 2 classes: p = (0.5, 0.5), cross-entropy log 2 = 0.6931
    loss([[1.0, 0.0]], [[0.0, 0.0]])
    ```
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = None,
        uncertainty_weight: float = 0.1,
        label_smoothing: float = 0.0,
        from_logits: bool = True,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "focal_uncertainty_loss",
        dtype: Any | None = None,
    ) -> None:
        self.gamma = _information.non_negative_number(_NAME, "gamma", gamma)
        self.alpha = _validated_alpha(alpha)
        self.uncertainty_weight = _information.non_negative_number(
            _NAME, "uncertainty_weight", uncertainty_weight
        )
        self.label_smoothing = _information.label_smoothing_value(_NAME, label_smoothing)
        validation.check_bool(_NAME, "from_logits", from_logits)
        self.from_logits = from_logits
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true, y_pred = _information.as_float_pair(y_true, y_pred)
        _information.check_class_shapes(_NAME, y_true, y_pred)
        _information.check_values(_NAME, y_true, y_pred, self.from_logits)
        num_classes = shapes.static_shape(y_pred)[-1]
        if isinstance(self.alpha, list) and num_classes not in (None, len(self.alpha)):
            raise ValueError(
                f"{_NAME}: `alpha` has {len(self.alpha)} per-class weights but y_pred has "
                f"{num_classes} classes; got alpha shape ({len(self.alpha)},) and y_pred "
                f"shape {shapes.static_shape(y_pred)}."
            )

        probs, log_probs = _information.probabilities_and_logs(y_pred, self.from_logits)
        targets = _information.smoothed_targets(y_true, self.label_smoothing)
        class_terms = -targets * log_probs
        if self.gamma:
            one_minus_p = keras.ops.maximum(1.0 - probs, _ONE_MINUS_P_FLOOR)
            class_terms = keras.ops.power(one_minus_p, self.gamma) * class_terms
        if self.alpha is not None:
            class_terms = keras.ops.convert_to_tensor(self.alpha, dtype=y_pred.dtype) * class_terms
        focal = keras.ops.sum(class_terms, axis=-1)
        if not self.uncertainty_weight:
            return focal
        return focal - self.uncertainty_weight * _information.entropy(probs, log_probs)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "gamma": self.gamma,
            "alpha": self.alpha,
            "uncertainty_weight": self.uncertainty_weight,
            "label_smoothing": self.label_smoothing,
            "from_logits": self.from_logits,
        }


def _validated_alpha(alpha: Any) -> float | list[float] | None:
    """Returns ``None``, a float or a list of floats, or raises ``ValueError``."""
    if alpha is None:
        return None
    if isinstance(alpha, (str, bytes)):
        raise ValueError(
            f"{_NAME}: `alpha` must be None, a number >= 0 or a sequence of per-class "
            f"numbers >= 0; got alpha={alpha!r}."
        )
    if not hasattr(alpha, "__iter__"):
        return _information.non_negative_number(_NAME, "alpha", alpha)
    values = list(alpha)
    if not values:
        raise ValueError(f"{_NAME}: `alpha` must hold one weight per class; got alpha=[].")
    return [_information.non_negative_number(_NAME, "alpha", value) for value in values]
