"""AnyLoss F-beta loss."""

from typing import Any

from dl_techniques.losses.classification._confusion import SoftConfusionMatrixLoss, safe_ratio
from dl_techniques.losses.core import validation
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class FBetaLoss(SoftConfusionMatrixLoss):
    """One minus the soft F-beta score of a batch (AnyLoss).

    ``yhat = sigmoid(L (p - 0.5))`` (``L = amplifying_scale``) of the
    probabilities ``p`` (``sigmoid(y_pred)`` with ``from_logits=True``)
    gives the soft confusion matrix as ``sample_weight``-weighted batch sums
    ``TP = sum w y yhat``, ``FN = sum w y (1 - yhat)``, ``FP = sum w (1 - y)
    yhat``, ``TN = sum w (1 - y)(1 - yhat)`` over hard labels ``y`` in
    {0, 1} (see ``AnyLoss``). The loss is one scalar per batch: an integer
    ``sample_weight`` ``k`` on a row equals repeating the row ``k`` times.

    ```
    f_beta = (1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP + eps),   eps = 1e-5
    loss = 1 - f_beta
    ```

    ``beta > 1`` weighs recall more than precision (a missed positive costs
    ``b^2`` times a false alarm); ``beta < 1`` the other way round.

    Reference:
        Han, D., Moniz, N., & Chawla, N. V. (2024). AnyLoss: Transforming
        Classification Metrics into Loss Functions. KDD 2024.
        https://arxiv.org/abs/2405.14745

    Args:
        beta: Number > 0; the weight of recall against precision. Defaults
            to 1.0 (the F1 score).
        amplifying_scale: Number > 0; the slope ``L`` of the approximation
            function. Defaults to 73.0.
        from_logits: Bool; apply a sigmoid to ``y_pred`` first. Defaults to
            False.
        average: ``"micro"`` (one confusion matrix over every cell) or
            ``"macro"`` (one per column, then the mean of the metrics), for
            multi-label inputs. Defaults to ``"micro"``.
        reduction: Accepted for Keras compatibility; no effect, the loss is
            one value per batch.
        name: Name of the loss instance. Defaults to ``"fbeta_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 are
            computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = FBetaLoss(beta=2.0)
    # TP 1, FN 1, FP 0: 1 - 5 / (5 + 4) = 4/9
    loss([1.0, 0.0, 1.0, 0.0], [0.9, 0.2, 0.3, 0.1])
    ```
    """

    def __init__(
        self,
        beta: float = 1.0,
        amplifying_scale: float = 73.0,
        from_logits: bool = False,
        average: str = "micro",
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "fbeta_loss",
        dtype: Any | None = None,
    ) -> None:
        validation.check_positive(type(self).__name__, "beta", beta)
        super().__init__(
            amplifying_scale=amplifying_scale,
            from_logits=from_logits,
            average=average,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        self.beta = float(beta)

    def metric(self, tp: Any, fn: Any, fp: Any, tn: Any) -> Any:
        beta_squared = self.beta**2
        weighted_tp = (1.0 + beta_squared) * tp
        # F1 (beta = 1) skips the product by 1: one eager operation less per step.
        weighted_fn = fn if beta_squared == 1.0 else beta_squared * fn
        return safe_ratio(weighted_tp, weighted_tp + weighted_fn + fp)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta": self.beta}
