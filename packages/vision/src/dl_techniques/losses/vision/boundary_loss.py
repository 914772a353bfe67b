"""Boundary loss of Kervadec et al. (2019) and the signed distance maps it trains on."""

from typing import Any

import keras
import numpy as np

from dl_techniques.losses.core import numerics, ops, shapes, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable

# Elements of the (lines, n, n) block the distance transform holds at once.
_BLOCK_ELEMENTS = 1 << 24


@register_serializable
class BoundaryLoss(PerSampleLoss):
    """Mean of predicted probabilities times the ground truth's signed distance map.

    `y_true` is the signed distance map ``phi`` of the labels, computed once
    in the data pipeline by :func:`signed_distance_map`: per class, outside
    the object the Euclidean distance to it, inside ``-(distance to the
    background - 1)``. With ``p`` the softmax probabilities (a sigmoid for a
    single channel) and the mean over the pixels and kept classes of an image,

    ```
    loss = mean_{pixels, classes} phi_c * p_c
    ```

    which is Kervadec et al.'s ``SurfaceLoss`` (their ``idc`` = every class
    but the background with ``include_background=False``). The value is
    lowest (negative) when the probability mass sits inside the objects, so
    the loss is not bounded below by 0. The paper trains it together with
    the generalized Dice loss,

    ```
    loss_total = alpha GDL + (1 - alpha) Boundary
    alpha      = 1 at the start, lowered by 0.01 after every epoch, down to 0.01
    ```

    (a callback that updates the weights of the two terms each epoch).

    Shapes: `y_true` and `y_pred` are ``(B, H, W, C)`` or ``(B, H, W, D, C)``;
    `y_pred` holds logits with ``from_logits=True``, probabilities otherwise.
    The loss is per image: ``call`` returns ``(B,)``.

    Reference:
        Kervadec, H., Bouchtiba, J., Desrosiers, C., Granger, E., Dolz, J., &
        Ben Ayed, I. (2019). Boundary loss for highly unbalanced
        segmentation. MIDL (Medical Image Analysis 67, 2021).

    Args:
        from_logits: Whether `y_pred` holds logits. Defaults to True.
        include_background: Whether channel 0 counts (with more than one
            channel). Defaults to False.
        reduction: Keras reduction of the per-image values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"boundary_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    labels = np.zeros((1, 5, 5), "int64")
    labels[0, 1:4, 1:4] = 1                                   # a 3x3 square
    phi = signed_distance_map(labels, num_classes=2)          # (1, 5, 5, 2)
    inside = np.where(labels[..., None] == 1, 10.0, -10.0) * [-1.0, 1.0]
    BoundaryLoss()(phi, inside)  # -0.04 = -1 / 25: the mass sits where phi <= 0
    ```
    """

    def __init__(
        self,
        from_logits: bool = True,
        include_background: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "boundary_loss",
        dtype: Any = None,
    ) -> None:
        owner = type(self).__name__
        validation.check_bool(owner, "from_logits", from_logits)
        validation.check_bool(owner, "include_background", include_background)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self.include_background = include_background

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        owner = type(self).__name__
        y_pred = numerics.upcast_half(y_pred)
        y_true = numerics.as_float(y_true, y_pred)
        shapes.check_same_shape(owner, y_true, y_pred)
        if len(y_pred.shape) not in (4, 5):
            raise ValueError(
                f"{owner}: `y_pred` must have shape (batch, height, width[, depth], classes); "
                f"got y_pred shape {shapes.static_shape(y_pred)}."
            )
        classes = y_pred.shape[-1]
        if self.from_logits:
            probabilities = (
                keras.ops.sigmoid(y_pred) if classes == 1 else ops.softmax(y_pred, axis=-1)
            )
        else:
            validation.check_probabilities(owner, "y_pred", y_pred)
            probabilities = y_pred
        if not self.include_background and classes != 1:
            probabilities, y_true = probabilities[..., 1:], y_true[..., 1:]
        return keras.ops.mean(y_true * probabilities, axis=tuple(range(1, len(y_pred.shape))))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "from_logits": self.from_logits,
            "include_background": self.include_background,
        }


def signed_distance_map(labels: Any, num_classes: int) -> np.ndarray:
    """Signed Euclidean distance map of each class, the `y_true` of ``BoundaryLoss``.

    Per image and class ``c`` with mask ``M = (labels == c)``:

    ```
    phi_c(x) = dist(x, M)                  x outside M
    phi_c(x) = -(dist(x, outside M) - 1)   x inside M
    phi_c    = 0                           M empty, or M the whole image
    ```

    with exact Euclidean distances in pixels (Kervadec et al.'s
    ``one_hot2dist`` with ``scipy.ndimage.distance_transform_edt``, here in
    numpy alone): a separable minimum of squared distances along each axis,
    vectorised over every image, class and line. Run it in the data pipeline
    (it is numpy, not a graph op).

    Args:
        labels: Integer class ids ``(B, H, W)`` or ``(B, H, W, D)``, with an
            optional trailing axis of 1.
        num_classes: Int >= 1, the number of classes (channels of the map).

    Returns:
        A float32 array ``(B, H, W[, D], num_classes)``.

    Example:

    ```python
    signed_distance_map(np.array([[[0, 1, 1, 0, 0]]]), 2)[0, 0, :, 1]
    # [1., 0., 0., 1., 2.]: on the object -(1 - 1) = 0, outside the distance to it
    ```
    """
    validation.check_positive_int("signed_distance_map", "num_classes", num_classes)
    ids = np.asarray(labels)
    if ids.ndim in (4, 5) and ids.shape[-1] == 1:
        ids = ids[..., 0]
    if ids.ndim not in (3, 4):
        raise ValueError(
            "signed_distance_map: `labels` must have shape (batch, height, width[, depth]); "
            f"got labels shape {ids.shape}."
        )
    if not np.array_equal(ids, np.round(ids)) or ids.min() < 0 or ids.max() >= num_classes:
        raise ValueError(
            f"signed_distance_map: `labels` must hold integer ids in [0, {num_classes}); "
            f"got values from {ids.min()} to {ids.max()}."
        )
    spatial = ids.shape[1:]
    inside = np.moveaxis(ids[..., None] == np.arange(num_classes), -1, 1)
    maps = inside.reshape((-1, *spatial))
    to_object = np.sqrt(_squared_distance_to(maps))
    to_background = np.sqrt(_squared_distance_to(~maps))
    phi = np.where(maps, 1.0 - to_background, to_object)
    phi = np.where(np.isfinite(phi), phi, 0.0).reshape(inside.shape)
    return np.moveaxis(phi, 1, -1).astype("float32")


def _squared_distance_to(targets):
    """Squared distance of every pixel to the nearest True pixel of its map, inf without one.

    ``targets`` is ``(maps, *spatial)``; each spatial axis in turn takes
    ``d(x) = min_k d(k) + (x - k)^2`` over its line, which composes to the
    exact squared Euclidean distance.
    """
    squared = np.where(targets, 0.0, np.inf)
    for axis in range(1, squared.ndim):
        moved = np.moveaxis(squared, axis, -1)
        length = moved.shape[-1]
        lines = moved.reshape(-1, length)
        offsets = np.square(np.arange(length)[:, None] - np.arange(length)[None, :]).astype(float)
        step = max(1, _BLOCK_ELEMENTS // (length * length))
        result = np.empty_like(lines)
        for start in range(0, len(lines), step):
            block = lines[start : start + step]
            result[start : start + step] = np.min(block[:, None, :] + offsets, axis=-1)
        squared = np.moveaxis(result.reshape(moved.shape), -1, axis)
    return squared
