import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    assert_gradient_matches_central_differences,
    backend_gradient,
    hypothesis_examples,
)
from dl_techniques.losses.metric_learning import TripletLoss

MINING = ("semi_hard", "batch_hard", "batch_all")
DISTANCES = ("euclidean", "squared_euclidean", "cosine")
LABELS = np.array([0, 0, 1, 1])
LINE = np.array([[0.0], [1.0], [1.5], [3.0]], dtype="float32")


def random_batch(seed, batch=8, dim=3):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=batch)
    return labels, rng.normal(size=(batch, dim)).astype("float32")


@pytest.mark.parametrize(
    ("mining", "expected"),
    [
        # d(0,1)=1: negatives 1.5, 3 -> 1.5; d(1,0)=1: farther 2 -> 0;
        # d(2,3)=1.5: none farther, easiest 1.5 -> 1; d(3,2)=1.5: farther 2 -> 0.5.
        ("semi_hard", (0.5 + 0.0 + 1.0 + 0.5) / 4),
        # Per anchor: 1 - 1.5 + 1, 1 - 0.5 + 1, 1.5 - 0.5 + 1, 1.5 - 2 + 1.
        ("batch_hard", (0.5 + 1.5 + 2.0 + 0.5) / 4),
        # Positive triplets: 0.5, 1.5, 1, 2, 0.5 (three are <= 0 and not counted).
        ("batch_all", (0.5 + 1.5 + 1.0 + 2.0 + 0.5) / 5),
    ],
)
def test_hand_checked_values_on_a_line(mining, expected):
    value = TripletLoss(margin=1.0, mining=mining)(LABELS, LINE)
    np.testing.assert_allclose(as_numpy(value), expected, rtol=1e-6)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("mining", MINING)
def test_matches_the_numpy_reference(mining, distance, triplet_reference):
    labels, embeddings = random_batch(seed=len(mining) + len(distance))
    value = TripletLoss(margin=0.8, mining=mining, distance=distance)(labels, embeddings)
    expected = triplet_reference(labels, embeddings, 0.8, mining, distance)
    np.testing.assert_allclose(as_numpy(value), expected, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("mining", MINING)
def test_gradient_matches_central_differences_of_the_reference(mining, triplet_reference):
    labels, embeddings = random_batch(seed=3, batch=6)
    assert_gradient_matches_central_differences(
        lambda values, dtype: TripletLoss(margin=0.8, mining=mining, dtype=dtype)(labels, values),
        lambda values: triplet_reference(labels, values, 0.8, mining, "euclidean"),
        embeddings,
        rtol=1e-6,
        atol=1e-6,
        float32_rtol=2e-3,
        float32_atol=2e-3,
    )


def test_anchors_without_a_positive_or_a_negative_are_left_out():
    # Sample 2 is alone in its class: it has no positive, so only anchors 0 and 1
    # count; batch_hard is then (1 - 2 + 1 + 1 - 1 + 1) / 2 = 0.5, not / 3.
    embeddings = np.array([[0.0], [1.0], [2.0]], dtype="float32")
    value = TripletLoss(margin=1.0, mining="batch_hard")([0, 0, 1], embeddings)
    np.testing.assert_allclose(as_numpy(value), 0.5, rtol=1e-6)
    # One class only: no negatives anywhere (TensorFlow Addons would count
    # margin + d(a, p) here), so the semi-hard loss is 0.
    single = TripletLoss(margin=1.0)([3, 3, 3], embeddings)
    np.testing.assert_allclose(as_numpy(single), 0.0)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("mining", MINING)
def test_duplicate_embeddings_give_finite_gradients(mining, distance):
    embeddings = keras.ops.convert_to_tensor(np.ones((4, 3), dtype="float32"))
    loss = TripletLoss(margin=0.5, mining=mining, distance=distance)
    value = as_numpy(loss(LABELS, embeddings))
    gradient = backend_gradient(lambda values: loss(LABELS, values), embeddings)
    np.testing.assert_allclose(value, 0.5, rtol=1e-6)
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("mining", MINING)
def test_a_nan_embedding_gives_a_nan_loss(mining, distance):
    labels, embeddings = random_batch(3)
    embeddings[2, 1] = np.nan
    value = TripletLoss(mining=mining, distance=distance)(labels, embeddings)
    assert np.isnan(as_numpy(value))


def test_integer_labels_as_floats_and_a_trailing_axis_are_accepted():
    loss = TripletLoss(mining="batch_all")
    expected = as_numpy(loss(LABELS, LINE))
    np.testing.assert_allclose(as_numpy(loss(LABELS.astype("float32")[:, None], LINE)), expected)


@settings(max_examples=hypothesis_examples(12), deadline=None)
@given(seed=st.integers(0, 2**16), mining=st.sampled_from(MINING))
def test_non_negative_and_invariant_to_the_order_of_the_batch(seed, mining, triplet_reference):
    labels, embeddings = random_batch(seed, batch=7)
    order = np.random.default_rng(seed + 1).permutation(len(labels))
    loss = TripletLoss(margin=0.5, mining=mining)
    value = as_numpy(loss(labels, embeddings))
    assert value >= 0.0
    np.testing.assert_allclose(as_numpy(loss(labels[order], embeddings[order])), value, rtol=1e-5)
    expected = triplet_reference(labels, embeddings, 0.5, mining, "euclidean")
    np.testing.assert_allclose(value, expected, rtol=2e-5, atol=2e-6)


def test_cosine_distance_ignores_the_scale_of_each_embedding():
    labels, embeddings = random_batch(seed=11)
    scales = np.linspace(0.5, 4.0, len(labels), dtype="float32")[:, None]
    loss = TripletLoss(margin=0.3, mining="batch_all", distance="cosine")
    np.testing.assert_allclose(
        as_numpy(loss(labels, embeddings * scales)), as_numpy(loss(labels, embeddings)), rtol=1e-5
    )


def test_fractional_labels_and_mismatched_shapes_are_value_errors():
    with pytest.raises(ValueError, match=r"TripletLoss.*y_true"):
        TripletLoss()(np.array([0.0, 0.5, 1.0, 1.0]), LINE)
    with pytest.raises(ValueError, match=r"TripletLoss.*\(3,\).*\(4, 1\)"):
        TripletLoss()(np.array([0, 1, 1]), LINE)
    with pytest.raises(ValueError, match=r"TripletLoss.*y_pred.*\(4,\)"):
        TripletLoss()(LABELS, LINE[:, 0])


def test_sample_weight_is_a_value_error():
    with pytest.raises(ValueError, match=r"TripletLoss.*sample_weight"):
        TripletLoss()(LABELS, LINE, sample_weight=np.ones(4))
