"""The matrix of distances between the rows of a batch of embeddings."""

from typing import Any

import keras

from dl_techniques.losses.core.ops._dispatch import _dispatch

PAIRWISE_DISTANCES = ("euclidean", "squared_euclidean", "cosine")
"""The distances that :func:`pairwise_distances` computes."""

# The squared norm of an embedding is floored at this value before the square
# root of the cosine normalisation, so an all-zero embedding has a finite gradient.
_NORM_FLOOR = 1e-24


def pairwise_distances(embeddings: Any, distance: str) -> Any:
    """The ``(B, B)`` distances between the rows of ``embeddings`` ``(B, D)``.

    ```
    squared_euclidean[i, j] = max(||x_i||^2 + ||x_j||^2 - 2 x_i . x_j, 0),  0 where i = j
    euclidean[i, j]         = sqrt(squared_euclidean[i, j]) where it is > 0, else 0
    cosine[i, j]            = 1 - x_i . x_j / (max(||x_i||, 1e-12) max(||x_j||, 1e-12))
    ```

    The diagonal of both Euclidean distances is exactly 0, and the square
    root is taken only where the squared distance is positive, so coincident
    embeddings have a zero gradient rather than an infinite one. A NaN stays
    NaN. The torch kernel computes both Euclidean distances in one autograd
    function whose backward pass is two matrix products' worth of work
    (``2 (diag(rowsum(S)) - S) X`` with ``S`` the symmetrised incoming
    gradient), where the reference runs a dozen elementwise operations on
    ``(B, B)`` and their derivatives.

    Args:
        embeddings: Float tensor ``(B, D)``.
        distance: One of :data:`PAIRWISE_DISTANCES`.

    Returns:
        A ``(B, B)`` tensor in the dtype of ``embeddings``.

    Raises:
        ValueError: For a ``distance`` not in :data:`PAIRWISE_DISTANCES`.
    """
    _check_distance(distance)
    return _dispatch("pairwise_distances", pairwise_distances_reference)(embeddings, distance)


def pairwise_distances_reference(embeddings: Any, distance: str) -> Any:
    """:func:`pairwise_distances` in ``keras.ops``: a Gram matrix, a clamp and masks."""
    _check_distance(distance)
    embeddings = keras.ops.convert_to_tensor(embeddings)
    if distance == "cosine":
        squared_norm = keras.ops.sum(keras.ops.square(embeddings), axis=-1, keepdims=True)
        unit = embeddings / keras.ops.sqrt(keras.ops.maximum(squared_norm, _NORM_FLOOR))
        return 1.0 - keras.ops.matmul(unit, keras.ops.transpose(unit))
    squared_norm = keras.ops.sum(keras.ops.square(embeddings), axis=-1)
    gram = keras.ops.matmul(embeddings, keras.ops.transpose(embeddings))
    squared = keras.ops.expand_dims(squared_norm, 1) + keras.ops.expand_dims(squared_norm, 0)
    squared = keras.ops.maximum(squared - 2.0 * gram, 0.0)
    off_diagonal = keras.ops.logical_not(
        keras.ops.eye(keras.ops.shape(embeddings)[0], dtype="bool")
    )
    squared = keras.ops.where(off_diagonal, squared, keras.ops.zeros_like(squared))
    if distance == "squared_euclidean":
        return squared
    # NaN is kept as it is: a NaN embedding must not give a finite distance.
    rooted = keras.ops.logical_or(squared > 0.0, keras.ops.isnan(squared))
    root = keras.ops.sqrt(keras.ops.where(rooted, squared, keras.ops.ones_like(squared)))
    return keras.ops.where(rooted, root, keras.ops.zeros_like(squared))


def _check_distance(distance: str) -> None:
    if distance not in PAIRWISE_DISTANCES:
        raise ValueError(
            f"pairwise_distances: `distance` must be one of {PAIRWISE_DISTANCES}; got {distance!r}."
        )
