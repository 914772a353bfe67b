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
from dl_techniques.losses.metric_learning import ContrastivePairLoss

DISTANCES = ("euclidean", "squared_euclidean", "cosine")


def random_batch(seed, batch=7, dim=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, size=batch), rng.normal(size=(batch, dim)).astype("float32")


def test_hand_checked_value_on_a_line():
    # (0, 1) same label, d = 0.5: 0.25; (0, 2) d = 0.25: (1 - 0.25)^2 = 0.5625;
    # (1, 2) d = 0.75: 0.0625. Mean over the three pairs, no factor 1/2.
    embeddings = np.array([[0.0], [0.5], [-0.25]], dtype="float32")
    value = ContrastivePairLoss(margin=1.0)([0, 0, 1], embeddings)
    np.testing.assert_allclose(as_numpy(value), (0.25 + 0.5625 + 0.0625) / 3, rtol=1e-6)


@pytest.mark.parametrize("distance", DISTANCES)
def test_matches_the_numpy_reference(distance, contrastive_reference):
    labels, embeddings = random_batch(seed=len(distance))
    value = ContrastivePairLoss(margin=1.5, distance=distance)(labels, embeddings)
    expected = contrastive_reference(labels, embeddings, 1.5, distance)
    np.testing.assert_allclose(as_numpy(value), expected, rtol=2e-5, atol=2e-6)


def test_gradient_matches_central_differences_of_the_reference(contrastive_reference):
    labels, embeddings = random_batch(seed=5, batch=5)
    assert_gradient_matches_central_differences(
        lambda values, dtype: ContrastivePairLoss(margin=1.5, dtype=dtype)(labels, values),
        lambda values: contrastive_reference(labels, values, 1.5, "euclidean"),
        embeddings,
        rtol=1e-6,
        atol=1e-6,
        float32_rtol=2e-3,
        float32_atol=2e-3,
    )


@pytest.mark.parametrize("distance", DISTANCES)
def test_duplicate_embeddings_give_finite_gradients(distance):
    embeddings = keras.ops.convert_to_tensor(np.ones((4, 2), dtype="float32"))
    labels = np.array([0, 0, 1, 1])
    loss = ContrastivePairLoss(margin=1.0, distance=distance)
    # Four of the six pairs are negatives at distance 0: each costs margin^2.
    np.testing.assert_allclose(as_numpy(loss(labels, embeddings)), 4.0 / 6.0, rtol=1e-6)
    assert np.all(np.isfinite(backend_gradient(lambda v: loss(labels, v), embeddings)))


@pytest.mark.parametrize("distance", DISTANCES)
def test_a_nan_embedding_gives_a_nan_loss(distance):
    embeddings = np.random.default_rng(3).normal(size=(6, 3)).astype("float32")
    embeddings[2, 1] = np.nan
    value = ContrastivePairLoss(distance=distance)([0, 0, 1, 1, 2, 2], embeddings)
    assert np.isnan(as_numpy(value))


def test_a_single_sample_has_no_pair_and_gives_zero():
    np.testing.assert_allclose(as_numpy(ContrastivePairLoss()([0], [[1.0, 2.0]])), 0.0)


@settings(max_examples=hypothesis_examples(12), deadline=None)
@given(seed=st.integers(0, 2**16), margin=st.floats(0.0, 3.0))
def test_non_negative_and_invariant_to_the_order_of_the_batch(seed, margin, contrastive_reference):
    labels, embeddings = random_batch(seed)
    order = np.random.default_rng(seed + 1).permutation(len(labels))
    loss = ContrastivePairLoss(margin=margin)
    value = as_numpy(loss(labels, embeddings))
    assert value >= 0.0
    np.testing.assert_allclose(as_numpy(loss(labels[order], embeddings[order])), value, rtol=1e-5)
    expected = contrastive_reference(labels, embeddings, margin, "euclidean")
    np.testing.assert_allclose(value, expected, rtol=2e-5, atol=2e-6)


def test_sample_weight_and_bad_hyper_parameters_are_value_errors():
    with pytest.raises(ValueError, match=r"ContrastivePairLoss.*sample_weight"):
        ContrastivePairLoss()([0, 1], [[0.0], [1.0]], sample_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"ContrastivePairLoss.*margin"):
        ContrastivePairLoss(margin=-1.0)
    with pytest.raises(ValueError, match=r"ContrastivePairLoss.*distance"):
        ContrastivePairLoss(distance="manhattan")
