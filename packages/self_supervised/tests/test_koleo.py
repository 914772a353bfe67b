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
from dl_techniques.losses.self_supervised.koleo_loss import KoLeoLoss

EPSILON = 1e-8


def koleo_reference(embeddings, epsilon=EPSILON):
    """Per-sample KoLeo values in float64, written from the formula."""
    x = np.asarray(embeddings, "float64")
    unit = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), epsilon)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = unit[np.argmax(similarity, axis=-1)]
    distance = np.linalg.norm(unit - neighbours + epsilon, axis=-1)
    return -np.log(distance + epsilon)


def per_sample(embeddings, **kwargs):
    loss = KoLeoLoss(reduction=None, **kwargs)
    batch = np.shape(embeddings)[0]
    return keras.ops.convert_to_numpy(loss(np.zeros((batch,), "float32"), embeddings))


def test_orthogonal_and_opposite_directions_hand_checked():
    # Directions at 0, 90 and 180 degrees: each nearest neighbour is 90
    # degrees away, distance sqrt(2), value -log(sqrt(2)) = -0.34657.
    values = per_sample(np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]], "float32"))
    np.testing.assert_allclose(values, [-0.34657359] * 3, rtol=1e-6)


def test_mean_reduction_is_minus_mean_log_distance():
    embeddings = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]], "float32")
    value = keras.ops.convert_to_numpy(KoLeoLoss()(np.zeros((4,)), embeddings))
    np.testing.assert_allclose(value, koleo_reference(embeddings).mean(), rtol=1e-5)


def test_duplicates_use_the_epsilon_distance():
    # Rows 0 and 1 coincide: d = ||eps * (1, 1)|| = eps sqrt(2), value
    # -log(eps (sqrt(2) + 1)) = 17.5393; row 2 is 90 degrees from both.
    embeddings = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]], "float32")
    values = per_sample(embeddings)
    np.testing.assert_allclose(values[:2], [17.539291] * 2, rtol=1e-5)
    np.testing.assert_allclose(values, koleo_reference(embeddings), rtol=1e-5)


@pytest.mark.parametrize("batch, dim", [(6, 5), (9, 3)])
def test_matches_numpy_reference_on_random_embeddings(batch, dim):
    embeddings = np.random.default_rng(batch * dim).normal(size=(batch, dim)).astype("float32")
    np.testing.assert_allclose(per_sample(embeddings), koleo_reference(embeddings), rtol=1e-5)


def test_gradient_matches_finite_differences_of_the_reference():
    embeddings = np.random.default_rng(3).normal(size=(5, 4))
    expected = central_differences(koleo_reference, embeddings)
    loss = KoLeoLoss(reduction=None)
    gradient = input_gradient(
        lambda values: loss(keras.ops.zeros((5,)), values),
        keras.ops.convert_to_tensor(embeddings.astype("float32")),
    )
    np.testing.assert_allclose(as_numpy(gradient), expected, rtol=1e-3, atol=1e-4)


def test_coincident_and_zero_embeddings_have_finite_gradients():
    embeddings = keras.ops.convert_to_tensor(
        np.array([[1.0, 2.0, 0.5], [1.0, 2.0, 0.5], [0.0, 0.0, 0.0], [-1.0, 0.3, 2.0]], "float32")
    )
    targets = keras.ops.zeros((4,))
    loss = KoLeoLoss(reduction="sum")
    values = KoLeoLoss(reduction=None)(targets, embeddings)
    gradient = input_gradient(lambda inputs: loss(targets, inputs), embeddings)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(values)))
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(gradient)))
    # Row 0's own term alone pushes it away from its duplicate, strongly but
    # finitely (about 1 / (eps sqrt(3)) before the normalisation Jacobian).
    only_first = np.array([1.0, 0.0, 0.0, 0.0], "float32")
    first_gradient = keras.ops.convert_to_numpy(
        input_gradient(lambda inputs: loss(targets, inputs, sample_weight=only_first), embeddings)
    )
    assert np.all(np.isfinite(first_gradient))
    assert np.linalg.norm(first_gradient[0]) > 1e6


def test_half_precision_loss_dtype_keeps_the_epsilon_distance():
    # eps = 1e-8 is 0 in float16; computed in float32 the duplicate pair keeps
    # its finite value 17.54, which float16 represents.
    embeddings = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], "float16")
    values = KoLeoLoss(reduction=None, dtype="float16")(np.zeros((3,)), embeddings)
    assert keras.backend.standardize_dtype(values.dtype) == "float16"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(values).astype("float64"), koleo_reference(embeddings), rtol=1e-3
    )


def test_zero_weight_drops_the_term_but_keeps_the_sample_as_neighbour():
    embeddings = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]], "float32")
    weights = np.array([1.0, 1.0, 1.0, 0.0], "float32")
    value = KoLeoLoss()(np.zeros((4,)), embeddings, sample_weight=weights)
    # Row 3's term is gone, but it stays row 2's nearest neighbour.
    expected = koleo_reference(embeddings)[:3].sum() / 4
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value), expected, rtol=1e-5)


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(
    seed=st.integers(0, 2**16),
    scales=st.lists(st.floats(1e-2, 1e2), min_size=6, max_size=6),
)
def test_invariant_to_positive_rescaling_of_each_embedding(seed, scales):
    embeddings = np.random.default_rng(seed).normal(size=(6, 4)).astype("float32")
    rescaled = (embeddings * np.asarray(scales)[:, None]).astype("float32")
    np.testing.assert_allclose(per_sample(rescaled), per_sample(embeddings), rtol=1e-4, atol=1e-5)
    # A term near zero (nearest distance near 1) keeps float32's absolute error.
    np.testing.assert_allclose(
        per_sample(embeddings), koleo_reference(embeddings), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("epsilon", [0.0, -1e-8, float("nan"), True, "1e-8"])
def test_invalid_epsilon_is_a_value_error(epsilon):
    with pytest.raises(ValueError, match=r"KoLeoLoss.*epsilon"):
        KoLeoLoss(epsilon=epsilon)


@pytest.mark.parametrize("shape", [(1, 4), (4,), (2, 3, 4)])
def test_embeddings_not_batch_by_dim_are_a_value_error_naming_the_shape(shape):
    pattern = r"KoLeoLoss.*y_pred.*" + str(shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=pattern):
        KoLeoLoss()(np.zeros(shape[:1]), np.ones(shape, "float32"))
