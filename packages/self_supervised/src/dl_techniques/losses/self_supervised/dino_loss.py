"""DINO self-distillation loss over multi-crop views."""

from typing import Any

import keras

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.numerics import upcast_half
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.core.shapes import static_shape
from dl_techniques.losses.self_supervised._sinkhorn import sinkhorn_knopp_assignments
from dl_techniques.losses.self_supervised.teacher_center_layer import TeacherCenterLayer

_CENTERINGS = ("centering", "sinkhorn_knopp")
_SINKHORN_ITERATIONS = 3


@register_serializable
class DINOLoss(keras.losses.Loss):
    """DINO cross-entropy between a teacher's and a student's crop outputs.

    Called as ``loss(teacher_output, student_output)``. The teacher sees the
    ``G`` global crops of each of ``B`` images, the student ``V >= G`` crops,
    global ones first. The teacher distribution is centred and sharpened and
    treated as a constant; every teacher view ``i`` is paired with every
    student view ``v != i``:

    ```
    P_t[i, b] = softmax((t[i, b] - c) / tau_t)           (stop-gradient)
    L_s[v, b] = log_softmax(s[v, b] / tau_s)
    loss_b    = mean over pairs (i, v), v != i, of  -sum_k P_t[i, b, k] L_s[v, b, k]
    loss      = mean_b loss_b
    ```

    With ``centering="sinkhorn_knopp"`` the teacher distribution is instead
    three Sinkhorn-Knopp iterations over all ``G * B`` teacher rows together
    (across replicas too), with no centre.

    Inputs take one of two layouts:

    - crop-major, as dinov2: teacher ``(G * B, K)`` and student ``(V * B, K)``,
      rows ``[crop 0 of every image, crop 1 of every image, ...]``;
    - image-major: teacher ``(B, G, K)`` and student ``(B, V, K)``. Every
      array then has the images on its first axis, so teacher outputs can be
      the targets ``y`` of a stock ``model.fit``.

    ``call`` returns one value per image, ``loss_b``, shape ``(B,)``: a
    ``sample_weight`` of shape ``(B,)`` weights images, and under
    ``tf.distribute`` / torch DDP each replica returns its local images.

    Calling the loss never changes the centre. ``update_center(teacher_output)``
    does (``c <- m c + (1 - m) mean_rows(t)``, averaged across replicas), and
    ``set_teacher_temp(value)`` sets the temperature schedule. Both live in a
    ``TeacherCenterLayer``, ``loss.state``, which the training model must
    track (``self.teacher_center = loss.state``) so that updates survive a JAX
    ``fit`` and the centre is saved with the model; the package README shows
    the train-step patterns per backend. An update that would be dropped (JAX,
    state not tracked, inside a compiled step) raises ``RuntimeError``. A
    teacher batch holding NaN or an infinity leaves the centre unchanged,
    also inside a compiled step, where nothing can raise; the first eager
    update raises ``ValueError`` for it as well.

    Reference:
        Caron, M., et al. (2021). Emerging Properties in Self-Supervised
        Vision Transformers. ICCV. (dinov2: Oquab, M., et al. (2023).
        DINOv2: Learning Robust Visual Features without Supervision.)

    Args:
        out_dim: Positive int, the number of prototypes ``K``. Defaults to 65536.
        student_temp: Positive float ``tau_s``. Defaults to 0.1.
        teacher_temp: Positive float, the initial ``tau_t``. Defaults to 0.04.
        center_momentum: Float in ``[0, 1]``, the centre's EMA momentum.
            Defaults to 0.9.
        num_global_crops: Positive int ``G``. Defaults to 2.
        centering: ``"centering"`` (softmax around the EMA centre) or
            ``"sinkhorn_knopp"``. Defaults to ``"centering"``.
        reduction: Keras reduction of the per-image values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss. Defaults to ``"dino_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = DINOLoss(out_dim=8, num_global_crops=2)
    teacher = keras.random.normal((2 * 4, 8))    # 2 global crops of 4 images
    student = keras.random.normal((5 * 4, 8))    # 2 global + 3 local crops
    value = loss(teacher, student)               # scalar
    loss.update_center(teacher)                  # EMA step of loss.center
    loss.set_teacher_temp(0.05)                  # warm-up schedule
    ```
    """

    def __init__(
        self,
        out_dim: int = 65536,
        student_temp: float = 0.1,
        teacher_temp: float = 0.04,
        center_momentum: float = 0.9,
        num_global_crops: int = 2,
        centering: str = "centering",
        reduction: str | None = "sum_over_batch_size",
        name: str = "dino_loss",
        dtype: Any = None,
    ) -> None:
        owner = type(self).__name__
        validation.check_positive_int(owner, "out_dim", out_dim)
        validation.check_positive(owner, "student_temp", student_temp)
        validation.check_positive(owner, "teacher_temp", teacher_temp)
        validation.check_interval(owner, "center_momentum", center_momentum, 0.0, 1.0)
        validation.check_positive_int(owner, "num_global_crops", num_global_crops)
        validation.check_choice(owner, "centering", centering, _CENTERINGS)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.out_dim = int(out_dim)
        self.student_temp = float(student_temp)
        self.teacher_temp = float(teacher_temp)
        self.center_momentum = float(center_momentum)
        self.num_global_crops = int(num_global_crops)
        self.centering = centering
        self.state = TeacherCenterLayer(
            out_dim=self.out_dim,
            center_momentum=self.center_momentum,
            teacher_temp=self.teacher_temp,
            name=f"{name}_state",
        )

    @property
    def center(self) -> Any:
        """The current centre, shape ``(1, out_dim)``."""
        return keras.ops.convert_to_tensor(self.state.center)

    def set_teacher_temp(self, value: float) -> None:
        """Sets the teacher temperature from the next step on (see ``TeacherCenterLayer``)."""
        self.state.set_teacher_temp(value)

    def update_center(self, teacher_output: Any) -> None:
        """EMA step of the centre towards the mean teacher row, across replicas.

        A non-finite ``teacher_output`` leaves the centre unchanged, in eager
        and compiled steps alike; the first eager update of the state (every
        one with ``DL_LOSSES_VALIDATE=always``) raises ``ValueError`` for it
        too (see ``TeacherCenterLayer.update_center``).
        """
        self.state.update_center(
            teacher_output, owner=type(self).__name__, argument="teacher_output"
        )

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        teacher, student = self._crop_major(upcast_half(y_true), upcast_half(y_pred))
        self.state.note_use(student, type(self).__name__)
        global_crops = self.num_global_crops
        teacher_rows = keras.ops.shape(teacher)[0]
        images = teacher_rows // global_crops
        teacher = keras.ops.stop_gradient(teacher)
        if self.centering == "sinkhorn_knopp":
            temperature = keras.ops.cast(self.state.teacher_temp, teacher.dtype)
            teacher_probs = sinkhorn_knopp_assignments(
                teacher, temperature, iterations=_SINKHORN_ITERATIONS
            )
        else:
            teacher_probs = self.state.teacher_probabilities(teacher)
        teacher_probs = keras.ops.stop_gradient(teacher_probs)
        student_log_probs = keras.ops.log_softmax(student / self.student_temp, axis=-1)

        # One row per view: (G, B K) and (V, B K).
        teacher_views = keras.ops.reshape(teacher_probs, (global_crops, images * self.out_dim))
        student_views = keras.ops.reshape(student_log_probs, (-1, images * self.out_dim))
        teacher_view = keras.ops.arange(global_crops)[:, None]
        student_view = keras.ops.arange(keras.ops.shape(student_views)[0])[None, :]
        different_views = keras.ops.cast(teacher_view != student_view, student_views.dtype)
        # For each teacher view i, sum_{v != i} log P_s[v] as one (G, V) x
        # (V, B K) matmul, so loss_b = sum_i P_t[i, b] . that / pairs. XLA runs
        # it as one dot; an einsum over the pairs (i, v) copied both inputs
        # into view-minor layouts.
        other_views = keras.ops.matmul(different_views, student_views)
        cross_entropy = keras.ops.reshape(
            teacher_views * other_views, (global_crops, images, self.out_dim)
        )
        pairs = keras.ops.sum(different_views)
        return -keras.ops.sum(cross_entropy, axis=(0, 2)) / pairs

    def _crop_major(self, teacher, student):
        """Checks the shapes and returns both inputs as ``(crops * B, K)``."""
        owner = type(self).__name__
        teacher_shape, student_shape = static_shape(teacher), static_shape(student)
        shapes = (
            f"got teacher_output shape {teacher_shape} and student_output shape {student_shape}"
        )
        if len(teacher_shape) != len(student_shape) or len(teacher_shape) not in (2, 3):
            raise ValueError(
                f"{owner}: teacher_output (y_true) and student_output (y_pred) must both be "
                f"(crops * B, K) or both (B, crops, K); {shapes}."
            )
        if teacher_shape[-1] != self.out_dim or student_shape[-1] != self.out_dim:
            raise ValueError(
                f"{owner}: the last axis of teacher_output and student_output must be "
                f"out_dim={self.out_dim}; {shapes}."
            )
        global_crops = self.num_global_crops
        if len(teacher_shape) == 3:
            if teacher_shape[1] != global_crops:
                raise ValueError(
                    f"{owner}: teacher_output (B, G, K) must hold num_global_crops="
                    f"{global_crops} crops on axis 1; {shapes}."
                )
            _check_views(owner, global_crops, student_shape[1], shapes)
            if None not in (teacher_shape[0], student_shape[0]):
                if teacher_shape[0] != student_shape[0]:
                    raise ValueError(
                        f"{owner}: teacher_output and student_output must hold the same "
                        f"images on axis 0; {shapes}."
                    )
            teacher = keras.ops.reshape(keras.ops.transpose(teacher, (1, 0, 2)), (-1, self.out_dim))
            student = keras.ops.reshape(keras.ops.transpose(student, (1, 0, 2)), (-1, self.out_dim))
            return teacher, student
        teacher_rows, student_rows = teacher_shape[0], student_shape[0]
        if teacher_rows is not None and teacher_rows % global_crops:
            raise ValueError(
                f"{owner}: the teacher_output rows must be num_global_crops={global_crops} "
                f"times the number of images; {shapes}."
            )
        if teacher_rows is not None and student_rows is not None:
            images = teacher_rows // global_crops
            if images == 0 or student_rows % images:
                raise ValueError(
                    f"{owner}: the student_output rows must be a multiple of the "
                    f"{images} images of teacher_output; {shapes}."
                )
            _check_views(owner, global_crops, student_rows // images, shapes)
        return teacher, student

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "out_dim": self.out_dim,
            "student_temp": self.student_temp,
            "teacher_temp": self.teacher_temp,
            "center_momentum": self.center_momentum,
            "num_global_crops": self.num_global_crops,
            "centering": self.centering,
        }


def _check_views(owner, global_crops, student_views, shapes):
    if student_views is None:
        return
    # Every teacher view pairs with the student's other views: V >= G crops,
    # and at least two, or no pair (i, v != i) exists.
    if student_views < max(global_crops, 2):
        raise ValueError(
            f"{owner}: the student needs at least max(num_global_crops={global_crops}, 2) "
            f"crops per image; {shapes}."
        )
