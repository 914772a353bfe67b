"""The small DINO student-teacher model trained by the self-supervised demo."""

import keras

from dl_techniques.losses.self_supervised.dino_loss import DINOLoss
from dl_techniques.losses.self_supervised.koleo_loss import KoLeoLoss


class _MLP(keras.layers.Layer):
    """Two dense layers over the last axis, for inputs of any rank."""

    def __init__(self, hidden, out_dim, **kwargs):
        super().__init__(**kwargs)
        self.hidden_layer = keras.layers.Dense(hidden, activation="gelu")
        self.output_layer = keras.layers.Dense(out_dim)

    def build(self, input_shape):
        self.hidden_layer.build(input_shape)
        self.output_layer.build(self.hidden_layer.compute_output_shape(input_shape))

    def call(self, inputs):
        return self.output_layer(self.hidden_layer(inputs))

    def compute_output_shape(self, input_shape):
        return self.output_layer.compute_output_shape(input_shape)


class DINOStudentTeacher(keras.Model):
    """A student and an EMA teacher, each a backbone and a projection head.

    Called on crops ``(B, V, D)`` (the G global crops first), it returns the
    teacher's head outputs on the global crops, the student's head outputs on
    every crop and the student's backbone embeddings. ``compute_loss`` runs
    inside the train step on every backend (on JAX inside the stateless step
    whose variable updates ``fit`` keeps), so it adds the KoLeo term, moves
    the DINO centre and takes the teacher's EMA step there. The teacher's
    weights are non-trainable; the model tracks ``dino_loss.state``.
    """

    def __init__(
        self,
        embedding_dim,
        out_dim,
        hidden=64,
        num_global_crops=2,
        koleo_weight=0.1,
        teacher_momentum=0.95,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_global_crops = num_global_crops
        self.koleo_weight = koleo_weight
        self.teacher_momentum = teacher_momentum
        self.dino_loss = DINOLoss(
            out_dim=out_dim, num_global_crops=num_global_crops, teacher_temp=0.04
        )
        self.teacher_center = self.dino_loss.state
        self.koleo_loss = KoLeoLoss()
        self.student_backbone = _MLP(hidden, embedding_dim, name="student_backbone")
        self.student_head = _MLP(hidden, out_dim, name="student_head")
        self.teacher_backbone = _MLP(hidden, embedding_dim, name="teacher_backbone")
        self.teacher_head = _MLP(hidden, out_dim, name="teacher_head")
        # Set after construction, so that it reaches the nested Dense layers:
        # on JAX only non-trainable variables keep updates made in compute_loss.
        self.teacher_backbone.trainable = False
        self.teacher_head.trainable = False

    def build(self, input_shape):
        crop_shape = (None, input_shape[-1])
        for backbone, head in (
            (self.student_backbone, self.student_head),
            (self.teacher_backbone, self.teacher_head),
        ):
            backbone.build(crop_shape)
            head.build(backbone.compute_output_shape(crop_shape))
        # A host copy, so that the teacher never shares the student's buffer
        # (JAX donates both to the compiled step).
        for teacher, student in self._teacher_student_pairs():
            teacher.assign(keras.ops.convert_to_numpy(student))

    def call(self, crops):
        embeddings = self.student_backbone(crops)
        global_crops = crops[:, : self.num_global_crops]
        teacher = self.teacher_head(self.teacher_backbone(global_crops))
        return {
            "teacher": keras.ops.stop_gradient(teacher),
            "student": self.student_head(embeddings),
            "embeddings": embeddings,
        }

    def embed(self, points):
        """Student backbone embeddings of clean points ``(N, D)``."""
        return self.student_backbone(points)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.dino_loss(y_pred["teacher"], y_pred["student"])
        if self.koleo_weight:
            # KoLeo spreads the student's embeddings of each global crop
            # within the batch, as DINOv2 applies it to the class tokens.
            batch = keras.ops.shape(y_pred["embeddings"])[0]
            ignored = keras.ops.zeros((batch,))
            koleo = [
                self.koleo_loss(ignored, y_pred["embeddings"][:, crop])
                for crop in range(self.num_global_crops)
            ]
            loss = loss + self.koleo_weight * keras.ops.mean(keras.ops.stack(koleo))
        if training:
            self.dino_loss.update_center(y_pred["teacher"])
            momentum = self.teacher_momentum
            for teacher, student in self._teacher_student_pairs():
                teacher.assign(momentum * teacher + (1.0 - momentum) * student)
        return loss

    def _teacher_student_pairs(self):
        teacher = self.teacher_backbone.weights + self.teacher_head.weights
        student = self.student_backbone.weights + self.student_head.weights
        return zip(teacher, student, strict=True)
