import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    hypothesis_examples,
)
from dl_techniques.losses.self_supervised.feature_alignment_loss import FeatureAlignmentLoss


def alignment_reference(target, prediction, margin=0.85):
    """Per-sample loss in float64: mean over positions of 1 - cos where cos < margin."""
    target, prediction = np.asarray(target, "float64"), np.asarray(prediction, "float64")
    norms = np.linalg.norm(target, axis=-1) * np.linalg.norm(prediction, axis=-1)
    cosine = np.sum(target * prediction, axis=-1) / np.where(norms > 0, norms, 1.0)
    term = np.where(cosine < margin, 1.0 - cosine, 0.0)
    return term.reshape(term.shape[0], -1).mean(axis=1)


def per_sample(target, prediction, **kwargs):
    return keras.ops.convert_to_numpy(
        FeatureAlignmentLoss(reduction=None, **kwargs)(target, prediction)
    )


def test_hand_checked_vectors_below_and_above_the_margin():
    # Row 1: 90 degrees apart, s = 0, term 1. Row 2: s = 0.9 > 0.85, term 0.
    # Row 3: s = 0.6 < 0.85, term 0.4.
    target = np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0]], "float32")
    prediction = np.array([[0.0, 2.0], [0.9, 0.43588989], [0.6, 0.8]], "float32")
    np.testing.assert_allclose(per_sample(target, prediction), [1.0, 0.0, 0.4], atol=1e-6)


def test_dense_maps_average_over_every_position():
    # Two positions counted (terms 1 and 2), two above the margin: (1 + 2) / 4.
    target = np.ones((1, 2, 2, 3), "float32")
    prediction = np.ones((1, 2, 2, 3), "float32")
    prediction[0, 0, 0] = [1.0, -1.0, 0.0]
    prediction[0, 1, 1] = [-1.0, -1.0, -1.0]
    np.testing.assert_allclose(per_sample(target, prediction), [0.75], rtol=1e-6)


@pytest.mark.parametrize("shape, margin", [((5, 8), 0.85), ((3, 4, 5, 6), 0.3), ((2, 7, 4), 1.0)])
def test_matches_numpy_reference(shape, margin):
    rng = np.random.default_rng(len(shape))
    target = rng.normal(size=shape).astype("float32")
    prediction = (target + rng.normal(scale=0.8, size=shape)).astype("float32")
    np.testing.assert_allclose(
        per_sample(target, prediction, margin=margin),
        alignment_reference(target, prediction, margin),
        rtol=1e-5,
        atol=1e-6,
    )


def test_margin_one_counts_every_position():
    rng = np.random.default_rng(11)
    target, prediction = rng.normal(size=(2, 3, 3, 4)), rng.normal(size=(2, 3, 3, 4))
    cosine = np.sum(target * prediction, -1) / (
        np.linalg.norm(target, axis=-1) * np.linalg.norm(prediction, axis=-1)
    )
    np.testing.assert_allclose(
        per_sample(target.astype("float32"), prediction.astype("float32"), margin=1.0),
        (1.0 - cosine).mean(axis=(1, 2)),
        rtol=1e-5,
    )


def test_gradient_matches_finite_differences_of_the_reference():
    rng = np.random.default_rng(5)
    target, prediction = rng.normal(size=(3, 2, 4)), rng.normal(size=(3, 2, 4))
    expected = central_differences(
        lambda values: alignment_reference(target, values, 0.5), prediction
    )
    loss = FeatureAlignmentLoss(margin=0.5, reduction=None)
    target_tensor = keras.ops.convert_to_tensor(target.astype("float32"))
    gradient = input_gradient(
        lambda values: loss(target_tensor, values),
        keras.ops.convert_to_tensor(prediction.astype("float32")),
    )
    np.testing.assert_allclose(as_numpy(gradient), expected, rtol=1e-3, atol=1e-5)


def test_zero_features_count_as_orthogonal_with_finite_gradient():
    target = keras.ops.convert_to_tensor(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], "float32"))
    prediction = keras.ops.convert_to_tensor(
        np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], "float32")
    )
    loss = FeatureAlignmentLoss(reduction=None)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss(target, prediction)), [1.0, 1.0])
    gradient = input_gradient(lambda values: loss(target, values), prediction)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(gradient)))


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(
    seed=st.integers(0, 2**16),
    margin=st.floats(-0.9, 1.0),
    scale=st.floats(1e-2, 1e2),
)
def test_bounded_symmetric_and_invariant_to_positive_rescaling(seed, margin, scale):
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(3, 2, 2, 4)).astype("float32")
    prediction = rng.normal(size=(3, 2, 2, 4)).astype("float32")
    value = per_sample(target, prediction, margin=margin)
    assert np.all((value >= 0.0) & (value <= 2.0))
    np.testing.assert_allclose(
        value, alignment_reference(target, prediction, margin), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        per_sample(prediction, target, margin=margin), value, rtol=1e-5, atol=1e-6
    )
    rescaled = (prediction * scale).astype("float32")
    np.testing.assert_allclose(
        per_sample(target, rescaled, margin=margin), value, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(per_sample(target, target * scale, margin=margin), 0.0, atol=1e-6)


@pytest.mark.parametrize("margin", [-1.0, 1.5, float("inf"), True, "0.85"])
def test_invalid_margin_is_a_value_error(margin):
    with pytest.raises(ValueError, match=r"FeatureAlignmentLoss.*margin"):
        FeatureAlignmentLoss(margin=margin)


def test_mismatched_shapes_are_a_value_error_naming_both():
    with pytest.raises(ValueError, match=r"FeatureAlignmentLoss.*\(2, 4, 4, 8\).*\(2, 4, 4, 6\)"):
        FeatureAlignmentLoss()(np.ones((2, 4, 4, 8)), np.ones((2, 4, 4, 6)))


def test_rank_one_features_are_a_value_error():
    with pytest.raises(ValueError, match=r"FeatureAlignmentLoss.*y_pred.*\(5,\)"):
        FeatureAlignmentLoss()(np.ones((5,)), np.ones((5,)))
