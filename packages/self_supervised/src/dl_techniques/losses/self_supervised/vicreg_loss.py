"""VICReg: variance-invariance-covariance regularisation of two views."""

from typing import Any

import keras

from dl_techniques.losses.core import ops, validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.numerics import safe_divide
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.self_supervised import _view_statistics

_NAME = "VICRegLoss"
# Added to the variance under the square root, as in the official code: the
# standard deviation and its gradient stay finite for a collapsed dimension.
_VARIANCE_EPSILON = 1e-4


@register_serializable
class VICRegLoss(BatchLoss):
    """VICReg loss: two views agree, every dimension varies, dimensions decorrelate.

    For the embeddings ``Z`` and ``Z'`` ``(B, D)`` of two views of B samples,
    with per-dimension statistics over the batch and the unbiased covariance
    ``C(Z) = (Z - mean Z)^T (Z - mean Z) / (B - 1)``:

    ```
    invariance = mean_{i, d} (Z_id - Z'_id)^2                          (MSE)
    v(Z)       = mean_d relu(1 - sqrt(C(Z)_dd + 1e-4))
    variance   = (v(Z) + v(Z')) / 2
    c(Z)       = sum_{d != e} C(Z)_de^2 / D
    covariance = c(Z) + c(Z')
    loss       = sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance
    ```

    This is the loss of the authors' code (``VICReg.forward`` in
    facebookresearch/vicreg). The variance term keeps each dimension's
    standard deviation at 1 or above, which prevents collapse to a constant;
    the covariance term pushes the dimensions towards decorrelation.

    ``y_pred`` is a dict ``{"view1", "view2"}`` of ``(B, D)`` embeddings, or
    one ``(2B, D)`` tensor stacked ``[view1; view2]``; ``y_true`` is ignored.
    Every statistic is one of the global batch: under ``tf.distribute`` and
    torch DDP the batch sums are averaged across replicas (``all_mean``, with
    gradient), so N replicas with equal slices train as one device on the
    global batch, ``B`` counting every replica's samples; under
    ``keras.distribution`` on jax the loss sees the global batch.

    The value is one per batch. ``sample_weight`` (a scalar, ``(B,)`` or
    ``(B, 1)``, one weight per pair of views) acts as frequency weights
    inside every statistic: weighted means, and ``sum_i w_i - 1`` in place of
    ``B - 1``, so an integer weight ``k`` equals repeating the pair ``k``
    times and 0 drops it. A batch whose weights sum to 1 or less has no
    unbiased covariance; it counts as 0 there. A batch known to hold a
    single sample on one device raises ``ValueError``. The computation runs
    in float32 for float16 and bfloat16 inputs.

    Reference:
        Bardes, A., Ponce, J., & LeCun, Y. (2022). VICReg:
        Variance-Invariance-Covariance Regularization for Self-Supervised
        Learning. ICLR. https://arxiv.org/abs/2105.04906

    Args:
        sim_coeff: Non-negative weight of the invariance term. Defaults to
            25.0.
        std_coeff: Non-negative weight of the variance term. Defaults to
            25.0.
        cov_coeff: Non-negative weight of the covariance term. Defaults to
            1.0.
        reduction: Keras reduction; the value is one statistic of the batch
            already, so it decides only whether the value is divided by the
            replica count under ``tf.distribute``, as Keras divides its mean
            reductions (not for ``"sum"`` and ``None``). Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"vicreg_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = VICRegLoss()
    same = [[1.0, 1.0], [-1.0, -1.0]]
    # No invariance cost; both variances 2 (std above 1); covariance 2 off the
    # diagonal: 2 * 2^2 / 2 = 4 per view, 8 in all.
    loss(None, {"view1": same, "view2": same})  # 8.0
    ```
    """

    def __init__(
        self,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "vicreg_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_non_negative(_NAME, "sim_coeff", sim_coeff)
        validation.check_non_negative(_NAME, "std_coeff", std_coeff)
        validation.check_non_negative(_NAME, "cov_coeff", cov_coeff)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.sim_coeff = float(sim_coeff)
        self.std_coeff = float(std_coeff)
        self.cov_coeff = float(cov_coeff)

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        first, second, weights = _view_statistics.views_and_weights(_NAME, y_pred, sample_weight)
        batch = _view_statistics.WeightedBatch(weights, first)
        invariance, first_mean, second_mean = batch.means(
            batch.sum(ops.mean(keras.ops.square(first - second), axis=-1)),
            batch.sum(first),
            batch.sum(second),
        )
        centred = (first - first_mean, second - second_mean)
        scatters = batch.means(*(batch.cross_sum(view, view) for view in centred))
        # Scatter over the batch weight, times W / (W - 1): the unbiased
        # covariance with W = sum_i w_i over every replica (B without weights).
        unbiased = safe_divide(batch.total, batch.total - 1.0)
        dimensions = keras.ops.cast(keras.ops.shape(first)[-1], first.dtype)
        variance = 0.0
        covariance = 0.0
        for scatter in scatters:
            standard_deviation = keras.ops.sqrt(
                keras.ops.diagonal(scatter) * unbiased + _VARIANCE_EPSILON
            )
            variance += 0.5 * ops.mean(keras.ops.relu(1.0 - standard_deviation), axis=0)
            off_diagonal = _view_statistics.off_diagonal_square_sum(scatter)
            covariance += off_diagonal * keras.ops.square(unbiased) / dimensions
        return self.sim_coeff * invariance + self.std_coeff * variance + self.cov_coeff * covariance

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "sim_coeff": self.sim_coeff,
            "std_coeff": self.std_coeff,
            "cov_coeff": self.cov_coeff,
        }
