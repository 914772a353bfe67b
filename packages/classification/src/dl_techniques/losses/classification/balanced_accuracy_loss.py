"""AnyLoss balanced accuracy loss."""

from typing import Any

from dl_techniques.losses.classification._confusion import SoftConfusionMatrixLoss, safe_ratio
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class BalancedAccuracyLoss(SoftConfusionMatrixLoss):
    """One minus the soft balanced accuracy of a batch (AnyLoss).

    ``yhat = sigmoid(L (p - 0.5))`` (``L = amplifying_scale``) of the
    probabilities ``p`` (``sigmoid(y_pred)`` with ``from_logits=True``)
    gives the soft confusion matrix as ``sample_weight``-weighted batch sums
    ``TP = sum w y yhat``, ``FN = sum w y (1 - yhat)``, ``FP = sum w (1 - y)
    yhat``, ``TN = sum w (1 - y)(1 - yhat)`` over hard labels ``y`` in
    {0, 1} (see ``AnyLoss``). The loss is one scalar per batch: an integer
    ``sample_weight`` ``k`` on a row equals repeating the row ``k`` times.

    ```
    balanced_accuracy = (TP / (TP + FN + eps) + TN / (TN + FP + eps)) / 2
    loss = 1 - balanced_accuracy,   eps = 1e-5
    ```

    Youden's J statistic is ``2 * balanced_accuracy - 1``, so this loss also
    optimises J.

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
        name: Name of the loss instance. Defaults to ``"balanced_accuracy_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 are
            computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = BalancedAccuracyLoss()
    loss([1.0, 0.0, 0.0, 0.0], [0.9, 0.8, 0.3, 0.1])  # ~1/6: recall 1, specificity 2/3
    ```
    """

    def __init__(
        self,
        amplifying_scale: float = 73.0,
        from_logits: bool = False,
        average: str = "micro",
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "balanced_accuracy_loss",
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
        return 0.5 * (safe_ratio(tp, tp + fn) + safe_ratio(tn, tn + fp))
