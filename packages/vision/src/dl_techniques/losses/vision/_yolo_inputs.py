"""Argument validation, input checks and the classification term of ``YOLOv12MultiTaskLoss``."""

import numbers
from collections.abc import Sequence
from typing import Any

import keras

from dl_techniques.losses.core import numerics, shapes, validation
from dl_techniques.losses.vision import _segmentation_terms, _yolo_anchors

LOSS_LABEL = "YOLOv12MultiTaskLoss"
TASKS = ("detection", "segmentation", "classification")
LOG_VARIANCES_KEY = "log_variances"


def check_tasks(tasks: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(tasks, str):
        tasks = [tasks]
    tasks = tuple(tasks)
    unknown = [task for task in tasks if task not in TASKS]
    if unknown or not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(
            f"{LOSS_LABEL}: `tasks` must be distinct names from {TASKS}, at least one; got "
            f"tasks={list(tasks)} (unknown: {unknown})."
        )
    return tasks


def class_count(argument: str, value: Any, required: bool) -> int | None:
    """``value`` as an int >= 1, or None where the task is not requested and none is given."""
    if value is None and not required:
        return None
    validation.check_positive_int(LOSS_LABEL, argument, value)
    return int(value)


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int]:
    shape = tuple(input_shape)
    largest = _yolo_anchors.STRIDES[-1]

    def acceptable(size):
        integral = isinstance(size, numbers.Integral) and not isinstance(size, bool)
        return integral and size > 0 and size % largest == 0

    if len(shape) != 2 or not all(acceptable(size) for size in shape):
        raise ValueError(
            f"{LOSS_LABEL}: `input_shape` must be (height, width), positive multiples of "
            f"{largest}; got input_shape={input_shape!r}."
        )
    height, width = shape
    return int(height), int(width)


def non_negative(argument: str, value: Any) -> float:
    """``value`` as a float, checked to be a finite number >= 0."""
    validation.check_non_negative(LOSS_LABEL, argument, value)
    return float(value)


def check_reg_max(reg_max: Any) -> int:
    """``reg_max`` as an int, checked to be >= 2: the DFL interpolates between two bins."""
    if isinstance(reg_max, bool) or not isinstance(reg_max, numbers.Integral) or reg_max < 2:
        raise ValueError(
            f"{LOSS_LABEL}: `reg_max` must be an integer >= 2; got reg_max={reg_max!r}."
        )
    return int(reg_max)


def check_task_weights(
    task_weights: dict[str, float] | None, tasks: tuple[str, ...]
) -> dict[str, float]:
    weights = dict(task_weights or {})
    unknown = [task for task in weights if task not in tasks]
    if unknown:
        raise ValueError(
            f"{LOSS_LABEL}: `task_weights` names {unknown}, which are not among "
            f"tasks={list(tasks)}."
        )
    return {task: non_negative(f"task_weights[{task!r}]", weights.get(task, 1.0)) for task in tasks}


def shape_of(value: Any) -> shapes.Shape:
    """The static shape of a tensor or array-like, ``None`` where unknown."""
    if not hasattr(value, "shape"):
        value = keras.ops.convert_to_tensor(value)
    return shapes.static_shape(value)


def as_task_dicts(loss: Any, y_true: Any, y_pred: Any) -> tuple[dict, dict]:
    """Returns ``(y_true, y_pred)`` as dicts keyed by task, checking that every task is there."""
    if not isinstance(y_pred, dict):
        if len(loss.tasks) != 1 or loss.use_uncertainty_weighting:
            raise ValueError(_one_output_message(loss, y_pred))
        return {loss.tasks[0]: y_true}, {loss.tasks[0]: y_pred}
    if not isinstance(y_true, dict):
        y_true = {loss.tasks[0]: y_true} if len(loss.tasks) == 1 else y_true
    missing_pred = [key for key in _expected_keys(loss) if key not in y_pred]
    missing_true = [
        task for task in loss.tasks if not isinstance(y_true, dict) or task not in y_true
    ]
    if missing_pred or missing_true:
        raise ValueError(
            f"{LOSS_LABEL}: `y_pred` needs the keys {_expected_keys(loss)} and `y_true` the "
            f"keys {list(loss.tasks)}; y_pred lacks {missing_pred}, y_true lacks {missing_true}."
        )
    outputs = {
        f"y_pred[{key!r}]": keras.ops.convert_to_tensor(y_pred[key]) for key in _expected_keys(loss)
    }
    shapes.check_same_batch(LOSS_LABEL, outputs)
    return y_true, y_pred


