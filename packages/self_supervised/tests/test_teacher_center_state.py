"""The DINO/iBOT teacher state under fit: EMA centre, temperature schedule, saving, tracking.

The model classes are the README's own code blocks ("DINO and iBOT: the
teacher centre"), executed as they are. A block is found by the label on its
first line (``# every backend``, ``# usage``, ``# tensorflow``, ``# torch``,
``# ibot``, ``# ibot usage``).
"""

import re
from pathlib import Path

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.testing.numeric import softmax
from dl_techniques.losses.self_supervised.dino_loss import DINOLoss

BACKEND = keras.backend.backend()
README = Path(__file__).parents[1] / "README.md"
SECTION = "## DINO and iBOT: the teacher centre"
OUT_DIM = 4
GLOBAL_CROPS = 2
VIEWS = 3
FEATURES = 3
IMAGES = 8
BATCH = 4
MOMENTUM = 0.9
JIT = BACKEND != "torch"


def _readme_blocks():
    section = README.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    # A fence may name the backends it runs on: ```python tensorflow
    blocks = re.findall(r"```python[^\n]*\n(.*?)```", section, flags=re.S)
    return {block.splitlines()[0].lstrip("#").split(":")[0].strip(): block for block in blocks}


def _readme_namespace():
    blocks = _readme_blocks()
    namespace = {"__name__": "dino_readme"}
    exec(blocks["every backend"], namespace)  # noqa: S102  (the README's code, verbatim)
    if BACKEND in blocks:
        exec(blocks[BACKEND], namespace)  # noqa: S102
    exec(blocks["ibot"], namespace)  # noqa: S102
    return namespace, blocks


NAMESPACE, BLOCKS = _readme_namespace()
DINOModel = keras.saving.register_keras_serializable(package="dino_readme")(NAMESPACE["DINOModel"])
iBOTModel = NAMESPACE["iBOTModel"]


def _crops():
    rng = np.random.default_rng(7)
    return rng.normal(size=(IMAGES, VIEWS, FEATURES)).astype("float32")


def _built(model_class, learning_rate=0.1):
    model = model_class(out_dim=OUT_DIM, num_global_crops=GLOBAL_CROPS)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), jit_compile=JIT)
    model(_crops()[:BATCH])
    return model


def _teacher_rows(model, crops):
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in model.teacher.weights)
    return crops[:, :GLOBAL_CROPS].astype("float64") @ kernel + bias


def _student_rows(model, crops):
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in model.student.weights)
    return crops.astype("float64") @ kernel + bias


def _numpy_ema(teacher_batches, momentum=MOMENTUM):
    center = np.zeros((1, OUT_DIM))
    for teacher in teacher_batches:
        center = momentum * center + (1 - momentum) * teacher.reshape(-1, OUT_DIM).mean(axis=0)
    return center


def _dino_reference(teacher, student, center, teacher_temp, student_temp=0.1):
    """Image-major teacher (B, G, K), student (B, V, K): mean over pairs v != i."""
    teacher_probs = softmax((teacher - center) / teacher_temp)
    student_log = np.log(softmax(student / student_temp))
    terms = [
        -(teacher_probs[:, i] * student_log[:, v]).sum(axis=-1).mean()
        for i in range(teacher.shape[1])
        for v in range(student.shape[1])
        if v != i
    ]
    return np.mean(terms)


def _center(loss):
    return keras.ops.convert_to_numpy(loss.center)


def test_fit_moves_the_centre_by_the_numpy_ema_of_the_teacher_batches():
    model = _built(DINOModel)
    crops = _crops()
    teacher = _teacher_rows(model, crops)  # the teacher is frozen, so known in advance
    model.fit(crops, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)

    batches = [teacher[:BATCH], teacher[BATCH:]] * 2  # 2 epochs of 2 steps
    np.testing.assert_allclose(_center(model.dino_loss), _numpy_ema(batches), rtol=1e-5, atol=1e-6)


