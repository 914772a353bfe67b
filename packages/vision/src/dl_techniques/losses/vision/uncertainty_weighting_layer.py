"""Kendall et al.'s uncertainty weighting: a layer holding the task log-variances."""

from collections.abc import Sequence
from typing import Any

import keras

from dl_techniques.losses.core import numerics
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class UncertaintyWeightingLayer(keras.layers.Layer):
    """Holds one trainable log-variance ``s_i`` per task and outputs them per sample.

    A multi-task loss combines the task losses ``L_i`` as

    ```
    total = sum_i exp(-s_i) L_i + s_i / 2
    ```

    so a task whose loss stays large is down-weighted and the ``s_i / 2``
    term keeps the weights from vanishing. The ``s_i`` are weights of this
    layer, so they belong to the model: the optimizer updates them during
    ``fit`` on every backend and ``.keras`` files save and restore them. The
    layer outputs them broadcast over the batch, ``(B, T)``; make that a
    model output (``"log_variances"`` for ``YOLOv12MultiTaskLoss``) and the
    loss reads them from ``y_pred``, where their gradient reaches the layer.

    Reference:
        Kendall, Gal & Cipolla (2018), Multi-Task Learning Using Uncertainty
        to Weigh Losses for Scene Geometry and Semantics, CVPR.
        https://arxiv.org/abs/1705.07115

    Args:
        task_names: Names of the tasks, in the order of the loss's tasks.
            Defaults to ``("detection", "segmentation", "classification")``.
        initial_log_variance: Starting value of every ``s_i``. Defaults to 0
            (every task weighs 1).
        **kwargs: Layer arguments (``name``, ``dtype``, ...).

    Call it on any tensor whose first axis is the batch (the model input).

    Example:

    ```python
    image = keras.Input((64, 64, 3))
    log_variances = UncertaintyWeightingLayer(["detection", "segmentation"])(image)
    log_variances.shape  # (None, 2)
    ```
    """

    def __init__(
        self,
        task_names: Sequence[str] = ("detection", "segmentation", "classification"),
        initial_log_variance: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        task_names = tuple(task_names)
        if not task_names or len(set(task_names)) != len(task_names):
            raise ValueError(
                "UncertaintyWeightingLayer: `task_names` must be distinct and non-empty; "
                f"got task_names={list(task_names)}."
            )
        self.task_names = task_names
        self.initial_log_variance = float(initial_log_variance)

    def build(self, input_shape: Any) -> None:
        self.log_variances = self.add_weight(
            shape=(len(self.task_names),),
            initializer=keras.initializers.Constant(self.initial_log_variance),
            name="log_variances",
        )

    def call(self, inputs: Any) -> Any:
        batch = keras.ops.shape(inputs)[0]
        return keras.ops.broadcast_to(self.log_variances[None, :], (batch, len(self.task_names)))

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return (input_shape[0], len(self.task_names))

    def weigh(self, task_losses: Sequence[Any]) -> Any:
        """Returns ``sum_i exp(-s_i) L_i + s_i / 2`` for task losses in ``task_names`` order.

        For a custom ``compute_loss``: it reads the layer's variable, so call
        it where the model's variables are traced with the step. On JAX a
        compiled step sees concrete values for a variable read outside the
        model state and would silently never train it; that raises instead.
        """
        stacked = keras.ops.stack([keras.ops.convert_to_tensor(loss) for loss in task_losses])
        if int(stacked.shape[0]) != len(self.task_names):
            raise ValueError(
                f"UncertaintyWeightingLayer: got {int(stacked.shape[0])} task losses for "
                f"task_names={list(self.task_names)}."
            )
        log_variances = keras.ops.convert_to_tensor(self.log_variances)
        if numerics.holds_values(log_variances) and not numerics.holds_values(stacked):
            raise ValueError(
                "UncertaintyWeightingLayer: the log-variances were read as constants inside a "
                "compiled step; they are not part of the traced model state, so the optimizer "
                "would never update them. Make the layer part of the model and read its output "
                "(or call weigh() inside the model's compute_loss)."
            )
        return combine(stacked, keras.ops.cast(log_variances, stacked.dtype))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "task_names": list(self.task_names),
            "initial_log_variance": self.initial_log_variance,
        }


def combine(task_losses: Any, log_variances: Any) -> Any:
    """``sum_i exp(-s_i) L_i + s_i / 2`` over the last axis."""
    return keras.ops.sum(keras.ops.exp(-log_variances) * task_losses + 0.5 * log_variances, axis=-1)
