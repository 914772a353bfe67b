"""Triplet loss with online mining of the triplets within a batch."""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.metric_learning import _pairwise

_NAME = "TripletLoss"
MINING = ("batch_all", "batch_hard", "semi_hard")


@register_serializable
class TripletLoss(BatchLoss):
    """Triplet margin loss on the embeddings of a batch, with online mining.

    For an anchor ``a``, a positive ``p`` (same label, ``p != a``) and a
    negative ``n`` (another label), with ``d`` the chosen distance:

    ```
    l(a, p, n) = max(d(a, p) - d(a, n) + margin, 0)
    ```

    The triplets come from the batch (labels ``(B,)``, embeddings
    ``(B, D)``), by ``mining``:

    - ``"semi_hard"`` (TensorFlow Addons' ``TripletSemiHardLoss``, after
      Schroff et al. 2015): for each anchor-positive pair, the negative is
      the one with the smallest ``d(a, n) > d(a, p)``; when no negative is
      farther than the positive, the one with the largest ``d(a, n)`` (the
      easiest). The loss is the mean of ``l`` over the anchor-positive pairs.
    - ``"batch_hard"`` (Hermans et al. 2017): per anchor, its farthest
      positive and its nearest negative; the mean over the anchors.
    - ``"batch_all"`` (Hermans et al. 2017, BA+): every valid triplet; the
      mean over the triplets with ``l > 0`` (0 when there are none).

    An anchor without a positive or without a negative forms no triplet and
    is left out of the mean (TensorFlow Addons counts an anchor-positive pair
    without any negative, i.e. a batch of one class, with a negative at
    distance 0); a batch without any triplet gives 0. ``distance``:
    ``"euclidean"`` ``||a - b||`` (a square root taken only where positive,
    so coincident embeddings give a finite gradient), ``"squared_euclidean"``
    ``||a - b||^2``, ``"cosine"`` ``1 - cos(a, b)``. Embeddings are used as
    given; L2-normalise them in the model when the paper does.

    The loss is one value per batch, so ``sample_weight`` raises
    ``ValueError``. The triplets are mined within the batch the loss sees:
    the replica's slice under ``tf.distribute`` and torch DDP, the global
    batch under ``keras.distribution`` on JAX. float16 and bfloat16
    embeddings are computed in float32.

    Reference:
        Schroff, F., Kalenichenko, D., & Philbin, J. (2015). FaceNet: A
        Unified Embedding for Face Recognition and Clustering. CVPR.
        https://arxiv.org/abs/1503.03832

        Hermans, A., Beyer, L., & Leibe, B. (2017). In Defense of the Triplet
        Loss for Person Re-Identification. https://arxiv.org/abs/1703.07737

    Args:
        margin: Non-negative float, the margin between positive and negative
            distances. Defaults to 1.0.
        mining: ``"semi_hard"``, ``"batch_hard"`` or ``"batch_all"``.
            Defaults to ``"semi_hard"``.
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``.
            Defaults to ``"euclidean"``.
        reduction: Keras reduction; the value is a mean already, so only
            ``"sum_over_batch_size"`` (the default) and ``"sum"`` or ``None``
            (no rescaling across replicas) differ.
        name: Name of the loss instance. Defaults to ``"triplet_loss"``.
        dtype: Dtype of the loss computations. Defaults to
            ``keras.backend.floatx()``.

    Example:

    ```python
    loss = TripletLoss(margin=1.0, mining="batch_hard")
    # Per anchor, max(farthest positive - nearest negative + 1, 0):
    # max(1 - 1.5 + 1, 0) = 0.5, max(1 - 0.5 + 1, 0) = 1.5, then 0.5 and 0.5
    # for the two copies at 1.5 (positive at 0, nearest negative at 0.5).
    loss([0, 0, 1, 1], [[0.0], [1.0], [1.5], [1.5]])  # 3.0 / 4 = 0.75
    ```
    """

    def __init__(
        self,
        margin: float = 1.0,
        mining: str = "semi_hard",
        distance: str = "euclidean",
        reduction: str | None = "sum_over_batch_size",
        name: str = "triplet_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_non_negative(_NAME, "margin", margin)
        validation.check_choice(_NAME, "mining", mining, MINING)
        validation.check_choice(_NAME, "distance", distance, _pairwise.DISTANCES)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = float(margin)
        self.mining = mining
        self.distance = distance

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        distances, positive, negative = _pairwise.mine(
            _NAME, y_true, y_pred, sample_weight, self.distance
        )
        if self.mining == "batch_all":
            return _batch_all(distances, positive, negative, self.margin)
        if self.mining == "batch_hard":
            return _batch_hard(distances, positive, negative, self.margin)
        return _semi_hard(distances, positive, negative, self.margin)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "margin": self.margin,
            "mining": self.mining,
            "distance": self.distance,
        }


