import math
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    gradient_dtype,
    hypothesis_examples,
    softmax,
)
from dl_techniques.losses.self_supervised.dino_loss import DINOLoss


def dino_reference(
    teacher,
    student,
    global_crops,
    center=0.0,
    teacher_temp=0.04,
    student_temp=0.1,
    teacher_probs=None,
):
    """Crop-major DINO in float64, written from the formula with explicit loops.

    Returns the per-image values: for each image b, the mean over teacher
    views i and student views v != i of -sum_k P_t[i, b, k] log P_s[v, b, k].
    """
    teacher = np.asarray(teacher, "float64")
    student = np.asarray(student, "float64")
    images = teacher.shape[0] // global_crops
    views = student.shape[0] // images
    if teacher_probs is None:
        teacher_probs = softmax((teacher - center) / teacher_temp)
    student_log_probs = np.log(softmax(student / student_temp))
    per_image = np.zeros(images)
    for b in range(images):
        terms = []
        for i in range(global_crops):
            for v in range(views):
                if v == i:
                    continue
                p_t = teacher_probs[i * images + b]
                log_p_s = student_log_probs[v * images + b]
                terms.append(-np.sum(p_t * log_p_s))
        per_image[b] = np.mean(terms)
    return per_image


def sinkhorn_reference(teacher, teacher_temp, iterations=3):
    """dinov2's sinkhorn_knopp_teacher on one device, in float64 probabilities."""
    q = np.exp(np.asarray(teacher, "float64") / teacher_temp).T  # (K, rows)
    prototypes, rows = q.shape
    q /= q.sum()
    for _ in range(iterations):
        q /= q.sum(axis=1, keepdims=True)
        q /= prototypes
        q /= q.sum(axis=0, keepdims=True)
        q /= rows
    return (q * rows).T


def random_crops(seed, images=3, global_crops=2, views=4, prototypes=5, scale=1.0):
    rng = np.random.default_rng(seed)
    teacher = rng.normal(scale=scale, size=(global_crops * images, prototypes))
    student = rng.normal(scale=scale, size=(views * images, prototypes))
    return teacher.astype("float32"), student.astype("float32")


def test_uniform_teacher_and_student_give_log_k():
    # Zero logits: P_t = P_s = 1/K on every pair, so each term is log K = log 4.
    loss = DINOLoss(out_dim=4, num_global_crops=2)
    value = loss(np.zeros((2 * 3, 4), "float32"), np.zeros((5 * 3, 4), "float32"))
    np.testing.assert_allclose(float(value), math.log(4.0), rtol=1e-6)


def test_same_view_pair_is_left_out():
    # G = 1, V = 2, one image, K = 2. Teacher [0, 0] is uniform. Student view 1
    # is [0, 0.1 ln 3], so P_s = [1/4, 3/4] at tau_s = 0.1 and the loss is
    # -(0.5 ln 1/4 + 0.5 ln 3/4) = 0.5 ln(16/3) = 0.836988. Student view 0
    # pairs only with teacher view 0 and must not count, whatever its value.
    loss = DINOLoss(out_dim=2, num_global_crops=1)
    student = np.array([[5.0, -5.0], [0.0, 0.1 * math.log(3.0)]], "float32")
    value = loss(np.zeros((1, 2), "float32"), student)
    np.testing.assert_allclose(float(value), 0.5 * math.log(16.0 / 3.0), rtol=1e-6)


def test_random_crop_major_value_matches_the_reference_per_image():
    teacher, student = random_crops(seed=1)
    loss = DINOLoss(
        out_dim=5, num_global_crops=2, student_temp=0.2, teacher_temp=0.07, reduction=None
    )
    np.testing.assert_allclose(
        as_numpy(loss(teacher, student)),
        dino_reference(teacher, student, 2, teacher_temp=0.07, student_temp=0.2),
        rtol=1e-5,
    )


def test_image_major_layout_equals_crop_major():
    teacher, student = random_crops(seed=2, images=3, global_crops=2, views=3)
    loss = DINOLoss(out_dim=5, num_global_crops=2, reduction=None)
    image_major_teacher = teacher.reshape(2, 3, 5).transpose(1, 0, 2)
    image_major_student = student.reshape(3, 3, 5).transpose(1, 0, 2)
    np.testing.assert_allclose(
        as_numpy(loss(image_major_teacher, image_major_student)),
        dino_reference(teacher, student, 2),
        rtol=1e-5,
    )


def test_update_center_is_the_ema_of_teacher_row_means_and_call_leaves_it():
    first, student = random_crops(seed=3)
    second, _ = random_crops(seed=4)
    loss = DINOLoss(out_dim=5, num_global_crops=2, center_momentum=0.8)
    loss(first, student)
    np.testing.assert_array_equal(as_numpy(loss.center), np.zeros((1, 5)))

    loss.update_center(first)
    loss.update_center(second)

    expected = 0.2 * first.mean(axis=0)
    expected = 0.8 * expected + 0.2 * second.mean(axis=0)
    np.testing.assert_allclose(as_numpy(loss.center), expected[None], rtol=1e-5, atol=1e-7)


