"""Bad input gets a clear error, NaN propagates, and a non-finite batch never reaches a centre.

Value checks follow core's rule: they read values on the first eager call of
an instance only (every eager call with ``DL_LOSSES_VALIDATE=always``).
"""

import math

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.testing.numeric import as_numpy
from dl_techniques.losses.self_supervised.clustering_loss import ClusteringLoss
from dl_techniques.losses.self_supervised.dino_loss import DINOLoss
from dl_techniques.losses.self_supervised.feature_alignment_loss import FeatureAlignmentLoss
from dl_techniques.losses.self_supervised.ibot_patch_loss import iBOTPatchLoss
from dl_techniques.losses.self_supervised.siglip_contrastive_loss import SigLIPContrastiveLoss

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _first_call_rule(monkeypatch):
    monkeypatch.delenv(validation.ENVIRONMENT_VARIABLE, raising=False)


# iBOT masks -----------------------------------------------------------------

# K = 2 and a uniform teacher: a patch whose student logits are [0, 0.1 ln 3]
# has P_s = [1/4, 3/4] and the term 0.5 ln(16/3); the other patch, [0, 0],
# has the term ln 2.
IBOT_TEACHER = np.zeros((1, 2, 2), "float32")
IBOT_STUDENT = np.array([[[0.0, 0.1 * math.log(3.0)], [0.0, 0.0]]], "float32")


@pytest.mark.parametrize("bad", [2.0, -1.0, 0.5])
@pytest.mark.parametrize("form", ["argument", "dict"])
def test_ibot_rejects_mask_values_other_than_0_and_1(bad, form):
    mask = np.array([[1.0, bad]], "float32")
    loss = iBOTPatchLoss(patch_out_dim=2)
    pattern = r"iBOTPatchLoss: `mask` must hold mask values equal to 0 or 1; 1 of 2 entries"
    with pytest.raises(ValueError, match=pattern):
        if form == "argument":
            loss(IBOT_TEACHER, IBOT_STUDENT, mask)
        else:
            loss({"teacher_patches": IBOT_TEACHER, "mask": mask}, IBOT_STUDENT)


@pytest.mark.parametrize("dtype", ["bool", "float32", "int32"])
def test_ibot_accepts_bool_and_0_1_masks(dtype):
    mask = np.array([[1, 0]]).astype(dtype)
    value = iBOTPatchLoss(patch_out_dim=2)(IBOT_TEACHER, IBOT_STUDENT, mask)
    np.testing.assert_allclose(float(value), 0.5 * math.log(16.0 / 3.0), rtol=1e-6)


def test_ibot_mask_values_are_read_on_the_first_eager_call_only(monkeypatch):
    loss = iBOTPatchLoss(patch_out_dim=2)
    loss(IBOT_TEACHER, IBOT_STUDENT, np.array([[1.0, 0.0]], "float32"))
    # Checked already: not read again, and a nonzero entry counts as masked,
    # so both patches count: (0.5 ln(16/3) + ln 2) / 2.
    value = loss(IBOT_TEACHER, IBOT_STUDENT, np.array([[1.0, 2.0]], "float32"))
    np.testing.assert_allclose(
        float(value), 0.5 * (0.5 * math.log(16.0 / 3.0) + math.log(2.0)), rtol=1e-6
    )
    monkeypatch.setenv(validation.ENVIRONMENT_VARIABLE, "always")
    with pytest.raises(ValueError, match="iBOTPatchLoss: `mask`"):
        loss(IBOT_TEACHER, IBOT_STUDENT, np.array([[1.0, 2.0]], "float32"))


def test_ibot_update_center_rejects_a_bad_mask_and_keeps_the_centre():
    loss = iBOTPatchLoss(patch_out_dim=2)
    teacher = np.ones((1, 2, 2), "float32")
    with pytest.raises(ValueError, match=r"iBOTPatchLoss: `mask` must hold mask values"):
        loss.update_center(teacher, np.array([[0.5, 1.0]], "float32"))
    np.testing.assert_array_equal(as_numpy(loss.center), np.zeros((1, 2)))