def _count(mask: Any, like: Any) -> Any:
    return keras.ops.sum(keras.ops.cast(mask, like.dtype))


def _masked_extreme(values: Any, mask: Any, fill: Any, reduce: Any, axis: int) -> Any:
    return reduce(keras.ops.where(mask, values, fill), axis=axis)


def _batch_all(distances, positive, negative, margin):
    anchor_positive = keras.ops.expand_dims(distances, 2)
    anchor_negative = keras.ops.expand_dims(distances, 1)
    valid = keras.ops.expand_dims(keras.ops.cast(positive, distances.dtype), 2) * (
        keras.ops.expand_dims(keras.ops.cast(negative, distances.dtype), 1)
    )
    # relu is >= 0, so masking by a product keeps the positive triplets only.
    losses = keras.ops.relu(anchor_positive - anchor_negative + margin) * valid
    # Without a positive triplet every term is 0 (or NaN, which stays NaN), so
    # the sum over max(count, 1) is the empty mean 0. XLA fuses this quotient
    # with the (B, B, B) terms; safe_divide's NaN tests made its CPU step 1.7x slower.
    return keras.ops.sum(losses) / keras.ops.maximum(_count(losses > 0.0, losses), 1.0)


def _batch_hard(distances, positive, negative, margin):
    # Distances are >= 0, so 0 never wins the maximum over a non-empty set,
    # and one more than the largest distance never wins the minimum.
    beyond = 1.0 + keras.ops.max(keras.ops.stop_gradient(distances))
    hardest_positive = _masked_extreme(distances, positive, 0.0, keras.ops.max, 1)
    hardest_negative = _masked_extreme(distances, negative, beyond, keras.ops.min, 1)
    valid = keras.ops.logical_and(keras.ops.any(positive, axis=1), keras.ops.any(negative, axis=1))
    losses = keras.ops.relu(hardest_positive - hardest_negative + margin)
    total = keras.ops.sum(keras.ops.where(valid, losses, 0.0))
    return numerics.safe_divide(total, _count(valid, losses))


def _semi_hard(distances, positive, negative, margin):
    # [i, j, k]: anchor i, positive j, negative k.
    anchor_positive = keras.ops.expand_dims(distances, 2)
    anchor_negative = keras.ops.expand_dims(distances, 1)
    is_negative = keras.ops.expand_dims(negative, 1)
    farther = keras.ops.logical_and(is_negative, anchor_negative > anchor_positive)
    ceiling = 1.0 + keras.ops.max(keras.ops.stop_gradient(distances))
    beyond = keras.ops.full_like(anchor_negative, 1.0) * ceiling
    below = keras.ops.full_like(anchor_negative, -1.0)
    nearest_farther = keras.ops.min(keras.ops.where(farther, anchor_negative, beyond), axis=2)
    farthest = keras.ops.max(keras.ops.where(is_negative, anchor_negative, below), axis=2)
    chosen = keras.ops.where(keras.ops.any(farther, axis=2), nearest_farther, farthest)
    valid = keras.ops.logical_and(positive, keras.ops.any(is_negative, axis=2))
    losses = keras.ops.relu(distances - chosen + margin)
    total = keras.ops.sum(keras.ops.where(valid, losses, keras.ops.zeros_like(losses)))
    return numerics.safe_divide(total, _count(valid, losses))
