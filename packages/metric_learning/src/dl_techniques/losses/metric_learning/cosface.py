"""CosFace: large margin cosine logits (Wang et al. 2018)."""

from typing import Any

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.metric_learning._margin_head import MarginHead


@register_serializable
class CosFace(MarginHead):
    """CosFace head: class weights and the additive cosine margin logits.

    The layer holds the class weights ``W`` ``(D, num_classes)`` (trainable,
    saved with the model). For L2-normalised embeddings ``x`` and columns
    ``w_k``, ``cos_k = x . w_k``, and the labelled class ``y`` loses ``m``:

    ```
    logits = scale * (cos - m * onehot(y))
    ```

    ``layer(embeddings, labels)`` returns the logits ``(B, num_classes)`` for
    a sparse softmax cross-entropy; ``layer(embeddings)`` (inference) returns
    ``scale * cos``. The model pattern for stock ``fit`` is ``ArcFace``'s:
    labels as a second model input, compiled with
    ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``.

    Reference:
        Wang, H., Wang, Y., Zhou, Z., Ji, X., Gong, D., Zhou, J., Li, Z., &
        Liu, W. (2018). CosFace: Large Margin Cosine Loss for Deep Face
        Recognition. CVPR. https://arxiv.org/abs/1801.09414

    Args:
        num_classes: Integer >= 1, the number of classes.
        scale: Positive float ``s``. Defaults to 64.0.
        margin: Non-negative float ``m``, subtracted from the target cosine.
            Defaults to 0.35.
        kernel_initializer: Initializer of the class weights. Defaults to
            ``"glorot_uniform"``.
        **kwargs: Keras layer arguments (``name``, ``dtype``, ...).

    Example:

    ```python
    head = CosFace(num_classes=3, scale=10.0, margin=0.35)
    logits = head(keras.ops.ones((2, 4)), keras.ops.convert_to_tensor([0, 2]))  # (2, 3)
    ```
    """

    owner = "CosFace"

    def __init__(
        self,
        num_classes: int,
        scale: float = 64.0,
        margin: float = 0.35,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        validation.check_non_negative(self.owner, "margin", margin)
        super().__init__(num_classes, scale, kernel_initializer=kernel_initializer, **kwargs)
        self.margin = float(margin)

    def target_logit(self, target_cosine: Any) -> Any:
        return target_cosine - self.margin

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "margin": self.margin}