# ClusteringLoss probabilities -----------------------------------------------


@pytest.mark.parametrize("bad", [1.5, -0.25])
@pytest.mark.parametrize("weighted", [False, True])
def test_clustering_rejects_assignments_outside_0_1(bad, weighted):
    assignments = np.array([[0.5, 0.5], [bad, 1.0 - bad]], "float32")
    weights = np.ones((2,), "float32") if weighted else None
    pattern = (
        r"ClusteringLoss: `y_pred` must lie in \[0\.0, 1\.0\]; 2 of 4 entries "
        r"\(shape \(2, 2\)\) are outside"
    )
    with pytest.raises(ValueError, match=pattern):
        ClusteringLoss()(np.zeros((2,)), assignments, sample_weight=weights)


def test_clustering_nan_assignment_gives_nan_not_an_error():
    assignments = np.array([[0.5, 0.5], [np.nan, 0.5]], "float32")
    value = ClusteringLoss()(np.zeros((2,)), assignments)
    assert math.isnan(float(value))


# FeatureAlignmentLoss NaN ----------------------------------------------------


def test_feature_alignment_nan_sample_is_nan_not_zero():
    target = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], "float32")
    # Row 0: aligned (s = 1 > margin, term 0); row 1: NaN; row 2: s = 0, term 1.
    predicted = np.array([[2.0, 0.0], [np.nan, 1.0], [0.0, 3.0]], "float32")
    values = as_numpy(FeatureAlignmentLoss(reduction=None)(target, predicted))
    assert values[0] == 0.0 and math.isnan(values[1]) and values[2] == pytest.approx(1.0)
    assert math.isnan(float(FeatureAlignmentLoss()(target, predicted)))


def test_feature_alignment_nan_target_or_dense_position_is_nan():
    target = np.ones((2, 2, 2, 3), "float32")
    predicted = np.ones((2, 2, 2, 3), "float32")  # every position aligned: term 0
    predicted[1, 0, 1, 2] = np.nan
    values = as_numpy(FeatureAlignmentLoss(reduction=None)(target, predicted))
    assert values[0] == 0.0 and math.isnan(values[1])
    target[0, 1, 1, 0] = np.nan
    values = as_numpy(FeatureAlignmentLoss(reduction=None)(target, np.ones_like(target)))
    assert math.isnan(values[0]) and values[1] == 0.0


# Teacher centre with a non-finite batch --------------------------------------

MOMENTUM = 0.5


def _losses():
    """(name, loss, update(teacher) -> None, teacher rows of a batch of ones)."""
    dino = DINOLoss(out_dim=3, center_momentum=MOMENTUM)
    ibot = iBOTPatchLoss(patch_out_dim=3, center_momentum=MOMENTUM)
    # A tensor, not an array: torch.compile cannot trace a captured ndarray.
    ibot_mask = keras.ops.ones((2, 2), dtype="bool")
    return {
        "dino": (dino, dino.update_center, (4, 3), "DINOLoss: `teacher_output`"),
        "ibot": (
            ibot,
            lambda teacher: ibot.update_center(teacher, ibot_mask),
            (2, 2, 3),
            "iBOTPatchLoss: `teacher_patches`",
        ),
    }


def _poisoned(shape, value=np.nan):
    teacher = np.ones(shape, "float32")
    teacher.reshape(-1)[1] = value
    return teacher


