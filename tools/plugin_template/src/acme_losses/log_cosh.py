"""A scaled log-cosh regression loss."""

import math
import numbers

import keras
from dl_techniques.losses.core.numerics import as_float, upcast_half
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class AcmeLogCoshLoss(keras.losses.Loss):
    """Scaled log-cosh loss: quadratic for small errors, linear for large ones.

    With ``e = y_pred - y_true`` and a scale ``s > 0``, each element contributes

    ```
    l(e) = s**2 * log(cosh(e / s))
    ```

    which behaves like ``e**2 / 2`` for ``|e| << s`` and like
    ``s * |e| - s**2 * log(2)`` for ``|e| >> s``: a smooth Huber loss with
    threshold ``s``, smooth everywhere. The loss of a sample is
    the mean of ``l`` over its non-batch axes, so ``call`` returns one value
    per sample and Keras' ``sample_weight`` and reductions apply per sample.
    ``log(cosh(x))`` is computed as ``log1p(2 * sinh(x / 2)**2)`` for
    ``|x| < 1``, which keeps full precision for tiny errors, and as
    ``|x| + softplus(-2|x|) - log(2)`` above, which cannot overflow.

    Reference:
        Chen, P., Chen, G., & Zhang, S. (2019). Log Hyperbolic Cosine Loss
        Improves Variational Auto-Encoder. OpenReview (ICLR 2019 submission).

    Args:
        scale: Positive float ``s``, the error size where the loss turns from
            quadratic to linear. Defaults to 1.0.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"acme_log_cosh_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs are
            computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = AcmeLogCoshLoss(scale=1.0)
    loss([[0.0, 0.0]], [[0.0, 1.0]])  # (0 + log(cosh(1))) / 2 = 0.2169
    ```
    """

    def __init__(
        self,
        scale=1.0,
        reduction="sum_over_batch_size",
        name="acme_log_cosh_loss",
        dtype=None,
    ):
        if (
            not isinstance(scale, numbers.Real)
            or isinstance(scale, bool)
            or not math.isfinite(scale)
            or scale <= 0
        ):
            raise ValueError(
                f"AcmeLogCoshLoss: `scale` must be a finite number > 0; got scale={scale!r}."
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.scale = float(scale)

    def call(self, y_true, y_pred):
        y_pred = upcast_half(y_pred)
        y_true = as_float(keras.ops.convert_to_tensor(y_true), y_pred)
        _check_shapes(y_true, y_pred)

        scale = keras.ops.cast(self.scale, y_pred.dtype)
        scaled_error = keras.ops.abs(y_pred - y_true) / scale
        per_element = keras.ops.square(scale) * _log_cosh(scaled_error)
        rank = len(per_element.shape)
        if rank == 1:
            return per_element
        return keras.ops.mean(per_element, axis=tuple(range(1, rank)))

    def get_config(self):
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "scale": self.scale,
        }


def _check_shapes(y_true, y_pred):
    true_shape, pred_shape = tuple(y_true.shape), tuple(y_pred.shape)
    compatible = len(true_shape) == len(pred_shape) and all(
        a is None or b is None or a == b for a, b in zip(true_shape, pred_shape, strict=True)
    )
    if len(pred_shape) < 1 or not compatible:
        raise ValueError(
            "AcmeLogCoshLoss: `y_true` and `y_pred` must have the same shape "
            f"(batch, ...); got y_true shape {true_shape} and y_pred shape {pred_shape}."
        )


def _log_cosh(abs_x):
    # Each branch is evaluated on inputs where it is finite, so the branch
    # that `where` discards contributes a zero gradient rather than NaN.
    small_x = keras.ops.minimum(abs_x, 1.0)
    near_zero = keras.ops.log1p(2.0 * keras.ops.square(keras.ops.sinh(0.5 * small_x)))
    large_x = keras.ops.maximum(abs_x, 1.0)
    far_from_zero = large_x + keras.ops.softplus(-2.0 * large_x) - math.log(2.0)
    return keras.ops.where(abs_x < 1.0, near_zero, far_from_zero)
