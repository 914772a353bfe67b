"""A functional model that hands its whole output to the loss and logs the loss's terms."""

from typing import Any

import keras

from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class ComponentModel(keras.Model):
    """A functional ``keras.Model`` that logs the terms of its loss as metrics.

    ``compute_loss`` calls the compiled loss once on the whole ``y`` and
    ``y_pred`` (a dict of outputs reaches the loss as one dict, where Keras'
    ``compile`` would apply a loss to each output separately). When the loss
    has ``components(y_true, y_pred, sample_weight)`` and
    ``component_names()`` (a ``CompositeLoss`` built with the loss algebra,
    ``YOLOv12MultiTaskLoss``), every term is tracked as a ``Mean`` metric of
    its name and the loss is the ``"total"`` term, so ``fit`` logs each term
    next to ``loss``.

    Example:

    ```python
    model = ComponentModel(inputs, outputs)
    model.compile(optimizer="adam", loss=0.5 * DiceLoss() + 0.5 * FocalLoss())
    model.fit(x, y)  # logs loss, dice_loss, focal_loss, total
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
