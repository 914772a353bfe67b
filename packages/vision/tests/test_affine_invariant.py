"""AffineInvariantLoss against a numpy reference written from the MiDaS formula."""

import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    assert_gradient_matches_central_differences,
    hypothesis_examples,
)
from dl_techniques.losses.vision.affine_invariant_loss import AffineInvariantLoss


def reference_loss(depth, prediction, mask=None, epsilon=1e-6, trim=0.0):
    """Per-image loss in float64: median/mean-absolute-deviation normalisation, L1."""
    depth = np.asarray(depth, dtype=np.float64)
    prediction = np.asarray(prediction, dtype=np.float64).reshape(depth.shape)
    if mask is None:
        mask = np.ones(depth.shape, dtype=bool)
    values = []
    for image_depth, image_prediction, image_mask in zip(depth, prediction, mask, strict=True):
        valid = np.isfinite(image_depth) & (np.asarray(image_mask) > 0.5)
        if not valid.any():
            values.append(0.0)
            continue

        def normalise(values):
            centre = np.median(values)
            scale = max(np.mean(np.abs(values - centre)), epsilon)
            return (values - centre) / scale

        residual = np.abs(normalise(image_prediction[valid]) - normalise(image_depth[valid]))
        kept = residual.size - math.floor(trim * residual.size)
        values.append(np.sort(residual)[:kept].mean())
    return np.array(values)


def per_image(loss, y_true, y_pred):
    loss.reduction = None
    return keras.ops.convert_to_numpy(loss(y_true, y_pred))


