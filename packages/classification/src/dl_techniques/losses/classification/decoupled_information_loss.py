"""Cross-entropy with separate confidence and class-diversity entropy terms."""

from typing import Any

import keras

from dl_techniques.losses.classification import _information
from dl_techniques.losses.core import validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable

_NAME = "DecoupledInformationLoss"


@register_serializable
class DecoupledInformationLoss(BatchLoss):
    """Cross-entropy minus a per-sample and a batch-level entropy bonus.

    For one-hot targets ``y`` (smoothed to ``t``), predicted distributions
    ``p_i`` and their batch mean ``p_bar``:

    ```
    t_k     = y_k (1 - s) + s / K                          (label smoothing s)
    CE_i    = -sum_k t_k log p_ik
    H(q)    = -sum_k q_k log q_k
    p_bar   = (1 / B) sum_i p_i
    loss_i  = CE_i - uncertainty_weight * H(p_i) - diversity_weight * H(p_bar)
    ```

    The two entropy terms act on different things, hence "decoupled":

    - ``-uncertainty_weight * H(p_i)`` (confidence penalty) raises the
      entropy of each single prediction: it stops the softmax from
      saturating on the training set and so counters over-confidence.
    - ``-diversity_weight * H(p_bar)`` raises the entropy of the batch's
      average prediction: it rewards spreading predictions over all classes
      and penalises collapse onto a few classes, without asking any single
      prediction to be uncertain. It is the same for every sample of the
      batch; each per-sample value carries it, so the batch mean of the loss
      is ``mean_i (CE_i - uncertainty_weight H(p_i)) - diversity_weight
      H(p_bar)``.

    ``sample_weight`` is a frequency weight: ``p_bar`` becomes the weighted
    mean ``sum_i w_i p_i / sum_i w_i``, and the ``"sum_over_batch_size"``
    (and ``"mean"``) reduction returns ``sum_i w_i loss_i / sum_i w_i``, so
    a weight of ``k`` equals repeating the sample ``k`` times and a weight of
    0 removes it from every term. ``reduction="sum"`` returns
    ``sum_i w_i loss_i`` and ``reduction=None`` the values ``w_i loss_i``.
    Under data-parallel training ``p_bar`` is the mean over all replicas.

    Shapes: ``y_true`` one-hot ``(B, K)``, ``y_pred`` logits or probabilities
    ``(B, K)``; with ``reduction=None`` the loss returns one value per sample.
    Keras masks are not read (pass a mask as ``sample_weight``).

    Targets other than 0 and 1 (label smoothing is applied inside, to hard
    targets) and, with ``from_logits=False``, probabilities outside [0, 1]
    raise a ``ValueError`` on the first eager call of an instance (every
    eager call with ``DL_LOSSES_VALIDATE=always``; never under ``jit``).

    Reference:
        Pereyra, G., Tucker, G., Chorowski, J., Kaiser, L., & Hinton, G.
        (2017). Regularizing Neural Networks by Penalizing Confident Output
        Distributions. https://arxiv.org/abs/1701.06548

        Krause, A., Perona, P., & Gomes, R. (2010). Discriminative Clustering
        by Regularized Information Maximization. NeurIPS (the entropy of the
        mean prediction as a class-balance term).

    Args:
        uncertainty_weight: Weight >= 0 of the per-sample entropy bonus.
            Defaults to 0.2.
        diversity_weight: Weight >= 0 of the batch-mean entropy bonus.
            Defaults to 0.01.
        label_smoothing: Smoothing in [0, 1) of the cross-entropy targets.
            Defaults to 0.0.
        from_logits: Whether ``y_pred`` holds logits (softmax taken inside)
            rather than probabilities, which are renormalised and clipped to
            ``[epsilon, 1 - epsilon]``. Defaults to True.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to
            ``"decoupled_information_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = DecoupledInformationLoss(uncertainty_weight=0.5, diversity_weight=1.0)
    # Equal logits over 2 classes: CE = H(p) = H(p_bar) = log 2, so the loss
    # is (1 - 0.5 - 1.0) log 2 = -0.3466
    loss([[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [3.0, 3.0]])
    ```
    """

    def __init__(
        self,
        uncertainty_weight: float = 0.2,
        diversity_weight: float = 0.01,
        label_smoothing: float = 0.0,
        from_logits: bool = True,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "decoupled_information_loss",
        dtype: Any | None = None,
    ) -> None:
        self.uncertainty_weight = _information.non_negative_number(
            _NAME, "uncertainty_weight", uncertainty_weight
        )
        self.diversity_weight = _information.non_negative_number(
            _NAME, "diversity_weight", diversity_weight
        )
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
        per_sample = _information.cross_entropy(targets, log_probs)
        per_sample = per_sample - self.uncertainty_weight * _information.entropy(probs, log_probs)
        mean_prediction = _information.batch_mean(probs, weights)
        diversity = _information.entropy_of_distribution(mean_prediction)
        per_sample = per_sample - self.diversity_weight * diversity
        return _information.reduce_per_sample(per_sample, weights, self.reduction)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "uncertainty_weight": self.uncertainty_weight,
            "diversity_weight": self.diversity_weight,
            "label_smoothing": self.label_smoothing,
            "from_logits": self.from_logits,
        }
