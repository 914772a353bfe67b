"""Contrastive loss over all the pairs of a batch (Hadsell et al. 2006)."""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.metric_learning import _pairwise

_NAME = "ContrastivePairLoss"


@register_serializable
class ContrastivePairLoss(BatchLoss):
    """Contrastive loss of every pair of embeddings in a batch.

    Pairs with the same label are pulled together, pairs with different
    labels pushed at least ``margin`` apart. For all pairs ``i < j`` of the
    batch, with ``y_ij = 1`` when the labels match and ``d`` the chosen
    distance:

    ```
    l_ij = y_ij d_ij^2 + (1 - y_ij) max(margin - d_ij, 0)^2
    loss = mean over the B (B - 1) / 2 pairs of l_ij
    ```

    This is TensorFlow Addons' ``contrastive_loss`` (no factor 1/2) applied
    to the pairs mined from labels ``(B,)`` and embeddings ``(B, D)``; a batch
    of one sample gives 0. ``distance`` is one of ``"euclidean"``,
    ``"squared_euclidean"`` (then ``d`` is the squared distance, squared
    again by the formula) or ``"cosine"`` (``1 - cos``), as in
    ``TripletLoss``. The value is one per batch, so ``sample_weight`` raises
    ``ValueError``; pairs are formed within the batch the loss sees (the
    replica's slice under ``tf.distribute`` and torch DDP).

    Reference:
        Hadsell, R., Chopra, S., & LeCun, Y. (2006). Dimensionality Reduction
        by Learning an Invariant Mapping. CVPR.

    Args:
        margin: Non-negative float, the distance beyond which a negative pair
            costs nothing. Defaults to 1.0.
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``.
            Defaults to ``"euclidean"``.
        reduction: Keras reduction; the value is a mean already. Defaults
            to ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to
            ``"contrastive_pair_loss"``.
        dtype: Dtype of the loss computations. Defaults to
            ``keras.backend.floatx()``.

    Example:

    ```python
    loss = ContrastivePairLoss(margin=1.0)
    # Pairs (0, 1): same label, d = 0.5 -> 0.25; (0, 2): d = 0.25 -> 0.5625;
    # (1, 2): d = 0.75 -> 0.0625.
    loss([0, 0, 1], [[0.0], [0.5], [-0.25]])  # 0.875 / 3 = 0.2917
    ```
    """

    def __init__(
        self,
        margin: float = 1.0,
        distance: str = "euclidean",
        reduction: str | None = "sum_over_batch_size",
        name: str = "contrastive_pair_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_non_negative(_NAME, "margin", margin)
        validation.check_choice(_NAME, "distance", distance, _pairwise.DISTANCES)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = float(margin)
        self.distance = distance

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        distances, positive, negative = _pairwise.mine(
            _NAME, y_true, y_pred, sample_weight, self.distance
        )
        pulled = keras.ops.square(distances)
        pushed = keras.ops.square(keras.ops.relu(self.margin - distances))
        # The masks are disjoint; the diagonal is in neither.
        losses = keras.ops.where(negative, pushed, keras.ops.where(positive, pulled, 0.0))
        # Each unordered pair appears twice off the diagonal, with equal terms.
        batch = keras.ops.cast(keras.ops.shape(distances)[0], distances.dtype)
        return numerics.safe_divide(keras.ops.sum(losses), batch * (batch - 1.0))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "margin": self.margin,
            "distance": self.distance,
        }
