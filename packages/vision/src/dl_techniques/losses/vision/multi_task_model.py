"""A functional model that hands its whole output dict to the loss and logs the loss's terms."""

from typing import Any

import keras

from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class MultiTaskModel(keras.Model):
    """A functional ``keras.Model`` for losses that take every output at once.

    Keras' ``compile`` applies a single loss to each output separately;
    this model calls the compiled loss once on the whole ``y`` and ``y_pred``
    structures. When the loss has ``components()`` and ``component_names()``
    (``YOLOv12MultiTaskLoss``), every term is tracked as a metric of that
    name, so ``fit`` logs ``box``, ``cls``, ``dfl``, the task losses and the
    task weights next to ``loss``.

    Example:

    ```python
    model = MultiTaskModel(image, {"detection": head, "log_variances": log_variances})
    model.compile(optimizer="adam", loss=create_yolov12_multitask_loss(...))
    ```
    """

    def compile(self, *args: Any, **kwargs: Any) -> None:
        super().compile(*args, **kwargs)
        names: list[str] = getattr(self.loss, "component_names", lambda: [])()
        self._component_trackers = [keras.metrics.Mean(name=name) for name in names]

    def compile_from_config(self, config: dict[str, Any]) -> None:
        # Keras skips a custom compile() when loading; this one only adds trackers.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self) -> list[Any]:
        return super().metrics + list(getattr(self, "_component_trackers", []))

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        trackers = getattr(self, "_component_trackers", [])
        if not trackers:
            total = self.loss(y, y_pred, sample_weight)
        else:
            parts = self.loss.components(y, y_pred, sample_weight)
            for tracker in trackers:
                tracker.update_state(parts[tracker.name])
            total = parts["total"]
        if self.losses:
            total = total + keras.ops.sum(keras.ops.stack(self.losses))
        return total
