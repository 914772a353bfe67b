"""Deep clustering loss: DEC self-training plus a cluster-balance term."""

from typing import Any

import keras

from dl_techniques.losses.core import distributed, numerics, validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.core.shapes import sizes_differ, static_shape

_NAME = "ClusteringLoss"

# Floor of the arguments of log: an assignment or cluster frequency of exactly
# 0 would give log 0 = -inf. Below 1e-30 the terms p log p are under 1e-28, so
# the floor changes no float32 value, while gradients stay finite.
_LOG_FLOOR = 1e-30

_PER_SAMPLE_REDUCTIONS = (None, "none")


@register_serializable
class ClusteringLoss(BatchLoss):
    """Deep embedded clustering (DEC) loss with a cluster-balance term.

    ``y_pred`` holds soft cluster assignments ``q`` of shape ``(B, K)``, each
    row a distribution over K clusters (a softmax, or DEC's Student-t kernel).
    Compactness is DEC's self-training objective: the divergence of ``q``
    from a sharpened target ``P`` that emphasises confident assignments and
    divides by the cluster frequency ``f_j`` so that large clusters do not
    absorb everything. ``P`` is a constant (no gradient flows through it).
    Balance is the divergence of the mean assignment from uniform, which is
    0 when every cluster receives the same total mass. With ``a`` =
    ``target_power`` (DEC: 2):

    ```
    f_j     = sum_i q_ij
    p_ij    = (q_ij^a / f_j) / sum_k (q_ik^a / f_k)          (stop-gradient)
    KL_i    = sum_j p_ij log(p_ij / q_ij)
    q_bar_j = mean_i q_ij
    balance = sum_j q_bar_j log(K q_bar_j)                   (KL(q_bar || uniform))
    loss_i  = distance_weight * KL_i + distribution_weight * balance
    ```

    With ``reduction=None`` the loss returns ``loss_i`` per sample, shape
    ``(B,)``; the default reduction gives ``distance_weight * mean_i KL_i + distribution_weight *
    balance``. Terms with ``q_ij = 0`` contribute 0 (their log is floored),
    so the value and gradient stay finite for one-hot rows.

    The loss is batch-level (``f`` and ``q_bar`` are batch statistics), so
    ``sample_weight`` is a frequency weight acting inside them: ``f_j = sum_i
    w_i q_ij``, ``q_bar = sum_i w_i q_i / sum_i w_i``, and the mean reductions
    (``"sum_over_batch_size"``, ``"mean"``, ``"mean_with_sample_weight"``)
    divide ``sum_i w_i loss_i`` by ``sum_i w_i``. An integer weight ``k`` on a
    row equals repeating the row ``k`` times and a weight of 0 drops it (all
    weights 0 give 0). ``reduction="sum"`` returns ``sum_i w_i loss_i`` and
    ``reduction=None`` the values ``w_i loss_i``. The batch sums are taken
    across replicas with ``all_mean`` under ``tf.distribute`` and torch DDP
    (equal slices), and over the global batch under ``keras.distribution``
    on JAX. ``y_true`` is ignored. The computation runs in float32 for
    float16 and bfloat16 inputs.

    Assignments outside [0, 1] raise ``ValueError`` on the first eager call
    of the loss (every eager call with ``DL_LOSSES_VALIDATE=always``); a
    compiled step cannot read values and does not check them. NaN is not
    rejected: it propagates to a NaN loss.

    Reference:
        Xie, J., Girshick, R., & Farhadi, A. (2016). Unsupervised Deep
        Embedding for Clustering Analysis. ICML.
        https://arxiv.org/abs/1511.06335

    Args:
        distance_weight: Weight >= 0 of the DEC compactness term. Defaults
            to 1.0.
        distribution_weight: Weight >= 0 of the balance term. Defaults to
            0.5.
        target_power: Exponent ``a > 0`` that sharpens the target; 2 is DEC's.
            Defaults to 2.0.
        reduction: Keras reduction name, applied by the loss itself to the
            per-sample values with ``sample_weight`` as frequency weights
            (see above). Defaults to ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"clustering_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = ClusteringLoss(distance_weight=0.0, distribution_weight=1.0)
    # Both samples certain of cluster 0: q_bar = (1, 0), balance = log 2.
    loss(keras.ops.zeros((2,)), [[1.0, 0.0], [1.0, 0.0]])  # 0.6931
    ```
    """

    def __init__(
        self,
        distance_weight: float = 1.0,
        distribution_weight: float = 0.5,
        target_power: float = 2.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "clustering_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_non_negative(_NAME, "distance_weight", distance_weight)
        validation.check_non_negative(_NAME, "distribution_weight", distribution_weight)
        validation.check_positive(_NAME, "target_power", target_power)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.distance_weight = float(distance_weight)
        self.distribution_weight = float(distribution_weight)
        self.target_power = float(target_power)

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        assignments = y_pred
        _check_assignments(assignments)
        if sample_weight is None:
            weights = keras.ops.ones_like(assignments[:, 0])
        else:
            weights = _frequency_weights(sample_weight, assignments)
        # Outside [0, 1] the floored logs and the KL terms have no meaning
        # and give a finite, wrong value. The rule is check_probabilities',
        # but its hint names from_logits, which this loss does not have.
        validation.check_in_range(
            _NAME,
            "y_pred",
            assignments,
            0.0,
            1.0,
            hint="Pass soft assignments, e.g. a softmax over cluster logits.",
        )
        weighted_values = weights * self._sample_values(assignments, weights)
        if self.reduction in _PER_SAMPLE_REDUCTIONS:
            return weighted_values
        total = keras.ops.sum(weighted_values)
        if self.reduction == "sum":
            return total
        # sum_i w_i over every replica, as the local batch size times the
        # replicas' mean weight, so that N replicas give one device's mean.
        batch = keras.ops.cast(keras.ops.shape(weights)[0], weights.dtype)
        weight_total = batch * distributed.all_mean(keras.ops.mean(weights))
        return numerics.safe_divide(total, weight_total)

    def _sample_values(self, assignments: Any, weights: Any) -> Any:
        """``loss_i`` of every sample, with frequency weights in the batch statistics."""
        weights = keras.ops.expand_dims(weights, axis=-1)
        log_assignments = keras.ops.log(keras.ops.maximum(assignments, _LOG_FLOOR))
        # The global batch sum up to a factor (the replica count), which the
        # normalisation of each target row cancels.
        frequency = distributed.all_mean(keras.ops.sum(weights * assignments, axis=0))
        log_frequency = keras.ops.log(keras.ops.maximum(frequency, _LOG_FLOOR))
        log_target = keras.ops.stop_gradient(
            keras.ops.log_softmax(self.target_power * log_assignments - log_frequency, axis=-1)
        )
        divergence = keras.ops.sum(
            keras.ops.exp(log_target) * (log_target - log_assignments), axis=-1
        )

        mean_assignment = numerics.safe_divide(
            frequency, distributed.all_mean(keras.ops.sum(weights))
        )
        num_clusters = keras.ops.cast(keras.ops.shape(assignments)[-1], assignments.dtype)
        log_mean_assignment = keras.ops.log(keras.ops.maximum(mean_assignment, _LOG_FLOOR))
        balance = keras.ops.sum(
            mean_assignment * (log_mean_assignment + keras.ops.log(num_clusters))
        )
        return self.distance_weight * divergence + self.distribution_weight * balance

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "distance_weight": self.distance_weight,
            "distribution_weight": self.distribution_weight,
            "target_power": self.target_power,
        }


def _check_assignments(assignments: Any) -> None:
    shape = static_shape(assignments)
    if len(shape) != 2:
        raise ValueError(
            f"{_NAME}: `y_pred` must be soft assignments of shape (batch, num_clusters); "
            f"got y_pred shape {shape}."
        )


def _frequency_weights(sample_weight: Any, assignments: Any) -> Any:
    """Returns ``sample_weight`` (a scalar, ``(B,)`` or ``(B, 1)``) as shape ``(B,)``."""
    given_shape = static_shape(sample_weight)
    weights = sample_weight
    if len(given_shape) == 0:
        weights = weights * keras.ops.ones_like(assignments[:, 0])
    elif len(given_shape) == 2 and given_shape[-1] == 1:
        weights = keras.ops.squeeze(weights, axis=-1)
    weight_shape = static_shape(weights)
    if len(weight_shape) != 1 or sizes_differ(weight_shape[0], assignments.shape[0]):
        raise ValueError(
            f"{_NAME}: `sample_weight` must be a scalar or have shape (batch,) or (batch, 1); "
            f"got sample_weight shape {given_shape} and y_pred shape {static_shape(assignments)}."
        )
    return weights
