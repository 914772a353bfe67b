"""iBOT masked-patch self-distillation loss."""

from typing import Any

import keras

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.numerics import upcast_half, weighted_mean
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.core.shapes import static_shape
from dl_techniques.losses.self_supervised.teacher_center_layer import TeacherCenterLayer

_TEACHER_KEY = "teacher_patches"
_MASK_KEY = "mask"


@register_serializable
class iBOTPatchLoss(keras.losses.Loss):
    """iBOT cross-entropy between teacher and student tokens of masked patches.

    Called as ``loss(teacher_patches, student_patches, mask)``: patch logits
    ``(B, N, K)`` of the teacher (which saw the unmasked image) and the
    student (which saw it masked), and the mask ``(B, N)``, boolean or 0/1,
    true where a patch was masked. The third argument is the mask, not a
    sample weight. Per image, the mean over its masked patches; an image
    without a masked patch contributes 0 but still counts in ``B``:

    ```
    P_t[b, n] = softmax((t[b, n] - c) / tau_t)           (stop-gradient)
    L_s[b, n] = log_softmax(s[b, n] / tau_s)
    loss_b    = sum_n mask[b, n] (-sum_k P_t L_s)[b, n] / max(1, sum_n mask[b, n])
    loss      = mean_b loss_b
    ```

    ``y_true`` may also be the dict ``{"teacher_patches": t, "mask": m}``;
    the third argument is then the ``sample_weight``, of shape ``(B,)``.
    ``call`` returns ``loss_b`` per image, so ``sample_weight`` weights
    images. Keras' compiled loss needs ``y`` shaped like the model's output,
    which a dict ``y`` for a one-output model is not: to train with
    ``fit(patches, {"teacher_patches": t, "mask": m})``, override
    ``Model.compute_loss`` to call ``loss(y, y_pred, sample_weight)`` (and
    ``update_center``), as the package README shows.

    The mask must hold 0 and 1 (or booleans): other values raise
    ``ValueError`` on the first eager call of the loss (every eager call with
    ``DL_LOSSES_VALIDATE=always``); in a compiled step, where values cannot
    be read, any nonzero value counts as masked.

    ``update_center(teacher_patches, mask)`` moves the centre by an EMA step
    towards the mean teacher token over the masked patches of every replica;
    calling the loss never changes it. State, temperature schedule and the
    tracking rule are as ``DINOLoss``'s (``loss.state``, ``loss.center``,
    ``set_teacher_temp``).

    Reference:
        Zhou, J., et al. (2022). iBOT: Image BERT Pre-Training with Online
        Tokenizer. ICLR. (dinov2: Oquab, M., et al. (2023).)

    Args:
        patch_out_dim: Positive int, the number of patch prototypes ``K``.
        student_temp: Positive float ``tau_s``. Defaults to 0.1.
        teacher_temp: Positive float, the initial ``tau_t``. Defaults to 0.04.
        center_momentum: Float in ``[0, 1]``, the centre's EMA momentum.
            Defaults to 0.9.
        reduction: Keras reduction of the per-image values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss. Defaults to ``"ibot_patch_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = iBOTPatchLoss(patch_out_dim=8)
    teacher = keras.random.normal((2, 4, 8))   # 2 images, 4 patches
    student = keras.random.normal((2, 4, 8))
    mask = keras.ops.convert_to_tensor([[1, 0, 1, 0], [0, 0, 0, 0]], "bool")
    value = loss(teacher, student, mask)       # image 2 contributes 0
    loss.update_center(teacher, mask)
    ```
    """

    def __init__(
        self,
        patch_out_dim: int,
        student_temp: float = 0.1,
        teacher_temp: float = 0.04,
        center_momentum: float = 0.9,
        reduction: str | None = "sum_over_batch_size",
        name: str = "ibot_patch_loss",
        dtype: Any = None,
    ) -> None:
        owner = type(self).__name__
        validation.check_positive_int(owner, "patch_out_dim", patch_out_dim)
        validation.check_positive(owner, "student_temp", student_temp)
        validation.check_positive(owner, "teacher_temp", teacher_temp)
        validation.check_interval(owner, "center_momentum", center_momentum, 0.0, 1.0)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.patch_out_dim = int(patch_out_dim)
        self.student_temp = float(student_temp)
        self.teacher_temp = float(teacher_temp)
        self.center_momentum = float(center_momentum)
        self.state = TeacherCenterLayer(
            out_dim=self.patch_out_dim,
            center_momentum=self.center_momentum,
            teacher_temp=self.teacher_temp,
            name=f"{name}_state",
        )

    # The third positional argument is the mask, not Keras' sample_weight.
    @validation.checks_values
    def __call__(
        self, y_true: Any, y_pred: Any, mask: Any | None = None, sample_weight: Any | None = None
    ) -> Any:
        owner = type(self).__name__
        if isinstance(y_true, dict):
            if set(y_true) != {_TEACHER_KEY, _MASK_KEY}:
                raise ValueError(
                    f"{owner}: a dict y_true must have exactly the keys "
                    f"{[_TEACHER_KEY, _MASK_KEY]}; got keys {sorted(y_true)}."
                )
            if mask is not None and sample_weight is not None:
                raise ValueError(
                    f"{owner}: the mask is in y_true[{_MASK_KEY!r}], so the third argument "
                    "is the sample_weight; do not pass sample_weight as well."
                )
            if mask is not None:
                sample_weight = mask
            if sample_weight is not None:
                weight_shape = tuple(keras.ops.convert_to_tensor(sample_weight).shape)
                if len(weight_shape) > 1:
                    raise ValueError(
                        f"{owner}: sample_weight weights images and must have shape (B,); "
                        f"got sample_weight shape {weight_shape}."
                    )
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        if mask is None:
            raise ValueError(
                f"{owner}: the mask is required: call loss(teacher_patches, student_patches, "
                "mask), or pass y_true as a dict with keys 'teacher_patches' and 'mask'."
            )
        targets = {_TEACHER_KEY: y_true, _MASK_KEY: mask}
        return super().__call__(targets, y_pred, sample_weight=sample_weight)

    @property
    def center(self) -> Any:
        """The current patch centre, shape ``(1, patch_out_dim)``."""
        return keras.ops.convert_to_tensor(self.state.center)

    def set_teacher_temp(self, value: float) -> None:
        """Sets the teacher temperature from the next step on (see ``TeacherCenterLayer``)."""
        self.state.set_teacher_temp(value)

    def update_center(self, teacher_patches: Any, mask: Any) -> None:
        """EMA step of the centre towards the mean masked teacher token, across replicas.

        A non-finite ``teacher_patches`` leaves the centre unchanged, in eager
        and compiled steps alike; the first eager update of the state (every
        one with ``DL_LOSSES_VALIDATE=always``) raises ``ValueError`` for it,
        and for mask values other than 0 and 1 (see
        ``TeacherCenterLayer.update_center``).
        """
        teacher_patches = upcast_half(teacher_patches)
        mask = keras.ops.convert_to_tensor(mask)
        self._check_shapes(teacher_patches, teacher_patches, mask)
        self.state.update_center(
            teacher_patches, mask=mask, owner=type(self).__name__, argument="teacher_patches"
        )

    def call(self, y_true: Any, y_pred: Any) -> Any:
        teacher = upcast_half(y_true[_TEACHER_KEY])
        student = upcast_half(y_pred)
        mask = y_true[_MASK_KEY]
        self._check_shapes(teacher, student, mask)
        # A mask of 2 or 0.5 is not a masking pattern; cast to bool it would
        # silently count as masked.
        validation.check_binary(type(self).__name__, "mask", mask, what="mask values")
        self.state.note_use(student, type(self).__name__)
        teacher_probs = keras.ops.stop_gradient(
            self.state.teacher_probabilities(keras.ops.stop_gradient(teacher))
        )
        student_log_probs = keras.ops.log_softmax(student / self.student_temp, axis=-1)
        patch_loss = -keras.ops.sum(teacher_probs * student_log_probs, axis=-1)
        weights = keras.ops.cast(keras.ops.cast(mask, "bool"), patch_loss.dtype)
        return weighted_mean(patch_loss, weights, axis=-1)

    def _check_shapes(self, teacher, student, mask):
        owner = type(self).__name__
        teacher_shape, student_shape = static_shape(teacher), static_shape(student)
        mask_shape = static_shape(mask)
        shapes = (
            f"got teacher_patches shape {teacher_shape}, student_patches shape "
            f"{student_shape} and mask shape {mask_shape}"
        )
        if len(teacher_shape) != 3 or len(student_shape) != 3 or len(mask_shape) != 2:
            raise ValueError(
                f"{owner}: teacher_patches and student_patches must be (B, N, K) and the "
                f"mask (B, N); {shapes}."
            )
        if teacher_shape[-1] != self.patch_out_dim or student_shape[-1] != self.patch_out_dim:
            raise ValueError(
                f"{owner}: the last axis of teacher_patches and student_patches must be "
                f"patch_out_dim={self.patch_out_dim}; {shapes}."
            )
        for axis in (0, 1):
            sizes = {teacher_shape[axis], student_shape[axis], mask_shape[axis]} - {None}
            if len(sizes) > 1:
                raise ValueError(
                    f"{owner}: teacher_patches, student_patches and mask must agree on "
                    f"(B, N); {shapes}."
                )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "patch_out_dim": self.patch_out_dim,
            "student_temp": self.student_temp,
            "teacher_temp": self.teacher_temp,
            "center_momentum": self.center_momentum,
        }