def test_odd_and_even_pixel_counts_match_the_hand_computed_medians():
    depth = np.array([[[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]])
    prediction = np.array([[[0.0, 1.0], [5.0, 100.0]], [[0.0, 0.0], [1.0, 3.0]]])
    mask = np.array([[[True, True], [True, False]], [[True, True], [True, True]]])
    # Image 0, three valid pixels: depth [1, 2, 3] -> median 2, scale 2/3,
    # normalised [-1.5, 0, 1.5]; prediction [0, 1, 5] -> median 1, scale 5/3,
    # normalised [-0.6, 0, 2.4]; residuals [0.9, 0, 0.9], mean 0.6.
    # Image 1, four pixels: depth median (2 + 3) / 2 = 2.5, scale 1, normalised
    # [-1.5, -0.5, 0.5, 1.5]; prediction [0, 0, 1, 3] -> median 0.5, scale 1,
    # normalised [-0.5, -0.5, 0.5, 2.5]; residuals [1, 0, 0, 1], mean 0.5.
    values = per_image(AffineInvariantLoss(), {"depth": depth, "mask": mask}, prediction)

    np.testing.assert_allclose(values, [0.6, 0.5], rtol=1e-6)


def test_trim_drops_the_largest_residual_fraction():
    depth = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    prediction = np.array([[[1.0, 2.0, 3.0, 4.0, 10.0]]])
    # depth: median 3, scale 6/5, normalised [-5/3, -5/6, 0, 5/6, 5/3];
    # prediction: median 3, scale 11/5, normalised [-10/11, -5/11, 0, 5/11, 35/11];
    # residuals [50/66, 25/66, 0, 25/66, 100/66]: mean 40/66; trim 0.2 drops
    # floor(0.2 * 5) = 1 residual, the largest, leaving (100/66) / 4 = 25/66.
    untrimmed = per_image(AffineInvariantLoss(), depth, prediction)
    trimmed = per_image(AffineInvariantLoss(trim=0.2), depth, prediction)

    np.testing.assert_allclose(untrimmed, [40 / 66], rtol=1e-6)
    np.testing.assert_allclose(trimmed, [25 / 66], rtol=1e-6)


def test_non_finite_targets_are_left_out_like_masked_pixels():
    depth = np.array([[[1.0, 2.0], [3.0, np.nan]], [[np.inf, 2.0], [3.0, 4.0]]])
    prediction = np.array([[[0.0, 1.0], [5.0, 100.0]], [[-50.0, 0.0], [1.0, 3.0]]])
    # Image 0 is the three-pixel case of the hand computation (0.6). Image 1
    # keeps depth [2, 3, 4] (median 3, scale 2/3, normalised [-1.5, 0, 1.5])
    # and prediction [0, 1, 3] (median 1, scale 1, normalised [-1, 0, 2]):
    # residuals [0.5, 0, 0.5], mean 1/3.
    values = per_image(AffineInvariantLoss(), depth, prediction)

    np.testing.assert_allclose(values, [0.6, 1 / 3], rtol=1e-6)


@pytest.mark.parametrize(
    ("shape", "trim"),
    [((3, 6, 5), 0.0), ((3, 5, 5, 1), 0.2), ((2, 4, 4), 0.35)],
    ids=["even_pixels", "odd_pixels_channel_axis_trimmed", "even_pixels_trimmed"],
)
def test_random_masked_images_match_the_reference(shape, trim):
    rng = np.random.default_rng(sum(shape) + int(trim * 100))
    depth = rng.uniform(0.5, 20.0, size=shape[:3]).astype("float32")
    prediction = rng.normal(size=shape).astype("float32")
    mask = rng.random(shape[:3]) > 0.3
    depth[0, 0, :2] = np.nan

    values = per_image(
        AffineInvariantLoss(epsilon=1e-3, trim=trim), {"depth": depth, "mask": mask}, prediction
    )

    expected = reference_loss(depth, prediction, mask, epsilon=1e-3, trim=trim)
    np.testing.assert_allclose(values, expected, rtol=2e-5, atol=1e-6)


def test_an_image_without_valid_pixels_contributes_zero_with_zero_gradient():
    rng = np.random.default_rng(3)
    depth = rng.uniform(1.0, 5.0, size=(2, 3, 3)).astype("float32")
    prediction = keras.ops.convert_to_tensor(rng.normal(size=(2, 3, 3)).astype("float32"))
    mask = np.ones((2, 3, 3), dtype="float32")
    mask[1] = 0.0
    loss = AffineInvariantLoss(trim=0.2, reduction=None)

    values = keras.ops.convert_to_numpy(loss({"depth": depth, "mask": mask}, prediction))
    gradient = keras.ops.convert_to_numpy(
        input_gradient(lambda values: loss({"depth": depth, "mask": mask}, values), prediction)
    )

    assert values[1] == 0.0
    assert values[0] > 0.0
    np.testing.assert_array_equal(gradient[1], 0.0)
    assert np.all(np.isfinite(gradient))


def test_gradient_matches_central_differences_of_the_reference():
    rng = np.random.default_rng(11)
    depth = rng.uniform(1.0, 6.0, size=(2, 3, 4))
    prediction = rng.normal(size=(2, 3, 4))
    mask = np.ones((2, 3, 4))
    mask[1, 0, :2] = 0.0
    loss = AffineInvariantLoss(trim=0.25, reduction="sum")
    y_true = {"depth": depth.astype("float32"), "mask": mask.astype("float32")}

    # float32 forward on every backend against float64 differences.
    assert_gradient_matches_central_differences(
        lambda values, dtype: loss(y_true, values),
        lambda values: reference_loss(depth, values, mask, trim=0.25),
        prediction,
        rtol=1e-3,
        atol=2e-4,
        dtype="float32",
    )


def test_ties_and_constant_images_give_finite_values_and_gradients():
    depth = np.array(
        [[[2.0, 2.0], [2.0, 2.0]], [[1.0, 1.0], [3.0, 3.0]], [[0.0, 1.0], [1.0, 1.0]]],
        dtype="float32",
    )
    prediction = keras.ops.convert_to_tensor(
        np.array(
            [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 5.0], [5.0, 5.0]], [[1.0, 1.0], [0.0, 1.0]]],
            dtype="float32",
        )
    )
    loss = AffineInvariantLoss(trim=0.25, reduction=None)

    values = keras.ops.convert_to_numpy(loss(depth, prediction))
    gradient = keras.ops.convert_to_numpy(
        input_gradient(lambda values: loss(depth, values), prediction)
    )

    assert np.all(np.isfinite(values))
    assert np.all(np.isfinite(gradient))
    # A constant target normalises to zeros, so the residuals are |d_hat| of the
    # prediction [-1.5, -0.5, 0.5, 1.5]; trim 0.25 drops one 1.5: (0.5 + 0.5 + 1.5) / 3.
    np.testing.assert_allclose(values[0], 2.5 / 3, rtol=1e-6)


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(
    seed=st.integers(0, 2**16),
    scale=st.floats(0.05, 20.0),
    shift=st.floats(-50.0, 50.0),
    trim=st.sampled_from([0.0, 0.2]),
)
def test_value_is_invariant_to_positive_scale_and_shift_of_the_prediction(seed, scale, shift, trim):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1.0, 10.0, size=(2, 4, 5)).astype("float32")
    prediction = rng.normal(size=(2, 4, 5)).astype("float32")
    mask = rng.random((2, 4, 5)) > 0.25
    loss = AffineInvariantLoss(trim=trim)

    original = per_image(loss, {"depth": depth, "mask": mask}, prediction)
    transformed = per_image(
        loss, {"depth": depth, "mask": mask}, (scale * prediction + shift).astype("float32")
    )

    np.testing.assert_allclose(transformed, original, rtol=1e-3, atol=1e-4)


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(seed=st.integers(0, 2**16))
def test_value_is_symmetric_in_prediction_and_target_without_invalid_pixels(seed):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1.0, 10.0, size=(2, 3, 5)).astype("float32")
    prediction = rng.normal(size=(2, 3, 5)).astype("float32")

    forward = per_image(AffineInvariantLoss(), depth, prediction)
    swapped = per_image(AffineInvariantLoss(), prediction, depth)

    np.testing.assert_allclose(forward, swapped, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [{"epsilon": 0.0}, {"epsilon": -1e-3}, {"epsilon": math.inf}, {"trim": 1.0}, {"trim": -0.2}],
)
def test_invalid_hyperparameters_raise_naming_the_loss_and_argument(kwargs):
    (argument,) = kwargs
    with pytest.raises(ValueError, match=f"AffineInvariantLoss: `{argument}`"):
        AffineInvariantLoss(**kwargs)


