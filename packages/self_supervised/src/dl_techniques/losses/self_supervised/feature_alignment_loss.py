"""Feature alignment with a tolerance margin, as in Depth Anything."""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops, shapes, validation
from dl_techniques.losses.core.serialization import register_serializable

_NAME = "FeatureAlignmentLoss"

# Floor of the squared feature norm: an all-zero feature vector gets cosine
# similarity 0 with anything instead of 0/0, and the square root keeps a
# finite gradient.


@register_serializable
class FeatureAlignmentLoss(keras.losses.Loss):
    """Cosine feature alignment that ignores positions already aligned.

    Depth Anything aligns the features of the model being trained with those
    of a frozen encoder (DINOv2), but stops pulling at positions whose cosine
    similarity already exceeds a margin, so the student keeps some freedom
    to encode what the frozen encoder misses. For target features ``t``
    (``y_true``) and predicted features ``f`` (``y_pred``), at each position
    p, with the features on the last axis:

    ```
    s_p    = <f_p, t_p> / (||f_p|| ||t_p||)
    term_p = 1 - s_p   if s_p < margin
             0         otherwise
    loss   = mean_p term_p                   (over the positions of a sample)
    ```

    Inputs are ``(B, D)`` (one position per sample) or dense maps
    ``(B, H, W, C)`` (any rank >= 2, features last); ``call`` returns one
    value per sample, shape ``(B,)``, averaged over all of the sample's
    positions, those above the margin counting as 0. ``sample_weight``
    weights each sample as in any Keras loss. Each term lies in
    ``(1 - margin, 2]`` or is 0, so the loss lies in ``[0, 2]``. A feature
    vector of zeros has similarity 0 with anything (term 1) and a finite
    gradient. A NaN in either input gives a NaN value for its sample, never
    a 0. The computation runs in float32 for float16 and bfloat16 inputs.

    Reference:
        Yang, L., Kang, B., Huang, Z., Xu, X., Feng, J., & Zhao, H. (2024).
        Depth Anything: Unleashing the Power of Large-Scale Unlabeled Data.
        CVPR. https://arxiv.org/abs/2401.10891

    Args:
        margin: Cosine similarity in (-1, 1] above which a position stops
            contributing. ``margin=1`` counts every position. Defaults to 0.85.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to
            ``"feature_alignment_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = FeatureAlignmentLoss(margin=0.85, reduction=None)
    target = [[1.0, 0.0], [1.0, 0.0]]
    # Row 1: at 90 degrees, s = 0, term 1. Row 2: s = 0.9 > 0.85, term 0.
    loss(target, [[0.0, 2.0], [0.9, 0.43589]])  # [1.0, 0.0]
    ```
    """

    def __init__(
        self,
        margin: float = 0.85,
        reduction: str | None = "sum_over_batch_size",
        name: str = "feature_alignment_loss",
        dtype: Any = None,
    ) -> None:
        # The interval is open at -1, which core's closed check_interval cannot say.
        if not (validation.is_real_number(margin) and -1.0 < margin <= 1.0):
            raise ValueError(
                f"{_NAME}: `margin` must be a cosine similarity in (-1, 1]; got margin={margin!r}."
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = float(margin)

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = numerics.upcast_half(y_pred)
        y_true = numerics.as_float(keras.ops.convert_to_tensor(y_true), y_pred)
        shapes.check_min_rank(_NAME, "y_pred", y_pred, 2, "(batch, dim) or (batch, ..., channels)")
        shapes.check_same_shape(_NAME, y_true, y_pred)

        similarity = keras.ops.sum(ops.l2_normalize(y_true) * ops.l2_normalize(y_pred), axis=-1)
        # Tested as "at or above the margin" so that a NaN similarity, which
        # fails every comparison, keeps its NaN term instead of becoming 0.
        term = keras.ops.where(
            similarity >= self.margin, keras.ops.zeros_like(similarity), 1.0 - similarity
        )
        if len(term.shape) == 1:
            return term
        return ops.mean(term, axis=tuple(range(1, len(term.shape))))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "margin": self.margin,
        }
