"""Barlow Twins: redundancy reduction through the cross-correlation of two views."""

from typing import Any

import keras

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.self_supervised import _view_statistics

_NAME = "BarlowTwinsLoss"
# The epsilon of torch.nn.BatchNorm1d, which normalises each view in the
# official code.
_NORM_EPSILON = 1e-5


@register_serializable
class BarlowTwinsLoss(BatchLoss):
    """Barlow Twins loss: the cross-correlation of two views should be the identity.

    Each view's embeddings ``(B, D)`` are batch-normalised per dimension
    (batch mean, biased batch variance, no affine parameters, as
    ``BatchNorm1d(D, affine=False)`` in training mode), then correlated
    across the views:

    ```
    z_a  = (Z  - mean Z)  / sqrt(var Z  + 1e-5)        (per dimension, biased variance)
    z_b  = (Z' - mean Z') / sqrt(var Z' + 1e-5)
    c    = z_a^T z_b / B                                (D, D)
    loss = sum_i (1 - c_ii)^2 + lambda_offdiag * sum_{i != j} c_ij^2
    ```

    The diagonal term makes each dimension invariant to the augmentation;
    the off-diagonal term decorrelates the dimensions (redundancy
    reduction). This is the loss of the authors' code (``BarlowTwins.forward``
    in facebookresearch/barlowtwins), whose default ``lambd`` is 0.0051.

    ``y_pred`` is a dict ``{"view1", "view2"}`` of ``(B, D)`` embeddings, or
    one ``(2B, D)`` tensor stacked ``[view1; view2]``; ``y_true`` is ignored.
    Means, variances and ``c`` are those of the global batch: under
    ``tf.distribute`` and torch DDP the batch sums are averaged across
    replicas (``all_mean``, with gradient), as the official code does with
    synchronised batch norm and an all-reduce of ``c``, so N replicas with
    equal slices train as one device on the global batch; under
    ``keras.distribution`` on jax the loss sees the global batch.

    The value is one per batch. ``sample_weight`` (a scalar, ``(B,)`` or
    ``(B, 1)``, one weight per pair of views) acts as frequency weights
    inside the means, variances and ``c`` (``B`` becomes ``sum_i w_i``), so
    an integer weight ``k`` equals repeating the pair ``k`` times and 0
    drops it. A batch known to hold a single sample on one device raises
    ``ValueError``. The computation runs in float32 for float16 and bfloat16
    inputs.

    Reference:
        Zbontar, J., Jing, L., Misra, I., LeCun, Y., & Deny, S. (2021).
        Barlow Twins: Self-Supervised Learning via Redundancy Reduction.
        ICML. https://arxiv.org/abs/2103.03230

    Args:
        lambda_offdiag: Non-negative weight of the off-diagonal term.
            Defaults to 0.0051.
        reduction: Keras reduction; the value is one statistic of the batch
            already, so it decides only whether the value is divided by the
            replica count under ``tf.distribute``, as Keras divides its mean
            reductions (not for ``"sum"`` and ``None``). Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"barlow_twins_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = BarlowTwinsLoss(lambda_offdiag=0.5)
    first = [[1.0, 1.0], [-1.0, -1.0]]
    second = [[1.0, -1.0], [-1.0, 1.0]]
    # Normalised, c = [[1, -1], [1, -1]] (up to the 1e-5 of the norm):
    # (1 - 1)^2 + (1 + 1)^2 + 0.5 * (1 + 1) = 5.
    loss(None, {"view1": first, "view2": second})  # 4.99994
    ```
    """

    def __init__(
        self,
        lambda_offdiag: float = 0.0051,
        reduction: str | None = "sum_over_batch_size",
        name: str = "barlow_twins_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_non_negative(_NAME, "lambda_offdiag", lambda_offdiag)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.lambda_offdiag = float(lambda_offdiag)

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        first, second, weights = _view_statistics.views_and_weights(_NAME, y_pred, sample_weight)
        batch = _view_statistics.WeightedBatch(weights, first)
        first_mean, second_mean = batch.means(batch.sum(first), batch.sum(second))
        first_centred, second_centred = first - first_mean, second - second_mean
        first_variance, second_variance = batch.means(
            batch.sum(keras.ops.square(first_centred)), batch.sum(keras.ops.square(second_centred))
        )
        first_normalised = first_centred * keras.ops.rsqrt(first_variance + _NORM_EPSILON)
        second_normalised = second_centred * keras.ops.rsqrt(second_variance + _NORM_EPSILON)
        (correlation,) = batch.means(batch.cross_sum(first_normalised, second_normalised))
        on_diagonal = keras.ops.sum(keras.ops.square(1.0 - keras.ops.diagonal(correlation)))
        off_diagonal = _view_statistics.off_diagonal_square_sum(correlation)
        return on_diagonal + self.lambda_offdiag * off_diagonal

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "lambda_offdiag": self.lambda_offdiag,
        }