def _one_output_message(loss: Any, y_pred: Any) -> str:
    """The error for one output where the loss needs them all, with the fix in two lines.

    Args:
        loss: The ``YOLOv12MultiTaskLoss``.
        y_pred: The one tensor Keras handed the loss.

    Returns:
        The message: what happened, then the two lines of the fix, each
        indented by four spaces.
    """
    if loss.use_uncertainty_weighting:
        fix = (
            f'    outputs["{LOG_VARIANCES_KEY}"] = UncertaintyWeightingLayer({list(loss.tasks)})'
            "(inputs)\n"
            "    model = MultiTaskModel(inputs, outputs)"
        )
    else:
        fix = (
            "    model = MultiTaskModel(inputs, outputs)\n"
            '    model.compile(optimizer="adam", loss=loss)'
        )
    return (
        f"{LOSS_LABEL}: with tasks={list(loss.tasks)} and use_uncertainty_weighting="
        f"{loss.use_uncertainty_weighting} the loss needs every output at once, `y_pred` a dict "
        f"keyed by {_expected_keys(loss)}, but got one tensor of shape {shape_of(y_pred)}. A "
        "plain keras.Model with dict outputs hands a compiled loss one output at a time. Build "
        "the model as a MultiTaskModel (from dl_techniques.losses.vision), which hands the loss "
        "the whole dicts:\n"
        f"{fix}\n"
        "or override the model's compute_loss to return self.loss(y, y_pred)."
    )


def detection_inputs(loss: Any, gt: Any, head: Any) -> tuple[Any, Any]:
    """Checks and returns ``(gt (B, G, 5), head (B, A, 4 reg_max + C))`` in the compute dtype."""
    head = _as_compute_float(loss, head)
    gt = numerics.as_float(keras.ops.convert_to_tensor(gt), head)
    head_shape, gt_shape = shape_of(head), shape_of(gt)
    channels = 4 * loss.reg_max + loss.num_detection_classes
    if len(head_shape) != 3 or head_shape[1:] != (loss.num_anchors, channels):
        raise ValueError(
            f"{LOSS_LABEL}: y_pred['detection'] must have shape (batch, {loss.num_anchors}, "
            f"{channels}) for input_shape={loss.input_shape}, reg_max={loss.reg_max} and "
            f"num_detection_classes={loss.num_detection_classes} (4 * reg_max box logits, "
            f"then the class logits); got shape {head_shape}."
        )
    if len(gt_shape) != 3 or gt_shape[-1] != 5 or shapes.sizes_differ(gt_shape[0], head_shape[0]):
        raise ValueError(
            f"{LOSS_LABEL}: y_true['detection'] must have shape (batch, max_boxes, 5), rows "
            f"[class, x1, y1, x2, y2] with class -1 on padding rows; got shape {gt_shape} "
            f"with y_pred['detection'] shape {head_shape}."
        )
    if validation.values_due(gt):
        _check_boxes(loss, gt)
    return gt, head


