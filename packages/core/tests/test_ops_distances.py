"""core.ops.pairwise_distances: native path and keras.ops reference against numpy.

Values against a float64 numpy formula, gradients of ``sum(W * D)`` against
their analytic form, on a batch with two coincident embeddings and, for the
cosine distance, an all-zero one.
"""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import ops
from dl_techniques.losses.core.testing.numeric import as_numpy, backend_gradient

BACKEND = keras.backend.backend()
RNG = np.random.default_rng(11)
EMBEDDINGS = RNG.normal(size=(6, 4)).astype("float32")
EMBEDDINGS[4] = EMBEDDINGS[1]
WEIGHTS = RNG.normal(size=(6, 6)).astype("float32")
FUNCTIONS = [ops.pairwise_distances, ops.pairwise_distances_reference]


def numpy_distances(embeddings, distance):
    x = embeddings.astype("float64")
    if distance == "cosine":
        unit = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        return 1.0 - unit @ unit.T
    squared = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return squared if distance == "squared_euclidean" else np.sqrt(squared)


def numpy_gradient(embeddings, weights, distance):
    """d sum(W * D) / dx: each pair (k, j) pulls x_k along x_k - x_j."""
    x = embeddings.astype("float64")
    symmetric = weights + weights.T
    if distance == "cosine":
        norms = np.linalg.norm(x, axis=-1, keepdims=True)
        unit = x / norms
        toward = -symmetric @ unit
        return (toward - unit * (unit * toward).sum(-1, keepdims=True)) / norms
    difference = x[:, None, :] - x[None, :, :]
    if distance == "squared_euclidean":
        return 2.0 * (symmetric[..., None] * difference).sum(1)
    length = np.linalg.norm(difference, axis=-1)
    # Coincident pairs (and the diagonal) contribute 0, not 0 / 0.
    scale = np.divide(symmetric, length, out=np.zeros_like(length), where=length > 0)
    return (scale[..., None] * difference).sum(1)


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("distance", ops.PAIRWISE_DISTANCES)
@pytest.mark.parametrize("compiled", [False, True])
def test_pairwise_distances_match_numpy_value_and_gradient(function, distance, compiled):
    result = as_numpy(function(keras.ops.convert_to_tensor(EMBEDDINGS), distance))
    gradient = backend_gradient(
        lambda x: keras.ops.sum(function(x, distance) * keras.ops.convert_to_tensor(WEIGHTS)),
        EMBEDDINGS,
        compiled=compiled,
    )

    expected = numpy_distances(EMBEDDINGS, distance)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=2e-6)
    if distance != "cosine":
        # Exact zeros on the diagonal and between the coincident rows 1 and 4.
        assert np.all(np.diag(result) == 0.0)
        assert result[1, 4] == result[4, 1] == 0.0
    np.testing.assert_allclose(
        gradient, numpy_gradient(EMBEDDINGS, WEIGHTS, distance), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_cosine_distance_of_a_zero_embedding_is_one_with_a_finite_gradient(function):
    embeddings = EMBEDDINGS.copy()
    embeddings[2] = 0.0

    result = as_numpy(function(keras.ops.convert_to_tensor(embeddings), "cosine"))
    gradient = backend_gradient(
        lambda x: keras.ops.sum(function(x, "cosine") * keras.ops.convert_to_tensor(WEIGHTS)),
        embeddings,
    )

    np.testing.assert_allclose(result[2], np.ones(6), rtol=0, atol=0)
    np.testing.assert_allclose(result[:, 2], np.ones(6), rtol=0, atol=0)
    assert np.all(np.isfinite(gradient))
    rest = [0, 1, 3, 4, 5]
    expected = numpy_gradient(embeddings[rest], WEIGHTS[np.ix_(rest, rest)], "cosine")
    np.testing.assert_allclose(gradient[rest], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("distance", ops.PAIRWISE_DISTANCES)
def test_a_nan_embedding_gives_nan_distances_off_the_diagonal(function, distance):
    embeddings = EMBEDDINGS.copy()
    embeddings[3, 0] = np.nan

    result = as_numpy(function(keras.ops.convert_to_tensor(embeddings), distance))

    others = [0, 1, 2, 4, 5]
    assert np.all(np.isnan(result[3, others])) and np.all(np.isnan(result[others, 3]))
    assert np.all(np.isfinite(result[np.ix_(others, others)]))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_an_unknown_distance_is_a_value_error(function):
    with pytest.raises(ValueError, match=r"pairwise_distances: `distance` must be one of"):
        function(keras.ops.convert_to_tensor(EMBEDDINGS), "manhattan")


@pytest.mark.skipif(BACKEND != "torch", reason="the torch kernel's own autograd function")
@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean"])
def test_the_torch_kernel_differentiates_in_one_autograd_function(distance):
    import torch

    embeddings = torch.tensor(EMBEDDINGS, requires_grad=True)

    result = ops.pairwise_distances(embeddings, distance)
    compiled = torch.compile(lambda x: ops.pairwise_distances(x, distance), backend="eager")

    assert ops.native_backends("pairwise_distances") == ("torch",)
    assert type(result.grad_fn).__name__ == "PairwiseEuclideanBackward"
    np.testing.assert_allclose(
        compiled(embeddings).detach().numpy(),
        numpy_distances(EMBEDDINGS, distance),
        rtol=1e-5,
        atol=2e-6,
    )