def test_mismatched_spatial_shapes_raise_naming_both_shapes():
    expected = r"AffineInvariantLoss: `y_true`.*\(2, 4, 4\).*\(2, 4, 5\)"
    with pytest.raises(ValueError, match=expected):
        AffineInvariantLoss()(np.ones((2, 4, 4)), np.ones((2, 4, 5)))


def test_mask_of_another_shape_raises():
    depth = np.ones((2, 4, 4), dtype="float32")
    with pytest.raises(ValueError, match=r'`y_true\["mask"\]`.*\(2, 4, 3\).*\(2, 4, 4\)'):
        AffineInvariantLoss()({"depth": depth, "mask": np.ones((2, 4, 3))}, depth)


def test_prediction_without_spatial_axes_raises():
    expected = r"AffineInvariantLoss: `y_pred` must have shape.*\(2, 8\)"
    with pytest.raises(ValueError, match=expected):
        AffineInvariantLoss()(np.ones((2, 8)), np.ones((2, 8)))


def test_dict_target_with_other_keys_raises():
    depth = np.ones((1, 2, 2), dtype="float32")
    expected = r"AffineInvariantLoss: a dict `y_true`.*\['depth', 'valid'\]"
    with pytest.raises(ValueError, match=expected):
        AffineInvariantLoss()({"depth": depth, "valid": depth}, depth)


@pytest.mark.parametrize("trim", [0.0, 0.25])
def test_a_nan_prediction_gives_nan_for_its_image_only(trim):
    # With trimming the NaN residual must not be dropped as the "largest" one.
    rng = np.random.default_rng(40)
    depth = rng.uniform(1.0, 5.0, size=(2, 4, 4)).astype("float32")
    prediction = rng.normal(size=(2, 4, 4)).astype("float32")
    prediction[0, 3, 3] = np.nan
    values = per_image(AffineInvariantLoss(trim=trim), depth, prediction)
    assert np.isnan(values[0])
    np.testing.assert_allclose(
        values[1], reference_loss(depth[1:], prediction[1:], trim=trim)[0], rtol=1e-5
    )


def test_a_nan_prediction_on_a_masked_pixel_is_left_out_with_the_pixel():
    rng = np.random.default_rng(41)
    depth = rng.uniform(1.0, 5.0, size=(1, 3, 3)).astype("float32")
    prediction = rng.normal(size=(1, 3, 3)).astype("float32")
    mask = np.ones((1, 3, 3), "float32")
    mask[0, 0, 0] = 0.0
    expected = reference_loss(depth, prediction, mask)
    prediction[0, 0, 0] = np.nan
    values = per_image(AffineInvariantLoss(), {"depth": depth, "mask": mask}, prediction)
    np.testing.assert_allclose(values, expected, rtol=1e-5)


def test_mask_values_other_than_0_and_1_raise_on_the_first_eager_call(monkeypatch):
    monkeypatch.delenv("DL_LOSSES_VALIDATE", raising=False)
    depth = np.ones((2, 3, 3), "float32")
    soft = np.ones((2, 3, 3), "float32")
    soft[1, 2, 2] = 0.7
    expected = r'AffineInvariantLoss: `y_true\["mask"\]` must hold flags equal to 0 or 1; 1 of 18'
    with pytest.raises(ValueError, match=expected):
        AffineInvariantLoss()({"depth": depth, "mask": soft}, depth)
    loss = AffineInvariantLoss()
    loss({"depth": depth, "mask": np.ones((2, 3, 3), bool)}, depth)
    loss({"depth": depth, "mask": soft}, depth)  # checked already: not read again
