"""ArcFace: additive angular margin logits (Deng et al. 2019)."""

from typing import Any

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.metric_learning._margin_head import MarginHead, additive_angular_margin


@register_serializable
class ArcFace(MarginHead):
    """ArcFace head: class weights and the additive angular margin logits.

    The layer holds the class weights ``W`` ``(D, num_classes)`` (trainable,
    saved with the model). For L2-normalised embeddings ``x`` and columns
    ``w_k``, ``cos_k = x . w_k``; the labelled class ``y`` gets the margin
    ``m`` added to its angle, as in insightface:

    ```
    phi    = cos(theta_y + m) = cos_y cos(m) - sin_y sin(m)
    target = phi                    where cos_y > cos(pi - m)
             cos_y - sin(pi - m) m  elsewhere
    (easy_margin: target = phi where cos_y > 0, else cos_y)
    logits = scale * cos, with column y replaced by scale * target
    ```

    ``layer(embeddings, labels)`` returns these logits ``(B, num_classes)``
    for a sparse softmax cross-entropy;
    ``layer(embeddings)`` (``labels=None``, inference) returns
    ``scale * cos``. Labels are class ids ``(B,)`` (or ``(B, 1)``), checked on
    eager calls. To train with stock ``fit``, make the labels a second model
    input so they reach the layer, and compile with
    ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``:

    ```python
    images = keras.Input((32,))
    labels = keras.Input((), dtype="int32")
    embeddings = keras.layers.Dense(16)(images)
    logits = ArcFace(num_classes=10)(embeddings, labels)
    model = keras.Model([images, labels], logits)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # model.fit([x, y], y); embed with keras.Model(images, embeddings).
    ```

    float16 and bfloat16 embeddings are computed in float32.

    Reference:
        Deng, J., Guo, J., Xue, N., & Zafeiriou, S. (2019). ArcFace: Additive
        Angular Margin Loss for Deep Face Recognition. CVPR.
        https://arxiv.org/abs/1801.07698

    Args:
        num_classes: Integer >= 1, the number of classes.
        scale: Positive float ``s``, the norm the logits are scaled to.
            Defaults to 64.0.
        margin: Non-negative float ``m``, the angular margin in radians.
            Defaults to 0.5.
        easy_margin: Bool; apply the margin only where ``cos_y > 0``.
            Defaults to False.
        kernel_initializer: Initializer of the class weights. Defaults to
            ``"glorot_uniform"``.
        **kwargs: Keras layer arguments (``name``, ``dtype``, ...).

    Example:

    ```python
    head = ArcFace(num_classes=3, scale=10.0, margin=0.5)
    logits = head(keras.ops.ones((2, 4)), keras.ops.convert_to_tensor([0, 2]))  # (2, 3)
    ```
    """

    owner = "ArcFace"

    def __init__(
        self,
        num_classes: int,
        scale: float = 64.0,
        margin: float = 0.5,
        easy_margin: bool = False,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        validation.check_non_negative(self.owner, "margin", margin)
        validation.check_bool(self.owner, "easy_margin", easy_margin)
        super().__init__(num_classes, scale, kernel_initializer=kernel_initializer, **kwargs)
        self.margin = float(margin)
        self.easy_margin = easy_margin

    def target_logit(self, target_cosine: Any) -> Any:
        return additive_angular_margin(target_cosine, self.margin, self.easy_margin)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "margin": self.margin, "easy_margin": self.easy_margin}
