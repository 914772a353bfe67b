"""AnyLoss geometric mean (of sensitivity and specificity) loss."""

from typing import Any

import keras

from dl_techniques.losses.classification._confusion import (
    EPSILON,
    SoftConfusionMatrixLoss,
    safe_ratio,
)
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class GeometricMeanLoss(SoftConfusionMatrixLoss):
    """One minus the soft geometric mean of sensitivity and specificity (AnyLoss).

    ``yhat = sigmoid(L (p - 0.5))`` (``L = amplifying_scale``) of the
    probabilities ``p`` (``sigmoid(y_pred)`` with ``from_logits=True``)
    gives the soft confusion matrix as ``sample_weight``-weighted batch sums
    ``TP = sum w y yhat``, ``FN = sum w y (1 - yhat)``, ``FP = sum w (1 - y)
    yhat``, ``TN = sum w (1 - y)(1 - yhat)`` over hard labels ``y`` in
    {0, 1} (see ``AnyLoss``). The loss is one scalar per batch: an integer
    ``sample_weight`` ``k`` on a row equals repeating the row ``k`` times.

    ```
    sensitivity = TP / (TP + FN + eps),   specificity = TN / (TN + FP + eps)
    g_mean = sqrt(sensitivity * specificity + eps),   eps = 1e-5
    loss = 1 - g_mean
    ```

    The eps inside the square root keeps the gradient finite when either
    rate is 0. It also lifts ``g_mean`` slightly: the loss lies in
    ``[1 - sqrt(1 + eps), 1 - sqrt(eps)]``, about ``[-5e-6, 0.9968]``.

    Reference:
        Han, D., Moniz, N., & Chawla, N. V. (2024). AnyLoss: Transforming
        Classification Metrics into Loss Functions. KDD 2024.
        https://arxiv.org/abs/2405.14745

    Args:
        amplifying_scale: Number > 0; the slope ``L`` of the approximation
            function. Defaults to 73.0.
        from_logits: Bool; apply a sigmoid to ``y_pred`` first. Defaults to
            False.
        average: ``"micro"`` (one confusion matrix over every cell) or
            ``"macro"`` (one per column, then the mean of the metrics), for
            multi-label inputs. Defaults to ``"micro"``.
        reduction: Accepted for Keras compatibility; no effect, the loss is
            one value per batch.
        name: Name of the loss instance. Defaults to ``"geometric_mean_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 are
            computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = GeometricMeanLoss()
    loss([1.0, 0.0, 0.0, 0.0], [0.9, 0.8, 0.3, 0.1])  # ~0.18: 1 - sqrt(1 * 2/3)
    ```
    """

    def __init__(
        self,
        amplifying_scale: float = 73.0,
        from_logits: bool = False,
        average: str = "micro",
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "geometric_mean_loss",
        dtype: Any | None = None,
    ) -> None:
        super().__init__(
            amplifying_scale=amplifying_scale,
            from_logits=from_logits,
            average=average,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )

    def metric(self, tp: Any, fn: Any, fp: Any, tn: Any) -> Any:
        sensitivity = safe_ratio(tp, tp + fn)
        specificity = safe_ratio(tn, tn + fp)
        return keras.ops.sqrt(sensitivity * specificity + EPSILON)
