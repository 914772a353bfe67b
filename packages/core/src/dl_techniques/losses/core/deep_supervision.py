"""Deep supervision: one full-resolution target for every scale of a multi-scale model."""

from typing import Any

import keras

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.serialization import loss_instance, register_serializable
from dl_techniques.losses.core.shapes import static_shape

INTERPOLATIONS = ("auto", "nearest", "area")


@register_serializable
class DeepSupervision(keras.losses.Loss):
    """Applies a loss to an output of lower resolution than the target, resizing the target.

    A decoder supervised at every scale outputs ``(B, H / f, W / f, C)`` for
    a few factors ``f``; Keras applies one loss per output (``loss_weights``
    weighs them), each against the target of that output. Wrapped in
    ``DeepSupervision``, a loss receives the full-resolution ``(B, H, W, ...)``
    target for every output and sees it resized to the output's spatial size:

    ```
    class ids   nearest: target[b, f i + f // 2, f j + f // 2]     (the centre of each f x f block)
    one-hot /   area:    mean over the f x f block of target[b, ., ., c]
    probability
    ```

    and a per-pixel ``sample_weight`` ``(B, H, W)`` is averaged over the
    same blocks (a ``(B,)`` weight is passed on as it is). Any number of
    spatial axes works (``(B, D, H, W, C)`` volumes too); every spatial size
    of the target must be an integer multiple of the output's, and an output
    of the target's size gets the target unchanged.

    Args:
        loss: The ``keras.losses.Loss`` to apply (a loss's Keras config dict
            is accepted too).
        interpolation: ``"nearest"`` (for class ids ``(B, H, W)`` or
            ``(B, H, W, 1)``), ``"area"`` (for one-hot or soft ``(B, H, W,
            C)`` targets), or ``"auto"``: area when the target has the
            prediction's rank and its ``C > 1`` channels, nearest otherwise.
            Defaults to ``"auto"``.
        name: Name of the loss. Defaults to ``"deep_supervision_" + loss.name``.

    Example:

    ```python
    supervised = DeepSupervision(keras.losses.CategoricalCrossentropy())
    model.compile(
        optimizer="adam",
        loss=[supervised, supervised, supervised],  # outputs at 1, 1/2 and 1/4 scale
        loss_weights=[1.0, 0.5, 0.25],
    )
    model.fit(images, [one_hot, one_hot, one_hot])  # the same full-resolution target
    ```
    """

    def __init__(self, loss: Any, interpolation: str = "auto", name: str | None = None) -> None:
        loss = loss_instance("DeepSupervision", "loss", loss)
        validation.check_choice("DeepSupervision", "interpolation", interpolation, INTERPOLATIONS)
        super().__init__(name=name or f"deep_supervision_{loss.name}", reduction=None)
        self.loss = loss
        self.interpolation = interpolation

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        y_true = keras.ops.convert_to_tensor(y_true)
        y_pred = keras.ops.convert_to_tensor(y_pred)
        factors = self._factors(y_true, y_pred)
        if any(factor > 1 for factor in factors):
            if self._interpolation(y_true, y_pred) == "area":
                y_true = _block_mean(y_true, factors)
            else:
                y_true = _block_centre(y_true, factors)
            if sample_weight is not None:
                sample_weight = self._resized_weights(sample_weight, factors)
        return self.loss(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self(y_true, y_pred)

    def _interpolation(self, y_true: Any, y_pred: Any) -> str:
        if self.interpolation != "auto":
            return self.interpolation
        true_shape, pred_shape = static_shape(y_true), static_shape(y_pred)
        channels = pred_shape[-1]
        if len(true_shape) == len(pred_shape) and true_shape[-1] == channels and channels != 1:
            return "area"
        return "nearest"

    def _factors(self, y_true: Any, y_pred: Any) -> list[int]:
        true_shape, pred_shape = static_shape(y_true), static_shape(y_pred)
        spatial = len(pred_shape) - 2
        shapes = f"got y_true shape {true_shape} and y_pred shape {pred_shape}"
        if spatial < 1 or len(true_shape) < spatial + 1:
            raise ValueError(
                "DeepSupervision: `y_pred` must be (batch, *spatial, channels) and `y_true` "
                f"(batch, *spatial[, channels]) at full resolution; {shapes}."
            )
        factors = []
        for axis in range(1, spatial + 1):
            full, reduced = true_shape[axis], pred_shape[axis]
            if full is None or reduced is None:
                raise ValueError(
                    "DeepSupervision: the spatial sizes of `y_true` and `y_pred` must be "
                    f"known when the loss is traced; {shapes}."
                )
            if reduced == 0 or full % reduced:
                raise ValueError(
                    "DeepSupervision: every spatial size of `y_true` must be an integer "
                    f"multiple of `y_pred`'s (axis {axis}: {full} vs {reduced}); {shapes}."
                )
            factors.append(full // reduced)
        return factors

    def _resized_weights(self, sample_weight: Any, factors: list[int]) -> Any:
        weights = keras.ops.convert_to_tensor(sample_weight)
        if len(weights.shape) < len(factors) + 1:
            return weights
        return _block_mean(weights, factors)

    def get_config(self) -> dict[str, Any]:
        return {
            "loss": keras.saving.serialize_keras_object(self.loss),
            "interpolation": self.interpolation,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "DeepSupervision":
        return cls(**config)


def _block_mean(tensor: Any, factors: list[int]) -> Any:
    """Means over ``f x f`` blocks of the spatial axes ``1 .. len(factors)``."""
    shape = static_shape(tensor)
    spatial = len(factors)
    split: list[Any] = [-1]
    for axis, factor in enumerate(factors, start=1):
        size = shape[axis]
        if size is None:
            raise ValueError(
                f"DeepSupervision: the spatial sizes must be known when the loss is traced; "
                f"got a tensor of shape {shape}."
            )
        split += [size // factor, factor]
    split += list(shape[spatial + 1 :])
    blocks = keras.ops.reshape(keras.ops.cast(tensor, _float_dtype(tensor)), split)
    return keras.ops.mean(blocks, axis=tuple(2 + 2 * index for index in range(spatial)))


def _block_centre(tensor: Any, factors: list[int]) -> Any:
    """The value at the centre ``f // 2`` of each block of the spatial axes."""
    index: list[Any] = [slice(None)]
    index += [slice(factor // 2, None, factor) for factor in factors]
    return tensor[tuple(index)]


def _float_dtype(tensor: Any) -> str:
    dtype = keras.backend.standardize_dtype(tensor.dtype)
    return dtype if keras.backend.is_float_dtype(dtype) else "float32"
