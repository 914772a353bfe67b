"""Sub-center ArcFace: several class centres, the nearest one scored (Deng et al. 2020)."""

from typing import Any

from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.metric_learning.arcface import ArcFace


@register_serializable
class SubCenterArcFace(ArcFace):
    """Sub-center ArcFace head: ``sub_centers`` weight columns per class.

    The layer holds the class weights ``(D, num_classes * sub_centers)``
    (trainable, saved with the model); class ``k``'s sub-centres are the
    adjacent columns ``k * sub_centers ... (k + 1) * sub_centers - 1``. A
    class's cosine is the largest over its sub-centres, and the rest is
    ``ArcFace``:

    ```
    cos_k  = max_c x . w_{k, c}                   (L2-normalised x and w)
    target = ArcFace's margin rule on cos_y       (cos(theta_y + m), easy_margin, threshold)
    logits = scale * cos, with column y replaced by scale * target
    ```

    ``layer(embeddings, labels)`` returns the logits ``(B, num_classes)``,
    ``layer(embeddings)`` (inference) ``scale * cos``. Train with stock
    ``fit`` as ``ArcFace`` documents (labels as a second model input, sparse
    softmax cross-entropy from logits).

    Reference:
        Deng, J., Guo, J., Liu, T., Gong, M., & Zafeiriou, S. (2020).
        Sub-center ArcFace: Boosting Face Recognition by Large-Scale Noisy
        Web Faces. ECCV.

    Args:
        num_classes: Integer >= 1, the number of classes.
        sub_centers: Integer >= 1, the centres per class. Defaults to 3.
        scale: As ``ArcFace``. Defaults to 64.0.
        margin: As ``ArcFace``. Defaults to 0.5.
        easy_margin: As ``ArcFace``. Defaults to False.
        kernel_initializer: As ``ArcFace``. Defaults to ``"glorot_uniform"``.
        **kwargs: Keras layer arguments (``name``, ``dtype``, ...).

    Example:

    ```python
    head = SubCenterArcFace(num_classes=3, sub_centers=2, scale=10.0)
    logits = head(keras.ops.ones((2, 4)), keras.ops.convert_to_tensor([0, 2]))  # (2, 3)
    ```
    """

    owner = "SubCenterArcFace"

    def __init__(
        self,
        num_classes: int,
        sub_centers: int = 3,
        scale: float = 64.0,
        margin: float = 0.5,
        easy_margin: bool = False,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            num_classes,
            scale,
            margin,
            easy_margin,
            kernel_initializer,
            sub_centers=sub_centers,
            **kwargs,
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "sub_centers": self.sub_centers}