@pytest.mark.parametrize("name", ["dino", "ibot"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_teacher_raises_on_the_first_eager_update_and_keeps_the_centre(name, value):
    loss, update, shape, owner = _losses()[name]
    with pytest.raises(ValueError, match=rf"{owner} must be finite; 1 of .* left unchanged"):
        update(_poisoned(shape, value))
    np.testing.assert_array_equal(as_numpy(loss.center), np.zeros((1, 3)))


@pytest.mark.parametrize("name", ["dino", "ibot"])
def test_later_eager_update_skips_a_non_finite_batch(name, monkeypatch):
    loss, update, shape, owner = _losses()[name]
    update(np.full(shape, 2.0, "float32"))  # c = 0.5 * 2
    update(_poisoned(shape))  # checked already: no read, no raise, centre kept
    np.testing.assert_allclose(as_numpy(loss.center), np.full((1, 3), 1.0))
    update(np.full(shape, 3.0, "float32"))  # c = 0.5 * 1 + 0.5 * 3
    np.testing.assert_allclose(as_numpy(loss.center), np.full((1, 3), 2.0))
    monkeypatch.setenv(validation.ENVIRONMENT_VARIABLE, "always")
    with pytest.raises(ValueError, match=owner):
        update(_poisoned(shape, -np.inf))
    np.testing.assert_allclose(as_numpy(loss.center), np.full((1, 3), 2.0))


def _compiled_update(loss, update):
    """Returns ``step(teacher)``, the update compiled by the backend's own compiler."""
    if BACKEND == "jax":
        import jax

        state = loss.state

        def pure(center, temperature, teacher):
            mapping = [(state.center, center), (state.teacher_temp, temperature)]
            with keras.StatelessScope(state_mapping=mapping) as scope:
                update(teacher)
            return scope.get_current_value(state.center)

        jitted = jax.jit(pure)

        def step(teacher):
            state.center.assign(jitted(state.center.value, state.teacher_temp.value, teacher))

        return step
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(update)
    import torch

    compiled = torch.compile(update, backend="eager", fullgraph=True)
    return lambda teacher: compiled(torch.as_tensor(teacher))


@pytest.mark.parametrize("name", ["dino", "ibot"])
def test_compiled_update_keeps_the_centre_on_a_non_finite_batch(name):
    loss, update, shape, _ = _losses()[name]
    step = _compiled_update(loss, update)
    step(_poisoned(shape))  # first call, but compiled: nothing to read, nothing raised
    np.testing.assert_array_equal(as_numpy(loss.center), np.zeros((1, 3)))
    step(np.full(shape, 4.0, "float32"))
    np.testing.assert_allclose(as_numpy(loss.center), np.full((1, 3), 2.0))
    step(_poisoned(shape, np.inf))
    np.testing.assert_allclose(as_numpy(loss.center), np.full((1, 3), 2.0))


# SigLIP: temperature=None means final logits ---------------------------------


@pytest.mark.parametrize("kwargs", [{"temperature": None}, {"temperature": None, "bias": -10.0}])
def test_siglip_bias_with_final_logits_raises_at_construction(kwargs):
    pattern = (
        r"SigLIPContrastiveLoss: `bias` must be None when `temperature` is None.*"
        r"got temperature=None and bias=-10\.0"
    )
    with pytest.raises(ValueError, match=pattern):
        SigLIPContrastiveLoss(**kwargs)


def test_siglip_fixed_bias_on_scaled_logits_uses_temperature_one():
    logits = np.array([[2.0, -1.0], [0.5, 3.0]], "float32")
    # sum over the 4 pairs of softplus(-z (L + b)), z = +1 on the diagonal, / B = 2.
    shifted = logits.astype("float64") - 10.0
    signs = 2.0 * np.eye(2) - 1.0
    expected = np.log1p(np.exp(-signs * shifted)).sum() / 2.0
    value = SigLIPContrastiveLoss(temperature=1.0, bias=-10.0)(None, logits)
    np.testing.assert_allclose(float(value), expected, rtol=1e-6)
    final = SigLIPContrastiveLoss(temperature=None, bias=None)(None, logits)
    expected_final = np.log1p(np.exp(-signs * logits.astype("float64"))).sum() / 2.0
    np.testing.assert_allclose(float(final), expected_final, rtol=1e-6)