def test_value_uses_the_centre_and_the_scheduled_teacher_temperature():
    teacher, student = random_crops(seed=5)
    loss = DINOLoss(out_dim=5, num_global_crops=2, center_momentum=0.5)
    loss.update_center(teacher * 3.0)
    loss.set_teacher_temp(0.06)
    center = 0.5 * (teacher * 3.0).astype("float64").mean(axis=0)
    np.testing.assert_allclose(
        float(loss(teacher, student)),
        dino_reference(teacher, student, 2, center=center, teacher_temp=0.06).mean(),
        rtol=1e-5,
    )


def test_sinkhorn_knopp_value_matches_the_dinov2_iterations():
    teacher, student = random_crops(seed=6, images=4, global_crops=2, views=3, prototypes=3)
    loss = DINOLoss(out_dim=3, num_global_crops=2, centering="sinkhorn_knopp", teacher_temp=0.5)
    loss.update_center(teacher + 10.0)  # the centre plays no part in Sinkhorn-Knopp
    probs = sinkhorn_reference(teacher, 0.5)
    np.testing.assert_allclose(
        float(loss(teacher, student)),
        dino_reference(teacher, student, 2, teacher_probs=probs).mean(),
        rtol=1e-5,
    )


def test_sinkhorn_knopp_stays_finite_for_logits_far_beyond_exp_range():
    # At tau_t = 0.04 logits of 100 reach exp(2500): the log domain must hold.
    teacher, student = random_crops(seed=7, scale=100.0)
    loss = DINOLoss(out_dim=5, num_global_crops=2, centering="sinkhorn_knopp")
    assert np.isfinite(float(loss(teacher, student)))


def test_gradient_matches_central_differences_and_teacher_gets_none():
    dtype = gradient_dtype()
    teacher, student = random_crops(seed=8, images=2, global_crops=2, views=3, prototypes=3)
    loss = DINOLoss(out_dim=3, num_global_crops=2, teacher_temp=0.2, dtype=dtype)
    teacher_tensor = keras.ops.convert_to_tensor(teacher, dtype=dtype)
    student_tensor = keras.ops.convert_to_tensor(student, dtype=dtype)

    gradient = input_gradient(lambda values: loss(teacher_tensor, values), student_tensor)
    teacher_gradient = input_gradient(lambda values: loss(values, student_tensor), teacher_tensor)

    expected = central_differences(
        lambda values: dino_reference(teacher, values, 2, teacher_temp=0.2).mean(), student
    )
    tolerance = {"rtol": 1e-6, "atol": 1e-8} if dtype == "float64" else {"rtol": 2e-3, "atol": 2e-4}
    np.testing.assert_allclose(as_numpy(gradient), expected, **tolerance)
    np.testing.assert_array_equal(as_numpy(teacher_gradient), np.zeros_like(teacher))


def test_sample_weight_weights_images():
    teacher, student = random_crops(seed=9)
    weights = np.array([0.0, 1.0, 3.0], "float32")
    loss = DINOLoss(out_dim=5, num_global_crops=2)
    expected = np.sum(weights * dino_reference(teacher, student, 2)) / 3
    np.testing.assert_allclose(float(loss(teacher, student, weights)), expected, rtol=1e-5)


@settings(max_examples=hypothesis_examples(15), deadline=None)
@given(
    student=hnp.arrays("float32", (3 * 2, 4), elements=st.floats(-5.0, 5.0, width=32)),
    shifts=hnp.arrays("float32", (3 * 2, 1), elements=st.floats(-50.0, 50.0, width=32)),
)
def test_value_is_unchanged_by_a_constant_added_to_a_student_row(student, shifts):
    teacher = np.linspace(-1.0, 1.0, 2 * 2 * 4, dtype="float32").reshape(4, 4)
    loss = DINOLoss(out_dim=4, num_global_crops=2, student_temp=1.0)
    np.testing.assert_allclose(
        float(loss(teacher, student + shifts)), float(loss(teacher, student)), rtol=2e-4, atol=2e-4
    )


@pytest.mark.parametrize(
    ("teacher_shape", "student_shape", "message"),
    [
        ((5, 4), (10, 4), "num_global_crops=2"),
        ((6, 4), (9, 3), "last axis"),
        ((6, 4), (3, 4), "at least"),
        ((6, 4), (10, 4), "multiple of the 3 images"),
        ((3, 2, 4), (3, 1, 4), "at least"),
    ],
)
def test_incompatible_shapes_raise_naming_the_loss_and_shapes(
    teacher_shape, student_shape, message
):
    loss = DINOLoss(out_dim=4, num_global_crops=2)
    pattern = (
        rf"DINOLoss: .*{re.escape(message)}.*teacher_output shape "
        rf"{re.escape(str(teacher_shape))} and student_output shape "
        rf"{re.escape(str(student_shape))}"
    )
    with pytest.raises(ValueError, match=pattern):
        loss(np.zeros(teacher_shape, "float32"), np.zeros(student_shape, "float32"))
