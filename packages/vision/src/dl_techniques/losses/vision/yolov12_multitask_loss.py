"""YOLOv12 multi-task loss: detection (Ultralytics v8), segmentation, classification."""

from collections.abc import Sequence
from typing import Any

import keras

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.vision import _yolo_anchors, _yolo_detection, _yolo_inputs
from dl_techniques.losses.vision.segmentation_loss import SegmentationLoss
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig
from dl_techniques.losses.vision.uncertainty_weighting_layer import combine

_CLASSIFICATION_LOSSES = ("cross_entropy", "focal")


@register_serializable
class YOLOv12MultiTaskLoss(BatchLoss):
    """Detection (YOLOv8/11/12), semantic segmentation and image classification in one loss.

    Detection is Ultralytics' ``v8DetectionLoss``: anchors at the cell
    centres of strides 8, 16, 32; per anchor ``4 * reg_max`` side-major bin
    logits (left, top, right, bottom) and ``C`` class logits; boxes decoded
    as the softmax expectation over the bins times the stride; targets from
    the task-aligned assigner (top-k 10, ``s^0.5 CIoU^6``). With ``S`` the
    sum of the target scores (at least 1) and ``w`` an anchor's target score:

    ```
    box   = sum_fg (1 - CIoU) w / S           cls = sum BCE_logits(cls logits, targets) / S
    dfl   = sum_fg w mean_sides DFL / S       detection = 7.5 box + 0.5 cls + 1.5 dfl
    total = sum_i lambda_i L_i                      or, with uncertainty weighting,
    total = sum_i exp(-s_i) lambda_i L_i + s_i / 2  (Kendall et al.)
    ```

    Unlike Ultralytics the value is not multiplied by the batch size.
    Segmentation uses the family's segmentation losses (``"focal_dice"``:
    dice + focal by default); classification is softmax cross-entropy or
    focal ``-(1 - p_t)^gamma log p_t`` averaged over the batch.

    Inputs are dicts keyed by task: ``y_true["detection"]`` ``(B, G, 5)``
    rows ``[class, x1, y1, x2, y2]`` in input pixels, class ``-1`` on padding
    rows; ``y_pred["detection"]`` ``(B, A, 4 * reg_max + C)``;
    ``"segmentation"`` labels ``(B, h, w)`` (or one-hot) and logits ``(B, h,
    w, C_seg)``; ``"classification"`` labels ``(B,)`` (or one-hot) and logits
    ``(B, C_cls)``; with uncertainty weighting ``y_pred["log_variances"]``
    ``(B, T)`` from an ``UncertaintyWeightingLayer``. Every output shares
    the batch size (checked on the static shapes at every call); ground-truth
    rows and class ids are checked on the first eager call of an instance
    (every eager call with ``DL_LOSSES_VALIDATE=always``). With a single task and
    no uncertainty weighting bare tensors work too, so a one-output model
    compiles with the loss as it is.

    A multi-output model: Keras' ``compile`` applies a single loss to each
    output separately, so the loss must see the whole dicts. Build the model
    as a ``MultiTaskModel`` (a functional model that hands the loss the
    whole structures and logs every term as a metric), or override
    ``compute_loss`` (``return self.loss(y, y_pred)``). Given one output
    where it needs them all (a plain ``keras.Model``), the loss raises a
    ``ValueError`` that shows this fix in two lines. ``components(y_true,
    y_pred)`` gives every term (``box``, ``cls``, ``dfl``, ``detection``,
    ``segmentation``, ``classification``, ``weight_<task>``, ``total``) for
    logging as metrics. The detection and segmentation terms pool the
    batch, so ``sample_weight`` is rejected with a ``ValueError``.

    Reference:
        Jocher et al., Ultralytics YOLO (``ultralytics/utils/loss.py``,
        ``tal.py``); Feng et al. (2021), TOOD; Li et al. (2020),
        Generalized Focal Loss; Zheng et al. (2020), Distance-IoU Loss;
        Tian et al. (2025), YOLOv12; Kendall et al. (2018).
        https://arxiv.org/abs/2502.12524

    Args:
        tasks: Subset of ``("detection", "segmentation", "classification")``.
        num_detection_classes: ``C``, required with detection.
        num_segmentation_classes: Required with segmentation.
        num_classification_classes: Required with classification.
        input_shape: ``(H, W)`` in pixels, multiples of 32.
        use_uncertainty_weighting: Read ``y_pred["log_variances"]`` and weight
            the tasks by Kendall's rule.
        box_gain: Weight of the CIoU term. Defaults to 7.5.
        cls_gain: Weight of the BCE term. Defaults to 0.5.
        dfl_gain: Weight of the DFL term. Defaults to 1.5.
        reg_max: Bins per box side, >= 2. Defaults to 16.
        topk: Positives per ground-truth box. Defaults to 10.
        assigner_alpha: Class-score exponent of the alignment. Defaults to 0.5.
        assigner_beta: CIoU exponent of the alignment. Defaults to 6.0.
        task_weights: Dict task -> fixed weight ``lambda_i`` (default 1).
        segmentation_loss: A ``create_segmentation_loss_function`` name.
            Defaults to ``"focal_dice"``.
        segmentation_config: ``SegmentationLossConfig`` (or its dict); by
            default one with ``from_logits=True``.
        classification_loss: ``"cross_entropy"`` or ``"focal"``.
        classification_focal_gamma: Focal exponent, >= 0. Defaults to 2.0.
        name: Name of the loss. Defaults to ``"yolov12_multitask_loss"``.
        dtype: Dtype of the loss; float16/bfloat16 inputs are computed in float32.

    Example:

    ```python
    loss = YOLOv12MultiTaskLoss(["detection"], num_detection_classes=3, input_shape=(64, 64))
    gt = np.array([[[0, 8.0, 8.0, 40.0, 30.0]]], "float32")       # one box
    head = np.zeros((1, 84, 4 * 16 + 3), "float32")               # 64 + 16 + 4 anchors
    loss(gt, head)
    ```
    """

    def __init__(
        self,
        tasks: str | Sequence[str] = ("detection",),
        num_detection_classes: int | None = 80,
        num_segmentation_classes: int | None = None,
        num_classification_classes: int | None = None,
        input_shape: Sequence[int] = (640, 640),
        use_uncertainty_weighting: bool = False,
        box_gain: float = 7.5,
        cls_gain: float = 0.5,
        dfl_gain: float = 1.5,
        reg_max: int = 16,
        topk: int = 10,
        assigner_alpha: float = 0.5,
        assigner_beta: float = 6.0,
        task_weights: dict[str, float] | None = None,
        segmentation_loss: str = "focal_dice",
        segmentation_config: SegmentationLossConfig | dict[str, Any] | None = None,
        classification_loss: str = "cross_entropy",
        classification_focal_gamma: float = 2.0,
        name: str = "yolov12_multitask_loss",
        dtype: Any = None,
    ) -> None:
        tasks = _yolo_inputs.check_tasks(tasks)
        super().__init__(name=name, reduction="sum_over_batch_size", dtype=dtype)
        self.tasks = tasks
        self.num_detection_classes = _yolo_inputs.class_count(
            "num_detection_classes", num_detection_classes, "detection" in tasks
        )
        self.num_segmentation_classes = _yolo_inputs.class_count(
            "num_segmentation_classes", num_segmentation_classes, "segmentation" in tasks
        )
        self.num_classification_classes = _yolo_inputs.class_count(
            "num_classification_classes", num_classification_classes, "classification" in tasks
        )
        self.input_shape = _yolo_inputs.check_input_shape(input_shape)
        self.use_uncertainty_weighting = bool(use_uncertainty_weighting)
        self.box_gain = _yolo_inputs.non_negative("box_gain", box_gain)
        self.cls_gain = _yolo_inputs.non_negative("cls_gain", cls_gain)
        self.dfl_gain = _yolo_inputs.non_negative("dfl_gain", dfl_gain)
        self.reg_max = _yolo_inputs.check_reg_max(reg_max)
        validation.check_positive_int(_yolo_inputs.LOSS_LABEL, "topk", topk)
        self.topk = int(topk)
        self.assigner_alpha = _yolo_inputs.non_negative("assigner_alpha", assigner_alpha)
        self.assigner_beta = _yolo_inputs.non_negative("assigner_beta", assigner_beta)
        self.task_weights = _yolo_inputs.check_task_weights(task_weights, tasks)
        validation.check_choice(
            _yolo_inputs.LOSS_LABEL,
            "classification_loss",
            classification_loss,
            _CLASSIFICATION_LOSSES,
        )
        self.classification_loss = classification_loss
        self.classification_focal_gamma = _yolo_inputs.non_negative(
            "classification_focal_gamma", classification_focal_gamma
        )
        self.segmentation_loss = segmentation_loss
        self.segmentation_config: SegmentationLossConfig | None = None
        self._segmentation: SegmentationLoss | None = None
        # class_count gives None only for a task that is not requested.
        if "segmentation" in tasks and self.num_segmentation_classes is not None:
            config = segmentation_config
            if config is None:
                config = SegmentationLossConfig(
                    num_classes=self.num_segmentation_classes, from_logits=True
                )
            elif isinstance(config, dict):
                config = SegmentationLossConfig.from_config(config)
            if config.num_classes != self.num_segmentation_classes:
                raise ValueError(
                    f"YOLOv12MultiTaskLoss: segmentation_config has num_classes="
                    f"{config.num_classes} but num_segmentation_classes="
                    f"{self.num_segmentation_classes}."
                )
            self.segmentation_config = config
            self._segmentation = SegmentationLoss(segmentation_loss, config)

    @property
    def num_anchors(self) -> int:
        """``A``, the anchors of ``input_shape`` over strides 8, 16, 32."""
        return _yolo_anchors.num_anchors(self.input_shape)

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        return self._terms(y_true, y_pred, sample_weight)["total"]

    @validation.checks_values
    def components(
        self, y_true: Any, y_pred: Any, sample_weight: Any | None = None
    ) -> dict[str, Any]:
        """Returns a dict of scalars: each task's terms, the task weights and ``"total"``.

        ``MultiTaskModel.compute_loss`` calls this instead of the loss itself,
        so the inputs are brought to the compute dtype here as ``__call__``
        does, and the terms come back in the compute dtype.
        """
        with keras.name_scope(self.name):
            return self._terms(
                self.compute_inputs(y_true), self.compute_inputs(y_pred), sample_weight
            )

    def _terms(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> dict[str, Any]:
        if sample_weight is not None:
            raise ValueError(
                "YOLOv12MultiTaskLoss: `sample_weight` is not supported; the detection and "
                "segmentation terms are normalised over the whole batch. Got sample_weight "
                f"of shape {_yolo_inputs.shape_of(sample_weight)}."
            )
        dtype = self.compute_dtype
        y_true, y_pred = _yolo_inputs.as_task_dicts(self, y_true, y_pred)
        parts: dict[str, Any] = {}
        if "detection" in self.tasks:
            gt, head = _yolo_inputs.detection_inputs(self, y_true["detection"], y_pred["detection"])
            terms = _yolo_detection.detection_terms(
                gt,
                head,
                self.input_shape,
                num_classes=self.num_detection_classes,
                reg_max=self.reg_max,
                topk=self.topk,
                alpha=self.assigner_alpha,
                beta=self.assigner_beta,
            )
            parts.update(box=terms.box, cls=terms.cls, dfl=terms.dfl)
            parts["detection"] = (
                self.box_gain * terms.box + self.cls_gain * terms.cls + self.dfl_gain * terms.dfl
            )
        if self._segmentation is not None:
            segmentation = self._segmentation(y_true["segmentation"], y_pred["segmentation"])
            parts["segmentation"] = keras.ops.cast(segmentation, dtype)
        if "classification" in self.tasks:
            parts["classification"] = _yolo_inputs.classification_loss(
                self, y_true["classification"], y_pred["classification"]
            )
        task_losses = keras.ops.stack(
            [keras.ops.cast(parts[task], dtype) * self.task_weights[task] for task in self.tasks]
        )
        if self.use_uncertainty_weighting:
            log_variances = _yolo_inputs.log_variances(self, y_pred)
            weights = keras.ops.exp(-log_variances)
            parts["total"] = combine(task_losses, log_variances)
        else:
            weights = keras.ops.ones_like(task_losses)
            parts["total"] = keras.ops.sum(task_losses)
        for index, task in enumerate(self.tasks):
            parts[f"weight_{task}"] = weights[index] * self.task_weights[task]
        return parts

    def component_names(self) -> list[str]:
        """The keys of :meth:`components`, in a fixed order."""
        names = []
        if "detection" in self.tasks:
            names += ["box", "cls", "dfl"]
        names += list(self.tasks) + [f"weight_{task}" for task in self.tasks] + ["total"]
        return names

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self._dtype_policy.name,
            "tasks": list(self.tasks),
            "num_detection_classes": self.num_detection_classes,
            "num_segmentation_classes": self.num_segmentation_classes,
            "num_classification_classes": self.num_classification_classes,
            "input_shape": list(self.input_shape),
            "use_uncertainty_weighting": self.use_uncertainty_weighting,
            "box_gain": self.box_gain,
            "cls_gain": self.cls_gain,
            "dfl_gain": self.dfl_gain,
            "reg_max": self.reg_max,
            "topk": self.topk,
            "assigner_alpha": self.assigner_alpha,
            "assigner_beta": self.assigner_beta,
            "task_weights": dict(self.task_weights),
            "segmentation_loss": self.segmentation_loss,
            "segmentation_config": (
                None if self.segmentation_config is None else self.segmentation_config.get_config()
            ),
            "classification_loss": self.classification_loss,
            "classification_focal_gamma": self.classification_focal_gamma,
        }


