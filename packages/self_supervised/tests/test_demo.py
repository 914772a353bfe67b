import io
import math

import keras
import numpy as np

from dl_techniques.losses.core.demo import DemoRow, Progress
from dl_techniques.losses.self_supervised.demo import PLOT_FILE, TINY_SETTINGS, data, run_demo
from dl_techniques.losses.self_supervised.demo.dino import DINOStudentTeacher


def test_tiny_demo_reports_retrieval_and_embedding_spread_with_a_plot(tmp_path):
    stream = io.StringIO()
    rows = run_demo(tmp_path, Progress(stream=stream), settings=TINY_SETTINGS)

    assert all(isinstance(row, DemoRow) and math.isfinite(row.value) for row in rows)
    by_key = {(row.demo, row.metric): row for row in rows}
    retrieval_metric = f"top-1 retrieval, {TINY_SETTINGS.test_pairs} held-out pairs"
    for loss_name in ("CLIPContrastiveLoss", "SigLIPContrastiveLoss"):
        retrieval = by_key[(f"self-supervised: {loss_name}", retrieval_metric)]
        assert 0.0 <= retrieval.value <= 1.0
        assert retrieval.reference.startswith(f"chance 1/{TINY_SETTINGS.test_pairs}")
    for label in ("DINOLoss + KoLeoLoss", "DINOLoss alone"):
        demo = f"self-supervised: {label}"
        std = by_key[(demo, "per-dimension std of unit embeddings")].value
        rank = by_key[(demo, "effective rank of the embeddings")].value
        accuracy = by_key[(demo, "1-NN cluster accuracy, held-out")].value
        # Unit vectors have per-dimension std at most 1; the effective rank
        # lies between 1 and the embedding size 16.
        assert 0.0 < std <= 1.0
        assert 1.0 <= rank <= 16.0
        assert 0.0 <= accuracy <= 1.0
    assert len(rows) == 8
    assert (tmp_path / PLOT_FILE).stat().st_size > 0
    assert "self-distillation, DINOLoss + KoLeoLoss" in stream.getvalue()


def test_demo_teacher_takes_an_ema_step_towards_the_student_inside_fit():
    rng = np.random.default_rng(0)
    points, _ = data.clustered_points(rng, 16, clusters=2, latent_dim=3, input_dim=6)
    crops = data.multi_crop_views(rng, points, global_crops=2, local_crops=1)
    model = DINOStudentTeacher(embedding_dim=4, out_dim=8, hidden=8, teacher_momentum=0.25)
    model.build(crops.shape)
    for weight in model.teacher_backbone.weights:
        weight.assign(np.zeros(weight.shape, "float32"))
    student_before = [keras.ops.convert_to_numpy(w) for w in model.student_backbone.weights]
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1))
    model.fit(crops, batch_size=16, epochs=1, verbose=0)
    # One step from a zero teacher: 0.25 * 0 + 0.75 * (student before the step).
    for teacher, student in zip(model.teacher_backbone.weights, student_before, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(teacher), 0.75 * student, atol=1e-6)
    student_after = keras.ops.convert_to_numpy(model.student_backbone.weights[0])
    assert not np.allclose(student_after, student_before[0])