def classification_loss(loss: Any, labels: Any, logits: Any) -> Any:
    """Softmax cross-entropy or focal loss, averaged over the batch."""
    logits = _as_compute_float(loss, logits)
    labels = keras.ops.convert_to_tensor(labels)
    classes = loss.num_classification_classes
    logit_shape, label_shape = shape_of(logits), shape_of(labels)
    if len(logit_shape) != 2 or logit_shape[-1] != classes:
        raise ValueError(
            f"{LOSS_LABEL}: y_pred['classification'] must have shape (batch, {classes}); got "
            f"shape {logit_shape}."
        )
    if len(label_shape) == 2 and label_shape[-1] == classes and classes > 1:
        form = "one-hot"
    elif len(label_shape) == 1 or (len(label_shape) == 2 and label_shape[-1] == 1):
        form = "ids"
    else:
        form = None
    if form is None or shapes.sizes_differ(label_shape[0], logit_shape[0]):
        raise ValueError(
            f"{LOSS_LABEL}: y_true['classification'] must hold class ids (batch,) or one-hot "
            f"(batch, {classes}) for the batch of y_pred['classification']; got y_true shape "
            f"{label_shape} with y_pred shape {logit_shape}."
        )
    if form == "one-hot":
        one_hot = numerics.as_float(labels, logits)
        validation.check_in_range(LOSS_LABEL, "y_true['classification']", one_hot, 0.0, 1.0)
    else:
        ids = keras.ops.cast(keras.ops.reshape(labels, (-1,)), "float32")
        validation.check_integers(LOSS_LABEL, "y_true['classification']", ids, 0, classes)
        one_hot = keras.ops.one_hot(keras.ops.cast(ids, "int32"), classes, dtype=logits.dtype)
    log_probabilities = keras.ops.log_softmax(logits, axis=-1)
    if loss.classification_loss == "focal":
        modulation = _segmentation_terms.safe_power(
            1.0 - keras.ops.exp(log_probabilities), loss.classification_focal_gamma
        )
        log_probabilities = modulation * log_probabilities
    return keras.ops.mean(-keras.ops.sum(one_hot * log_probabilities, axis=-1))


def log_variances(loss: Any, y_pred: dict) -> Any:
    """``(T,)``: the per-task log-variances of the batch (the layer repeats them per sample)."""
    values = keras.ops.cast(y_pred[LOG_VARIANCES_KEY], loss.compute_dtype)
    shape = shape_of(values)
    if len(shape) != 2 or shape[-1] != len(loss.tasks):
        raise ValueError(
            f"{LOSS_LABEL}: y_pred['{LOG_VARIANCES_KEY}'] must have shape (batch, "
            f"{len(loss.tasks)}), one log-variance per task {list(loss.tasks)} from an "
            f"UncertaintyWeightingLayer; got shape {shape}."
        )
    return keras.ops.mean(values, axis=0)


def _expected_keys(loss: Any) -> list[str]:
    keys = list(loss.tasks)
    if loss.use_uncertainty_weighting:
        keys.append(LOG_VARIANCES_KEY)
    return keys


def _as_compute_float(loss: Any, tensor: Any) -> Any:
    # Floating inputs arrive in the compute dtype; integer ones (a constant
    # head in a test) are cast to it.
    tensor = keras.ops.convert_to_tensor(tensor)
    if keras.backend.is_float_dtype(keras.backend.standardize_dtype(tensor.dtype)):
        return tensor
    return keras.ops.cast(tensor, loss.compute_dtype)


def _check_boxes(loss, gt):
    height, width = loss.input_shape
    classes, x1, y1, x2, y2 = (gt[..., index] for index in range(5))
    valid = classes >= 0
    fractional = keras.ops.not_equal(classes, keras.ops.round(classes))
    bad_class = keras.ops.logical_or(classes >= loss.num_detection_classes, fractional)
    outside = (x1 < 0) | (y1 < 0) | (x2 > width) | (y2 > height) | (x2 < x1) | (y2 < y1)
    bad = keras.ops.logical_and(valid, keras.ops.logical_or(bad_class, outside))
    count = int(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.cast(bad, "int32"))))
    if count:
        raise ValueError(
            f"{LOSS_LABEL}: {count} ground-truth row(s) of y_true['detection'] (shape "
            f"{shape_of(gt)}) are invalid: a valid row needs an integer class in [0, "
            f"{loss.num_detection_classes}) and 0 <= x1 <= x2 <= {width}, 0 <= y1 <= y2 <= "
            f"{height} (input_shape={loss.input_shape}); padding rows have class -1."
        )