def test_custom_train_step_pattern_updates_the_centre_and_trains_like_compute_loss():
    # tensorflow and torch run the README's custom train_step; jax has none
    # (its train step is stateless) and runs the compute_loss pattern.
    custom_class = {"tensorflow": "DINOModelTF", "torch": "DINOModelTorch"}.get(BACKEND)
    model = _built(NAMESPACE[custom_class] if custom_class else DINOModel)
    reference = _built(DINOModel)
    reference.set_weights(model.get_weights())
    crops = _crops()
    teacher = _teacher_rows(model, crops)

    model.fit(crops, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    reference.fit(crops, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    np.testing.assert_allclose(
        _center(model.dino_loss), _numpy_ema([teacher[:BATCH], teacher[BATCH:]]), rtol=1e-5
    )
    for trained, expected in zip(model.student.weights, reference.student.weights, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(trained), keras.ops.convert_to_numpy(expected), atol=1e-6
        )


def test_teacher_temperature_set_between_epochs_changes_the_loss_inside_compiled_fit():
    model = _built(DINOModel, learning_rate=0.0)  # frozen weights: only c and tau_t move
    crops = _crops()
    teacher = _teacher_rows(model, crops).reshape(IMAGES, GLOBAL_CROPS, OUT_DIM)
    student = _student_rows(model, crops)
    schedule = NAMESPACE["TeacherTemperatureWarmup"](model.dino_loss, 0.04, 0.08, epochs=3)

    history = model.fit(
        crops, batch_size=IMAGES, epochs=3, shuffle=False, verbose=0, callbacks=[schedule]
    )

    center = np.zeros((1, OUT_DIM))
    expected, unscheduled = [], []
    for temperature in (0.04, 0.06, 0.08):
        expected.append(_dino_reference(teacher, student, center, temperature))
        unscheduled.append(_dino_reference(teacher, student, center, 0.04))
        center = MOMENTUM * center + (1 - MOMENTUM) * teacher.reshape(-1, OUT_DIM).mean(axis=0)
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-5)
    assert abs(history.history["loss"][2] - unscheduled[2]) > 1e-3


def test_centre_and_temperature_survive_keras_save_and_load(tmp_path):
    model = _built(DINOModel)
    model.fit(_crops(), batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    model.dino_loss.set_teacher_temp(0.055)
    path = tmp_path / "dino.keras"
    model.save(path)

    loaded = keras.saving.load_model(path)

    assert loaded.teacher_center is loaded.dino_loss.state
    np.testing.assert_allclose(_center(loaded.dino_loss), _center(model.dino_loss), rtol=1e-6)
    assert np.any(_center(loaded.dino_loss) != 0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.dino_loss.state.teacher_temp), 0.055, rtol=1e-6
    )


def test_readme_usage_block_runs_the_warmup_to_its_end():
    namespace = dict(NAMESPACE, crops=_crops())
    exec(BLOCKS["usage"], namespace)  # noqa: S102  (the README's code, verbatim)

    model = namespace["model"]
    assert np.isfinite(model.evaluate(_crops(), batch_size=BATCH, verbose=0))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.dino_loss.state.teacher_temp), 0.07, rtol=1e-6
    )


class UntrackedStateModel(keras.Model):
    """Calls an outside DINOLoss without tracking its state."""

    def __init__(self, dino_loss):
        super().__init__()
        self.external_loss = dino_loss  # a Loss is not tracked, nor its state layer
        self.student = keras.layers.Dense(OUT_DIM)

    def call(self, crops):
        return self.student(crops)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        dino_loss = self.external_loss
        value = dino_loss(y, y_pred)
        if training:
            dino_loss.update_center(y)
        return value


def _untracked_run(dino_loss):
    model = UntrackedStateModel(dino_loss)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), jit_compile=JIT)
    crops = _crops()
    teacher = np.random.default_rng(3).normal(size=(IMAGES, GLOBAL_CROPS, OUT_DIM))
    model.fit(crops, teacher.astype("float32"), batch_size=IMAGES, epochs=1, verbose=0)
    return teacher


def test_untracked_centre_update_raises_on_jax_and_updates_elsewhere():
    dino_loss = DINOLoss(out_dim=OUT_DIM, num_global_crops=GLOBAL_CROPS)
    if BACKEND == "jax":
        with pytest.raises(RuntimeError, match=r"DINOLoss: update_center .* track"):
            _untracked_run(dino_loss)
    else:
        # tf.function captures the variable and torch runs eagerly: no update is lost.
        teacher = _untracked_run(dino_loss)
        np.testing.assert_allclose(_center(dino_loss), _numpy_ema([teacher]), rtol=1e-5)


def test_temperature_change_after_an_untracked_compiled_call_raises_on_jax():
    dino_loss = DINOLoss(out_dim=OUT_DIM, num_global_crops=GLOBAL_CROPS)
    model = keras.Sequential([keras.Input((VIEWS, FEATURES)), keras.layers.Dense(OUT_DIM)])
    model.compile(optimizer="sgd", loss=dino_loss, jit_compile=JIT)
    teacher = np.random.default_rng(3).normal(size=(IMAGES, GLOBAL_CROPS, OUT_DIM))
    model.fit(_crops(), teacher.astype("float32"), batch_size=IMAGES, epochs=1, verbose=0)

    if BACKEND == "jax":
        with pytest.raises(RuntimeError, match=r"DINOLoss: set_teacher_temp\(0\.07\) would be"):
            dino_loss.set_teacher_temp(0.07)
    else:
        dino_loss.set_teacher_temp(0.07)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(dino_loss.state.teacher_temp), 0.07, rtol=1e-6
        )


