"""Cross-entropy with a confidence penalty and a mutual-information bottleneck."""

from typing import Any

import keras

from dl_techniques.losses.classification import _information
from dl_techniques.losses.core import validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable

_NAME = "GoodhartAwareLoss"


@register_serializable
class GoodhartAwareLoss(BatchLoss):
    """Cross-entropy regularised against over-optimising the training proxy.

    Goodhart's law: a measure that becomes a target stops being a good
    measure. Driving training cross-entropy to 0 makes predictions
    over-confident and lets them latch onto any input detail that separates
    the training labels. Two information terms push back. For one-hot
    targets ``y`` (smoothed to ``t``), predicted distributions ``p_i`` and
    their batch mean ``p_bar``:

    ```
    t_k     = y_k (1 - s) + s / K                          (label smoothing s)
    CE_i    = -sum_k t_k log p_ik
    H(q)    = -sum_k q_k log q_k
    I       = H(p_bar) - (1 / B) sum_j H(p_j)
    loss_i  = CE_i - entropy_weight * H(p_i) + mi_weight * I
    ```

    ``I`` is the batch (plug-in) estimate of the mutual information between
    the input and the predicted label: the entropy of the marginal
    prediction minus the mean conditional entropy. It is >= 0 (the entropy
    is concave) and the same for every sample of the batch; each per-sample
    value carries it. What each term does to training:

    - ``-entropy_weight * H(p_i)`` (confidence penalty) raises the entropy of
      each prediction, keeping the softmax away from saturation.
    - ``+mi_weight * I`` is an information-bottleneck compression term: it
      penalises how much the predictions depend on the input, both by raising
      every prediction's entropy and by pulling the batch's predictions
      towards their common mean. Only the cross-entropy asks predictions to
      differ by class, so the model keeps the input information that the
      labels need and is discouraged from encoding more.

    The batch mean of the loss is ``mean_i CE_i - (entropy_weight +
    mi_weight) mean_i H(p_i) + mi_weight H(p_bar)``.

    ``sample_weight`` is a frequency weight: ``p_bar`` and the mean entropy
    in ``I`` become weighted means (``sum_i w_i x_i / sum_i w_i``), and the
    ``"sum_over_batch_size"`` (and ``"mean"``) reduction returns
    ``sum_i w_i loss_i / sum_i w_i``, so a weight of ``k`` equals repeating
    the sample ``k`` times and a weight of 0 removes it from every term.
    ``reduction="sum"`` returns ``sum_i w_i loss_i`` and ``reduction=None``
    the values ``w_i loss_i``. Under data-parallel training the batch means
    are taken over all replicas.

    Shapes: ``y_true`` one-hot ``(B, K)``, ``y_pred`` logits or probabilities
    ``(B, K)``; with ``reduction=None`` the loss returns one value per sample.
    Keras masks are not read (pass a mask as ``sample_weight``).

    Targets other than 0 and 1 (label smoothing is applied inside, to hard
    targets) and, with ``from_logits=False``, probabilities outside [0, 1]
    raise a ``ValueError`` on the first eager call of an instance (every
    eager call with ``DL_LOSSES_VALIDATE=always``; never under ``jit``).

    Reference:
        Tishby, N., Pereira, F. C., & Bialek, W. (2000). The Information
        Bottleneck Method. https://arxiv.org/abs/physics/0004057

        Pereyra, G., Tucker, G., Chorowski, J., Kaiser, L., & Hinton, G.
        (2017). Regularizing Neural Networks by Penalizing Confident Output
        Distributions. https://arxiv.org/abs/1701.06548

    Args:
        entropy_weight: Weight >= 0 of the per-sample entropy bonus.
            Defaults to 0.1.
        mi_weight: Weight >= 0 of the mutual-information penalty.
            Defaults to 0.01.
        label_smoothing: Smoothing in [0, 1) of the cross-entropy targets.
            Defaults to 0.0.
        from_logits: Whether ``y_pred`` holds logits (softmax taken inside)
            rather than probabilities, which are renormalised and clipped to
            ``[epsilon, 1 - epsilon]``. Defaults to True.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"goodhart_aware_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = GoodhartAwareLoss(entropy_weight=0.0, mi_weight=1.0)
    # Two certain predictions of different classes (logit gap 100): CE ~ 0,
    # H(p_i) ~ 0, H(p_bar) = log 2, so I = log 2 and the loss is 0.6931
    loss([[1.0, 0.0], [0.0, 1.0]], [[100.0, 0.0], [0.0, 100.0]])
    ```
    """

    def __init__(
        self,
        entropy_weight: float = 0.1,
        mi_weight: float = 0.01,
        label_smoothing: float = 0.0,
        from_logits: bool = True,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "goodhart_aware_loss",
        dtype: Any | None = None,
    ) -> None:
        self.entropy_weight = _information.non_negative_number(
            _NAME, "entropy_weight", entropy_weight
        )
        self.mi_weight = _information.non_negative_number(_NAME, "mi_weight", mi_weight)
        self.label_smoothing = _information.label_smoothing_value(_NAME, label_smoothing)
        validation.check_bool(_NAME, "from_logits", from_logits)
        self.from_logits = from_logits
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        y_true, y_pred = _information.as_float_pair(
            y_true, keras.ops.cast(y_pred, self.compute_dtype)
        )
        _information.check_class_shapes(_NAME, y_true, y_pred)
        _information.check_values(_NAME, y_true, y_pred, self.from_logits)
        weights = _information.frequency_weights(_NAME, sample_weight, y_pred)

        probs, log_probs = _information.probabilities_and_logs(y_pred, self.from_logits)
        targets = _information.smoothed_targets(y_true, self.label_smoothing)
        sample_entropy = _information.entropy(probs, log_probs)
        marginal_entropy = _information.entropy_of_distribution(
            _information.batch_mean(probs, weights)
        )
        mutual_information = marginal_entropy - _information.batch_mean(sample_entropy, weights)
        per_sample = _information.cross_entropy(targets, log_probs)
        per_sample = per_sample - self.entropy_weight * sample_entropy
        per_sample = per_sample + self.mi_weight * mutual_information
        return _information.reduce_per_sample(per_sample, weights, self.reduction)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "entropy_weight": self.entropy_weight,
            "mi_weight": self.mi_weight,
            "label_smoothing": self.label_smoothing,
            "from_logits": self.from_logits,
        }
