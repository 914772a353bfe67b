"""Scale-and-shift-invariant depth loss of MiDaS, with a validity mask and trimming."""

import math
from typing import Any

import keras

from dl_techniques.losses.core import numerics, shapes, validation
from dl_techniques.losses.core.serialization import register_serializable

_OWNER = "AffineInvariantLoss"
_DICT_KEYS = ("depth", "mask")
# Slack on ``trim * n`` so that a product that is an integer in exact
# arithmetic (0.2 * 5) is not floored one short after float32 round-off.
_TRIM_ROUND_OFF = 1e-6


@register_serializable
class AffineInvariantLoss(keras.losses.Loss):
    """Mean absolute error between median/MAD-normalised depth maps.

    Monocular depth (or disparity) is only known up to an unknown scale and
    shift per image, so both the prediction and the target are first
    normalised per image over its valid pixels ``d_1 .. d_n``:

    ```
    t(d)   = median(d)                       mean of the two middle values if n is even
    s(d)   = max(mean_i |d_i - t(d)|, epsilon)
    d_hat  = (d - t(d)) / s(d)
    r_i    = |d_hat_pred_i - d_hat_true_i|
    loss   = mean of the r_i kept            all n, or with trim > 0 the
                                             n - floor(trim * n) smallest
    ```

    The value is invariant to a positive scale and any shift of the
    prediction (as long as its spread stays above ``epsilon``). A pixel is
    invalid where the target is not finite (NaN or inf), or where a mask
    says so: `y_true` may be a dict ``{"depth": d, "mask": m}`` whose mask
    has the depth's shape and holds 1 (True) on valid pixels and 0 (False)
    elsewhere; other mask values raise ``ValueError`` on the first eager
    call of an instance (every eager call with ``DL_LOSSES_VALIDATE=always``).
    Invalid pixels take no part in the median, the scale or the mean. An
    image with no valid pixel contributes 0, with a zero gradient. A NaN
    prediction on a valid pixel makes its image's loss NaN.

    Inputs are ``(B, H, W)`` or ``(B, H, W, 1)``; `y_true` and `y_pred`
    share the spatial shape. The loss is per image, so ``call`` returns one
    value per sample and ``sample_weight`` weighs images.

    Reference:
        Ranftl, R., Lasinger, K., Hafner, D., Schindler, K., & Koltun, V.
        (2020). Towards Robust Monocular Depth Estimation: Mixing Datasets for
        Zero-shot Cross-dataset Transfer. IEEE TPAMI 44(3). (MiDaS; the
        scale-and-shift-invariant loss, eq. 5-7, with trimming, eq. 8.)
        Yang, L. et al. (2024). Depth Anything: Unleashing the Power of
        Large-Scale Unlabeled Data. CVPR.

    Args:
        epsilon: Positive float, the floor of the per-image scale ``s``, so a
            constant image normalises to zeros instead of dividing by 0.
            Defaults to 1e-6.
        trim: Float in [0, 1), the fraction of each image's largest residuals
            left out of its mean (MiDaS uses 0.2). Defaults to 0.0.
        reduction: Keras reduction of the per-image values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to
            ``"affine_invariant_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = AffineInvariantLoss()
    depth = [[[1.0, 2.0], [3.0, 4.0]]]
    loss(depth, [[[12.0, 14.0], [16.0, 18.0]]])  # 0.0: 2 * depth + 10
    masked = {"depth": depth, "mask": [[[1.0, 1.0], [1.0, 0.0]]]}
    loss(masked, [[[1.0, 2.0], [3.0, 99.0]]])    # 0.0: the outlier is masked
    ```
    """

    def __init__(
        self,
        epsilon: float = 1e-6,
        trim: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "affine_invariant_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_positive(_OWNER, "epsilon", epsilon)
        # [0, 1) is half-open: core's check_interval is closed.
        if not validation.is_real_number(trim) or not 0.0 <= trim < 1.0:
            raise ValueError(
                f"AffineInvariantLoss: `trim` must be a number in [0, 1); got trim={trim!r}."
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.epsilon = float(epsilon)
        self.trim = float(trim)

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        depth, mask = self._split_target(y_true)
        y_pred = numerics.upcast_half(y_pred)
        depth = numerics.as_float(depth, y_pred)
        y_pred = _drop_channel_axis(y_pred)
        depth = _drop_channel_axis(depth)
        layout = "(batch, height, width) or (batch, height, width, 1)"
        if len(y_pred.shape) != 3:
            raise ValueError(
                f"AffineInvariantLoss: `y_pred` must have shape {layout}; "
                f"got shape {shapes.static_shape(y_pred)}."
            )
        depth_argument = 'y_true["depth"]' if mask is not None else "y_true"
        shapes.check_same_shape(_OWNER, depth, y_pred, true_argument=depth_argument)
        if mask is not None:
            mask = _drop_channel_axis(keras.ops.cast(mask, y_pred.dtype))
            shapes.check_same_shape(_OWNER, mask, y_pred, true_argument='y_true["mask"]')
            validation.check_binary(_OWNER, 'y_true["mask"]', mask, what="flags")

        pixels = _flatten_pixels(y_pred)
        depth = _flatten_pixels(depth)
        valid = keras.ops.isfinite(depth)
        if mask is not None:
            valid = keras.ops.logical_and(valid, _flatten_pixels(mask) > 0.5)
        # Invalid targets are replaced before any arithmetic, so a NaN there
        # cannot reach the value or the gradient through a masked branch.
        depth = keras.ops.where(valid, depth, keras.ops.zeros_like(depth))
        valid_count = keras.ops.sum(keras.ops.cast(valid, pixels.dtype), axis=1)

        residual = keras.ops.abs(
            self._normalise(pixels, valid, valid_count) - self._normalise(depth, valid, valid_count)
        )
        residual = keras.ops.where(valid, residual, keras.ops.zeros_like(residual))
        if self.trim == 0.0:
            return numerics.safe_divide(keras.ops.sum(residual, axis=1), valid_count)
        return self._trimmed_mean(residual, valid, valid_count)

    def _normalise(self, values, valid, valid_count):
        """Returns ``(values - median) / scale`` per row, over the valid entries."""
        order = _valid_first_order(values, valid)
        ascending = keras.ops.take_along_axis(values, order, axis=1)
        count = keras.ops.cast(valid_count, "int32")
        # Middle positions of the valid prefix; for an odd count they coincide.
        # A row without valid entries reads position 0 and is zeroed later.
        lower = keras.ops.maximum(keras.ops.floor_divide(count - 1, 2), 0)
        upper = keras.ops.floor_divide(count, 2)
        middle = keras.ops.stack([lower, upper], axis=1)
        median = keras.ops.mean(keras.ops.take_along_axis(ascending, middle, axis=1), axis=1)
        centred = values - median[:, None]
        deviation = keras.ops.where(valid, keras.ops.abs(centred), keras.ops.zeros_like(centred))
        scale = numerics.safe_divide(keras.ops.sum(deviation, axis=1), valid_count)
        scale = keras.ops.maximum(scale, self.epsilon)
        return centred / scale[:, None]

    def _trimmed_mean(self, residual, valid, valid_count):
        """Mean of each row's ``n - floor(trim * n)`` smallest valid residuals."""
        order = _valid_first_order(residual, valid)
        ascending = keras.ops.take_along_axis(residual, order, axis=1)
        dropped = keras.ops.floor(self.trim * valid_count * (1.0 + _TRIM_ROUND_OFF))
        kept_count = valid_count - dropped
        position = keras.ops.cast(keras.ops.arange(keras.ops.shape(residual)[1]), residual.dtype)
        kept = position[None, :] < kept_count[:, None]
        kept_residual = keras.ops.where(kept, ascending, keras.ops.zeros_like(ascending))
        return numerics.safe_divide(keras.ops.sum(kept_residual, axis=1), kept_count)

    def _split_target(self, y_true):
        if not isinstance(y_true, dict):
            return keras.ops.convert_to_tensor(y_true), None
        if set(y_true) != set(_DICT_KEYS):
            raise ValueError(
                "AffineInvariantLoss: a dict `y_true` must have exactly the keys "
                f"{list(_DICT_KEYS)}; got keys {sorted(y_true)}."
            )
        return (
            keras.ops.convert_to_tensor(y_true["depth"]),
            keras.ops.convert_to_tensor(y_true["mask"]),
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "epsilon": self.epsilon,
            "trim": self.trim,
        }


def _valid_first_order(values, valid):
    """Per-row indices sorting the valid entries ascending, invalid ones last."""
    keys = keras.ops.where(valid, values, keras.ops.full_like(values, math.inf))
    return keras.ops.argsort(keras.ops.stop_gradient(keys), axis=1)


def _drop_channel_axis(tensor):
    if len(tensor.shape) == 4 and tensor.shape[-1] == 1:
        return keras.ops.squeeze(tensor, axis=-1)
    return tensor


def _flatten_pixels(tensor):
    """Reshapes ``(B, H, W)`` to ``(B, H * W)``."""
    height, width = tensor.shape[1], tensor.shape[2]
    if height is not None and width is not None:
        return keras.ops.reshape(tensor, (-1, int(height) * int(width)))
    return keras.ops.reshape(tensor, (keras.ops.shape(tensor)[0], -1))
