"""The multi-task model of the YOLOv12 loss: core's ComponentModel under its vision name."""

from dl_techniques.losses.core.component_model import ComponentModel
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class MultiTaskModel(ComponentModel):
    """A functional ``keras.Model`` for losses that take every output at once.

    Keras' ``compile`` applies a single loss to each output separately;
    this model (core's ``ComponentModel``) calls the compiled loss once on the
    whole ``y`` and ``y_pred`` structures. When the loss has ``components()``
    and ``component_names()`` (``YOLOv12MultiTaskLoss``), every term is
    tracked as a metric of that name, so ``fit`` logs ``box``, ``cls``,
    ``dfl``, the task losses and the task weights next to ``loss``.

    Example:

    ```python
    model = MultiTaskModel(image, {"detection": head, "log_variances": log_variances})
    model.compile(optimizer="adam", loss=create_yolov12_multitask_loss(...))
    ```
    """
