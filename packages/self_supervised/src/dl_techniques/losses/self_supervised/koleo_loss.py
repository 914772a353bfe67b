"""Kozachenko-Leonenko differential-entropy regulariser for embeddings."""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, validation
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.core.shapes import static_shape

_NAME = "KoLeoLoss"

# Cosine similarities lie in [-1, 1]; a sample's similarity to itself is
# replaced by a value below that range so it is never its own neighbour,
# even when every other embedding points the opposite way.
_EXCLUDED_SIMILARITY = -3.0


@register_serializable
class KoLeoLoss(keras.losses.Loss):
    """KoLeo regulariser: spreads embeddings out over the unit sphere.

    The Kozachenko-Leonenko estimator of differential entropy grows with the
    log distance of each point to its nearest neighbour; maximising it pushes
    the embeddings of a batch apart, which counters collapse. DINOv2 adds it
    to the DINO loss on the class tokens. For embeddings ``x_i`` of a batch
    of B >= 2 samples:

    ```
    u_i   = x_i / max(||x_i||, eps)                   (L2-normalised)
    nn(i) = argmax_{j != i} u_i . u_j                 (nearest by cosine, self excluded)
    d_i   = || u_i - u_nn(i) + eps ||                 (eps added to every component)
    loss_i = -log(d_i + eps)
    ```

    ``call`` returns ``loss_i`` per sample, shape ``(B,)``; the default
    reduction gives ``-mean_i log(d_i + eps)``. ``sample_weight`` weights each
    sample's term ``loss_i``; a sample's weight does not change whether it
    serves as the nearest neighbour of the others (a weight of 0 removes its
    own term, not its repulsion on the others). Neighbours are searched among
    the samples the loss sees: the replica's slice under ``tf.distribute`` or
    torch DDP, as DINOv2 does per GPU, and the global batch under
    ``keras.distribution`` on JAX.

    Two equal embeddings (after normalisation) give ``d_i = eps sqrt(D)``:
    each one's value ``-log(eps (sqrt(D) + 1))`` is large but finite, and so
    is its gradient. (When the two are each other's nearest neighbour their
    two terms push with equal and opposite force, so the summed gradient on
    an exactly coincident pair is 0, as in DINOv2.) Ties in the nearest-neighbour search
    pick one of the tied neighbours; they are at the same distance, so the
    value does not depend on which. The computation runs in float32 for
    float16 and bfloat16 inputs. ``y_true`` is ignored.

    Reference:
        Sablayrolles, A., Douze, M., Schmid, C., & Jegou, H. (2019).
        Spreading vectors for similarity search. ICLR.
        https://arxiv.org/abs/1806.03198

        Oquab, M., et al. (2023). DINOv2: Learning Robust Visual Features
        without Supervision. https://arxiv.org/abs/2304.07193

    Args:
        epsilon: Positive float, the ``eps`` of the normalisation, of the
            distance and of the log. Defaults to 1e-8.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"koleo_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = KoLeoLoss(reduction=None)
    # Directions at 0, 90 and 180 degrees: every nearest neighbour is at 90
    # degrees, distance sqrt(2), so each value is -log(sqrt(2)) = -0.3466.
    # y_true is ignored; any tensor with the batch axis will do.
    loss(keras.ops.zeros((3,)), [[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    ```
    """

    def __init__(
        self,
        epsilon: float = 1e-8,
        reduction: str | None = "sum_over_batch_size",
        name: str = "koleo_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_positive(_NAME, "epsilon", epsilon)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.epsilon = float(epsilon)

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        embeddings = numerics.upcast_half(y_pred)
        shape = static_shape(embeddings)
        if len(shape) != 2 or (shape[0] is not None and shape[0] < 2):
            raise ValueError(
                f"{_NAME}: `y_pred` must be embeddings of shape (batch, dim) with batch >= 2, "
                f"so that every sample has a neighbour; got y_pred shape {shape}."
            )

        unit = _l2_normalize(embeddings, self.epsilon)
        similarity = keras.ops.matmul(unit, keras.ops.transpose(unit))
        batch = keras.ops.shape(unit)[0]
        is_self = keras.ops.eye(batch, dtype="bool")
        similarity = keras.ops.where(
            is_self, keras.ops.full_like(similarity, _EXCLUDED_SIMILARITY), similarity
        )
        # The neighbour is chosen without gradient; the gradient then flows
        # into both ends of each nearest-neighbour pair, as in DINOv2.
        neighbour_index = keras.ops.argmax(keras.ops.stop_gradient(similarity), axis=-1)
        neighbours = keras.ops.take(unit, neighbour_index, axis=0)
        offset = unit - neighbours + self.epsilon
        # Every component of the offset carries eps, so the squared norm is at
        # least D eps^2 > 0 and the square root has a finite gradient even for
        # coincident embeddings.
        distance = keras.ops.sqrt(keras.ops.sum(keras.ops.square(offset), axis=-1))
        return -keras.ops.log(distance + self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "epsilon": self.epsilon,
        }


def _l2_normalize(embeddings, epsilon):
    squared_norm = keras.ops.sum(keras.ops.square(embeddings), axis=-1, keepdims=True)
    # Flooring the squared norm (not the norm) keeps the square root away from
    # 0, where its gradient is infinite, for an all-zero embedding.
    norm = keras.ops.sqrt(keras.ops.maximum(squared_norm, epsilon * epsilon))
    return embeddings / norm
