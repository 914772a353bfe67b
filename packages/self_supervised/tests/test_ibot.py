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
from dl_techniques.losses.self_supervised.ibot_patch_loss import iBOTPatchLoss


def ibot_reference(teacher, student, mask, center=0.0, teacher_temp=0.04, student_temp=0.1):
    """Per-image iBOT values in float64, looping over images and patches.

    Image b: the mean over its masked patches n of -sum_k P_t[b, n, k]
    log P_s[b, n, k]; 0 when no patch of b is masked.
    """
    teacher_probs = softmax((np.asarray(teacher, "float64") - center) / teacher_temp)
    student_log_probs = np.log(softmax(np.asarray(student, "float64") / student_temp))
    per_image = np.zeros(len(teacher))
    for b in range(len(teacher)):
        terms = [
            -np.sum(teacher_probs[b, n] * student_log_probs[b, n])
            for n in range(teacher.shape[1])
            if mask[b, n]
        ]
        per_image[b] = np.mean(terms) if terms else 0.0
    return per_image


def random_patches(seed, images=3, patches=4, prototypes=5):
    rng = np.random.default_rng(seed)
    teacher = rng.normal(size=(images, patches, prototypes)).astype("float32")
    student = rng.normal(size=(images, patches, prototypes)).astype("float32")
    return teacher, student


MASK = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]], bool)


def test_image_without_masked_patch_contributes_zero_but_counts():
    # K = 2, uniform teacher. Image 0 masks patch 0 only, whose student is
    # [0, 0.1 ln 3]: P_s = [1/4, 3/4], term 0.5 ln(16/3). Patch 1 is unmasked
    # and must not count. Image 1 masks nothing: 0. Mean over B = 2:
    # 0.25 ln(16/3) = 0.418494.
    teacher = np.zeros((2, 2, 2), "float32")
    student = np.array([[[0.0, 0.1 * math.log(3.0)], [9.0, -9.0]], [[9.0, -9.0]] * 2], "float32")
    mask = np.array([[True, False], [False, False]])
    value = iBOTPatchLoss(patch_out_dim=2)(teacher, student, mask)
    np.testing.assert_allclose(float(value), 0.25 * math.log(16.0 / 3.0), rtol=1e-6)


def test_random_value_matches_the_per_image_reference():
    teacher, student = random_patches(seed=1)
    loss = iBOTPatchLoss(patch_out_dim=5, student_temp=0.2, teacher_temp=0.07, reduction=None)
    np.testing.assert_allclose(
        as_numpy(loss(teacher, student, MASK)),
        ibot_reference(teacher, student, MASK, teacher_temp=0.07, student_temp=0.2),
        rtol=1e-5,
    )


def test_dict_targets_equal_the_mask_argument_and_take_sample_weight_third():
    teacher, student = random_patches(seed=2)
    loss = iBOTPatchLoss(patch_out_dim=5)
    weights = np.array([2.0, 1.0, 0.5], "float32")
    targets = {"teacher_patches": teacher, "mask": MASK.astype("float32")}
    expected = np.sum(weights * ibot_reference(teacher, student, MASK)) / 3
    np.testing.assert_allclose(float(loss(targets, student, weights)), expected, rtol=1e-5)
    np.testing.assert_allclose(
        float(loss(teacher, student, MASK, sample_weight=weights)), expected, rtol=1e-5
    )


def test_update_center_averages_masked_teacher_tokens_only():
    teacher, student = random_patches(seed=3)
    loss = iBOTPatchLoss(patch_out_dim=5, center_momentum=0.7)
    loss.update_center(teacher, MASK)
    expected = 0.3 * teacher.astype("float64")[MASK].mean(axis=0)
    np.testing.assert_allclose(as_numpy(loss.center), expected[None], rtol=1e-5, atol=1e-7)

    loss.update_center(teacher, np.zeros_like(MASK))  # nothing masked: centre kept
    np.testing.assert_allclose(as_numpy(loss.center), expected[None], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        float(loss(teacher, student, MASK)),
        ibot_reference(teacher, student, MASK, center=expected).mean(),
        rtol=1e-5,
    )


def test_gradient_matches_central_differences_with_an_empty_image():
    dtype = gradient_dtype()
    teacher, student = random_patches(seed=4, patches=4, prototypes=3)
    loss = iBOTPatchLoss(patch_out_dim=3, teacher_temp=0.2, dtype=dtype)
    teacher_tensor = keras.ops.convert_to_tensor(teacher, dtype=dtype)
    gradient = input_gradient(
        lambda values: loss(teacher_tensor, values, MASK),
        keras.ops.convert_to_tensor(student, dtype=dtype),
    )
    expected = central_differences(
        lambda values: ibot_reference(teacher, values, MASK, teacher_temp=0.2).mean(), student
    )
    tolerance = {"rtol": 1e-6, "atol": 1e-8} if dtype == "float64" else {"rtol": 2e-3, "atol": 2e-4}
    np.testing.assert_allclose(as_numpy(gradient), expected, **tolerance)
    np.testing.assert_array_equal(as_numpy(gradient)[1], np.zeros((4, 3)))


@settings(max_examples=hypothesis_examples(15), deadline=None)
@given(mask=hnp.arrays(bool, (3, 4), elements=st.booleans()))
def test_unmasked_student_patches_do_not_change_the_value(mask):
    teacher, student = random_patches(seed=5)
    changed = np.where(mask[..., None], student, student * 7.0 + 3.0).astype("float32")
    loss = iBOTPatchLoss(patch_out_dim=5)
    np.testing.assert_allclose(
        float(loss(teacher, changed, mask)), float(loss(teacher, student, mask)), rtol=1e-5
    )


@pytest.mark.parametrize(
    ("teacher_shape", "student_shape", "mask_shape", "message"),
    [
        ((2, 4, 5), (2, 4, 3), (2, 4), "patch_out_dim=5"),
        ((2, 4, 5), (2, 3, 5), (2, 4), "agree on (B, N)"),
        ((2, 4, 5), (2, 4, 5), (3, 4), "agree on (B, N)"),
        ((2, 4, 5), (2, 4, 5), (2, 4, 1), "mask (B, N)"),
    ],
)
def test_incompatible_shapes_raise_naming_the_loss_and_shapes(
    teacher_shape, student_shape, mask_shape, message
):
    loss = iBOTPatchLoss(patch_out_dim=5)
    pattern = (
        rf"iBOTPatchLoss: .*{re.escape(message)}.*teacher_patches shape "
        rf"{re.escape(str(teacher_shape))}, student_patches shape "
        rf"{re.escape(str(student_shape))} and mask shape {re.escape(str(mask_shape))}"
    )
    with pytest.raises(ValueError, match=pattern):
        loss(
            np.zeros(teacher_shape, "float32"),
            np.zeros(student_shape, "float32"),
            np.ones(mask_shape, bool),
        )


def test_missing_mask_raises():
    teacher, student = random_patches(seed=6)
    with pytest.raises(ValueError, match=r"iBOTPatchLoss: the mask is required"):
        iBOTPatchLoss(patch_out_dim=5)(teacher, student)
