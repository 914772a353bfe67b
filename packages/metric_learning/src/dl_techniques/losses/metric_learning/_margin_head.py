"""The class-weight layer that ArcFace, CosFace and sub-center ArcFace share."""

import math
from typing import Any

import keras

from dl_techniques.losses.core import numerics, shapes, validation

# Squared norms are floored at this value before the square root of the L2
# normalisation, so an all-zero embedding or class column stays finite.
_NORM_FLOOR = 1e-24


class MarginHead(keras.layers.Layer):
    """Cosine logits against L2-normalised class weights, with a margin on the target.

    Subclasses define :meth:`target_logit`, the unscaled logit that replaces
    the cosine of the labelled class. ``sub_centers`` columns per class are
    adjacent in the kernel ``(D, num_classes * sub_centers)``; a class's
    cosine is the largest of its sub-centres' cosines.
    """

    owner = "MarginHead"

    def __init__(
        self,
        num_classes: int,
        scale: float,
        sub_centers: int = 1,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        validation.check_positive_int(self.owner, "num_classes", num_classes)
        validation.check_positive(self.owner, "scale", scale)
        validation.check_positive_int(self.owner, "sub_centers", sub_centers)
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.scale = float(scale)
        self.sub_centers = int(sub_centers)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, embeddings_shape: Any, labels_shape: Any = None) -> None:
        dim = embeddings_shape[-1]
        if len(embeddings_shape) != 2 or dim is None:
            raise ValueError(
                f"{self.owner}: `embeddings` must have shape (batch, dim) with a known dim; "
                f"got shape {tuple(embeddings_shape)}."
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(int(dim), self.num_classes * self.sub_centers),
            initializer=self.kernel_initializer,
            trainable=True,
        )

    def call(self, embeddings: Any, labels: Any = None) -> Any:
        embeddings = numerics.upcast_half(embeddings)
        kernel = keras.ops.cast(self.kernel, embeddings.dtype)
        cosine = keras.ops.matmul(_unit(embeddings, axis=-1), _unit(kernel, axis=0))
        if self.sub_centers > 1:
            cosine = keras.ops.reshape(cosine, (-1, self.num_classes, self.sub_centers))
            cosine = keras.ops.max(cosine, axis=-1)
        cosine = keras.ops.clip(cosine, -1.0, 1.0)
        if labels is None:
            return self.scale * cosine
        labels = self._labels(labels, embeddings)
        is_target = keras.ops.equal(
            keras.ops.expand_dims(labels, 1),
            keras.ops.expand_dims(keras.ops.arange(self.num_classes, dtype=labels.dtype), 0),
        )
        target_cosine = keras.ops.sum(
            keras.ops.where(is_target, cosine, keras.ops.zeros_like(cosine)), axis=1
        )
        target = keras.ops.expand_dims(self.target_logit(target_cosine), 1)
        return self.scale * keras.ops.where(is_target, target, cosine)

    def target_logit(self, target_cosine: Any) -> Any:
        """Returns the unscaled logit of the labelled class from its cosine ``(B,)``."""
        raise NotImplementedError

    def _labels(self, labels: Any, embeddings: Any) -> Any:
        labels = keras.ops.convert_to_tensor(labels)
        if len(labels.shape) == 2 and labels.shape[-1] == 1:
            labels = keras.ops.squeeze(labels, axis=-1)
        if len(labels.shape) != 1:
            raise ValueError(
                f"{self.owner}: `labels` must be class ids of shape (batch,); got shape "
                f"{shapes.static_shape(labels)}."
            )
        shapes.check_same_batch(self.owner, {"embeddings": embeddings, "labels": labels})
        validation.check_integers(self.owner, "labels", labels, 0, self.num_classes)
        return keras.ops.cast(labels, "int32")

    def compute_output_shape(self, embeddings_shape: Any, labels_shape: Any = None) -> Any:
        return (embeddings_shape[0], self.num_classes)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "scale": self.scale,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


def additive_angular_margin(cosine: Any, margin: float, easy_margin: bool) -> Any:
    """insightface's ``cos(theta + m)`` with its fallback where ``theta + m`` passes pi.

    ``phi = cos(theta) cos(m) - sin(theta) sin(m)``; with ``easy_margin``,
    ``phi`` where ``cos(theta) > 0`` and ``cos(theta)`` elsewhere; otherwise
    ``phi`` where ``cos(theta) > cos(pi - m)`` and
    ``cos(theta) - sin(pi - m) m`` elsewhere, which keeps the target logit
    decreasing in ``theta``.
    """
    squared_sine = 1.0 - keras.ops.square(cosine)
    # sqrt only where positive: at |cos| = 1 the gradient is 0, not infinite.
    has_sine = squared_sine > 0.0
    sine = keras.ops.where(
        has_sine,
        keras.ops.sqrt(keras.ops.where(has_sine, squared_sine, keras.ops.ones_like(cosine))),
        keras.ops.zeros_like(cosine),
    )
    phi = cosine * math.cos(margin) - sine * math.sin(margin)
    if easy_margin:
        return keras.ops.where(cosine > 0.0, phi, cosine)
    threshold = math.cos(math.pi - margin)
    return keras.ops.where(cosine > threshold, phi, cosine - math.sin(math.pi - margin) * margin)


def _unit(values: Any, axis: int) -> Any:
    squared_norm = keras.ops.sum(keras.ops.square(values), axis=axis, keepdims=True)
    return values / keras.ops.sqrt(keras.ops.maximum(squared_norm, _NORM_FLOOR))