# iBOT under fit: the README's compute_loss pattern with a dict target.
PATCHES = 3
PATCH_FEATURES = 2
PATCH_DIM = 4
STUDENT_TEMP = 0.1
TEACHER_TEMP = 0.04


def _patch_data():
    rng = np.random.default_rng(11)
    patches = rng.normal(size=(BATCH, PATCHES, PATCH_FEATURES)).astype("float32")
    teacher = rng.normal(scale=0.1, size=(BATCH, PATCHES, PATCH_DIM)).astype("float32")
    # Image 3 masks nothing: it contributes 0 but counts in B.
    mask = np.array([[1, 0, 1], [1, 1, 1], [0, 1, 0], [0, 0, 0]], bool)
    return patches, teacher, mask


def _as_array(tensor):
    return keras.ops.convert_to_numpy(tensor)


def _ibot_numpy(student_logits, teacher, mask, center):
    """The iBOT value and its gradient with respect to the student logits, in float64.

    Per patch, ``-sum_k P_t log P_s`` has gradient ``(P_s - P_t) / tau_s``; the
    value is the mean over images of each image's mean over masked patches.
    """
    teacher_probs = softmax((teacher - center) / TEACHER_TEMP)
    student_probs = softmax(student_logits / STUDENT_TEMP)
    patch_loss = -(teacher_probs * np.log(student_probs)).sum(axis=-1)
    counts = np.maximum(mask.sum(axis=1, keepdims=True), 1)
    weights = mask / counts / len(mask)
    value = (patch_loss * weights).sum()
    gradient = weights[..., None] * (student_probs - teacher_probs) / STUDENT_TEMP
    return value, gradient


@pytest.mark.parametrize("mask_dtype", ["bool", "float32"])
def test_readme_ibot_model_trains_with_a_dict_target_like_numpy(mask_dtype):
    patches, teacher, mask = _patch_data()
    learning_rate = 0.5
    model = iBOTModel(patch_out_dim=PATCH_DIM)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), jit_compile=JIT)
    model(patches)
    kernel, bias = (np.asarray(_as_array(weight), "float64") for weight in model.student.weights)
    inputs = patches.astype("float64")
    targets = {"teacher_patches": teacher, "mask": mask.astype(mask_dtype)}

    history = model.fit(patches, targets, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)

    # Step 1 at the initial weights and centre 0; an SGD step on the numpy
    # gradient; step 2 at those weights and the centre after one EMA step.
    teacher64 = teacher.astype("float64")
    masked_mean = teacher64[mask].mean(axis=0, keepdims=True)
    first, gradient = _ibot_numpy(inputs @ kernel + bias, teacher64, mask, center=0.0)
    kernel = kernel - learning_rate * np.einsum("bnd,bnk->dk", inputs, gradient)
    bias = bias - learning_rate * gradient.sum(axis=(0, 1))
    center = (1 - MOMENTUM) * masked_mean
    second, _ = _ibot_numpy(inputs @ kernel + bias, teacher64, mask, center=center)
    np.testing.assert_allclose(history.history["loss"], [first, second], rtol=1e-4)
    np.testing.assert_allclose(
        _center(model.ibot_loss), MOMENTUM * center + (1 - MOMENTUM) * masked_mean, rtol=1e-5
    )


def test_readme_ibot_usage_block_runs_and_moves_the_centre():
    patches, _, mask = _patch_data()
    # The README's model has patch_out_dim=16.
    teacher = np.random.default_rng(12).normal(size=(BATCH, PATCHES, 16)).astype("float32")
    namespace = dict(NAMESPACE, patches=patches, teacher_patches=teacher, mask=mask)
    exec(BLOCKS["ibot usage"], namespace)  # noqa: S102  (the README's code, verbatim)

    # One step of batch 8 over 4 images: the centre is 0.1 times the masked mean.
    expected = (1 - MOMENTUM) * teacher.astype("float64")[mask].mean(axis=0, keepdims=True)
    np.testing.assert_allclose(_center(namespace["model"].ibot_loss), expected, rtol=1e-5)
