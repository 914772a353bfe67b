"""IoU, GIoU, DIoU and CIoU losses of bounding boxes, one value per box."""

import math
from typing import Any

import keras

from dl_techniques.losses.core import numerics, shapes, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable

_OWNER = "BoxIoULoss"
_KINDS = ("iou", "giou", "diou", "ciou")
_BOX_FORMATS = ("xyxy", "xywh")


@register_serializable
class BoxIoULoss(PerSampleLoss):
    """One minus an IoU-type overlap of predicted and target boxes.

    Boxes are ``(..., 4)``; ``box_format="xyxy"`` reads ``(x1, y1, x2, y2)``
    and ``"xywh"`` reads ``(centre x, centre y, width, height)``. With the
    intersection ``I``, the union ``U``, the smallest enclosing box of area
    ``C`` and diagonal ``d``, the centre distance ``rho`` and the widths and
    heights ``w, h`` (target ``w_t, h_t``):

    ```
    IoU  = I / (U + eps)
    iou  : 1 - IoU
    giou : 1 - IoU + (C - U) / (C + eps)
    diou : 1 - IoU + rho^2 / (d^2 + eps)
    ciou : diou + alpha v,   v = 4 / pi^2 (atan(w_t / h_t) - atan(w / h))^2,
                             alpha = v / (1 - IoU + v + eps), no gradient
    ```

    These are the values and gradients of torchvision's
    ``generalized_box_iou_loss``, ``distance_box_iou_loss`` and
    ``complete_box_iou_loss`` with ``reduction="none"`` (the same ``eps``,
    CIoU's ``alpha`` detached as there). Degenerate boxes stay finite where
    torchvision divides by a zero height: ``atan(w / 0)`` is taken as its
    limit ``sign(w) pi / 2`` with no gradient through the angle, so two
    points give a finite value and gradient.

    ``call`` drops the last axis: targets ``(B, N, 4)`` give one loss per box,
    ``(B, N)``, and Keras' reduction averages over every box (``sample_weight``
    of shape ``(B,)`` weighs images, ``(B, N)`` weighs boxes).

    References:
        Rezatofighi, H. et al. (2019). Generalized Intersection over Union: A
        Metric and a Loss for Bounding Box Regression. CVPR.
        Zheng, Z. et al. (2020). Distance-IoU Loss: Faster and Better Learning
        for Bounding Box Regression. AAAI.

    Args:
        kind: ``"iou"``, ``"giou"``, ``"diou"`` or ``"ciou"``. Defaults to
            ``"giou"``.
        box_format: ``"xyxy"`` or ``"xywh"``, of both inputs. Defaults to
            ``"xyxy"``.
        eps: Positive float added to the denominators, as torchvision's
            ``eps``. Defaults to 1e-7.
        reduction: Keras reduction of the per-box values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"box_iou_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = BoxIoULoss(kind="giou")
    loss([[0.0, 0.0, 2.0, 2.0]], [[1.0, 0.0, 3.0, 2.0]])  # 1 - 2 / 6 = 0.6667
    ```
    """

    def __init__(
        self,
        kind: str = "giou",
        box_format: str = "xyxy",
        eps: float = 1e-7,
        reduction: str | None = "sum_over_batch_size",
        name: str = "box_iou_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_choice(_OWNER, "kind", kind, _KINDS)
        validation.check_choice(_OWNER, "box_format", box_format, _BOX_FORMATS)
        validation.check_positive(_OWNER, "eps", eps)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.kind = kind
        self.box_format = box_format
        self.eps = float(eps)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = numerics.upcast_half(y_pred)
        y_true = numerics.as_float(y_true, y_pred)
        shapes.check_same_shape(_OWNER, y_true, y_pred)
        if len(y_pred.shape) < 1 or y_pred.shape[-1] != 4:
            raise ValueError(
                f"BoxIoULoss: boxes must have shape (..., 4); got y_pred shape "
                f"{shapes.static_shape(y_pred)}."
            )
        if self.box_format == "xywh":
            y_true, y_pred = _corners(y_true), _corners(y_pred)
        return self._corner_loss(y_true, y_pred)

    def _corner_loss(self, target, prediction):
        px1, py1, px2, py2 = (prediction[..., i] for i in range(4))
        tx1, ty1, tx2, ty2 = (target[..., i] for i in range(4))
        pred_w, pred_h = px2 - px1, py2 - py1
        true_w, true_h = tx2 - tx1, ty2 - ty1
        inter = keras.ops.relu(_lower(px2, tx2) - _upper(px1, tx1))
        inter = inter * keras.ops.relu(_lower(py2, ty2) - _upper(py1, ty1))
        union = pred_w * pred_h + true_w * true_h - inter
        iou = inter / (union + self.eps)
        loss = 1.0 - iou
        if self.kind == "iou":
            return loss
        hull_w = _upper(px2, tx2) - _lower(px1, tx1)
        hull_h = _upper(py2, ty2) - _lower(py1, ty1)
        if self.kind == "giou":
            hull_area = hull_w * hull_h
            return loss + (hull_area - union) / (hull_area + self.eps)
        centre_gap = keras.ops.square((px1 + px2 - tx1 - tx2) / 2.0)
        centre_gap = centre_gap + keras.ops.square((py1 + py2 - ty1 - ty2) / 2.0)
        loss = loss + centre_gap / (keras.ops.square(hull_w) + keras.ops.square(hull_h) + self.eps)
        if self.kind == "diou":
            return loss
        aspect = (4.0 / math.pi**2) * keras.ops.square(
            _aspect_angle(true_w, true_h) - _aspect_angle(pred_w, pred_h)
        )
        alpha = keras.ops.stop_gradient(aspect / (1.0 - iou + aspect + self.eps))
        return loss + alpha * aspect

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "kind": self.kind,
            "box_format": self.box_format,
            "eps": self.eps,
        }


def _corners(boxes):
    centre, size = boxes[..., :2], boxes[..., 2:]
    return keras.ops.concatenate([centre - size / 2.0, centre + size / 2.0], axis=-1)


def _lower(first, second):
    # At a tie each argument gets half the gradient, as torch.minimum and
    # jax's minimum share it; tensorflow gives it all to one argument, so
    # there a tie is the mean of the two.
    if keras.backend.backend() != "tensorflow":
        return keras.ops.minimum(first, second)
    return keras.ops.where(
        first == second, (first + second) / 2.0, keras.ops.minimum(first, second)
    )


def _upper(first, second):
    if keras.backend.backend() != "tensorflow":
        return keras.ops.maximum(first, second)
    return keras.ops.where(
        first == second, (first + second) / 2.0, keras.ops.maximum(first, second)
    )


def _aspect_angle(width, height):
    # atan(w / h), and its limit sign(w) pi / 2 at h = 0, where the safe
    # denominator keeps the unused branch (and its gradient) finite.
    flat = height == 0.0
    safe_height = keras.ops.where(flat, keras.ops.ones_like(height), height)
    limit = keras.ops.stop_gradient(keras.ops.sign(width) * (math.pi / 2.0))
    return keras.ops.where(flat, limit, keras.ops.arctan(width / safe_height))