def create_yolov12_multitask_loss(
    tasks: str | Sequence[str] = ("detection", "segmentation", "classification"),
    num_detection_classes: int = 80,
    num_segmentation_classes: int | None = None,
    num_classification_classes: int | None = None,
    input_shape: Sequence[int] = (640, 640),
    use_uncertainty_weighting: bool = False,
    **kwargs: Any,
) -> YOLOv12MultiTaskLoss:
    """Returns a ``YOLOv12MultiTaskLoss`` for ``tasks``; see that class for the formulas.

    Called with its defaults it gives the three tasks over one list of 80
    classes (COCO's) at 640 x 640 pixels.

    Args:
        tasks: Any subset of ``("detection", "segmentation", "classification")``;
            an unknown name raises ``ValueError``.
        num_detection_classes: Detection classes. Defaults to 80.
        num_segmentation_classes: Segmentation classes (with segmentation).
            Defaults to ``num_detection_classes``.
        num_classification_classes: Image classes (with classification).
            Defaults to ``num_detection_classes``.
        input_shape: ``(H, W)`` of the input images, multiples of 32.
        use_uncertainty_weighting: Weight the tasks by learned log-variances,
            read from ``y_pred["log_variances"]`` (an
            ``UncertaintyWeightingLayer`` output of the model).
        **kwargs: Any other ``YOLOv12MultiTaskLoss`` argument.

    Example:

    ```python
    loss = create_yolov12_multitask_loss(
        tasks=["detection", "classification"], num_detection_classes=3,
        num_classification_classes=5, input_shape=(64, 64),
    )
    ```
    """
    tasks = _yolo_inputs.check_tasks(tasks)
    # One class list for every task unless told otherwise; a count given for
    # a task that is not requested is passed on as given.
    if num_segmentation_classes is None and "segmentation" in tasks:
        num_segmentation_classes = num_detection_classes
    if num_classification_classes is None and "classification" in tasks:
        num_classification_classes = num_detection_classes
    return YOLOv12MultiTaskLoss(
        tasks=tasks,
        num_detection_classes=num_detection_classes,
        num_segmentation_classes=num_segmentation_classes,
        num_classification_classes=num_classification_classes,
        input_shape=input_shape,
        use_uncertainty_weighting=use_uncertainty_weighting,
        **kwargs,
    )
