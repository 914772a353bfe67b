"""Generated data and embedding statistics for the self-supervised demo."""

import numpy as np


def paired_modalities(rng, count, latent_dim, image_dim, text_dim, noise=0.1):
    """Returns ``(images, texts)``: two views of shared latent vectors.

    Each modality is the same latent vector sent through its own random
    two-layer map with a different nonlinearity (tanh for "images", sine for
    "texts"), plus independent noise, so neither is a linear function of the
    other and an encoder pair has to learn to undo both maps.
    """
    latent = rng.normal(size=(count, latent_dim))
    images = _random_map(rng, latent, image_dim, np.tanh) + noise * rng.normal(
        size=(count, image_dim)
    )
    texts = _random_map(rng, latent, text_dim, np.sin) + noise * rng.normal(size=(count, text_dim))
    return images.astype("float32"), texts.astype("float32")


def clustered_points(rng, count, clusters, latent_dim, input_dim, spread=0.35):
    """Returns ``(points, labels)``: Gaussian clusters sent through a random nonlinear map."""
    centres = rng.normal(size=(clusters, latent_dim))
    labels = rng.integers(0, clusters, size=count)
    latent = centres[labels] + spread * rng.normal(size=(count, latent_dim))
    return _random_map(rng, latent, input_dim, np.tanh).astype("float32"), labels


def multi_crop_views(rng, points, global_crops, local_crops, keep_fraction=0.5):
    """Returns ``(N, global_crops + local_crops, D)`` augmented views, global ones first.

    A global view is the point with small noise and a random per-feature
    gain; a local view keeps only a random ``keep_fraction`` of the features
    (the rest zeroed, a crop of the feature vector) and gets more noise.
    """
    count, dim = points.shape
    views = []
    for _ in range(global_crops):
        gain = rng.uniform(0.8, 1.2, size=(count, dim))
        views.append(points * gain + 0.1 * rng.normal(size=(count, dim)))
    for _ in range(local_crops):
        kept = rng.uniform(size=(count, dim)) < keep_fraction
        views.append(np.where(kept, points, 0.0) + 0.2 * rng.normal(size=(count, dim)))
    return np.stack(views, axis=1).astype("float32")


def top1_retrieval_accuracy(image_embeddings, text_embeddings):
    """Fraction of images whose most similar text (by cosine) is their own pair."""
    similarity = _unit_rows(image_embeddings) @ _unit_rows(text_embeddings).T
    return float(np.mean(np.argmax(similarity, axis=1) == np.arange(len(similarity))))


def embedding_statistics(embeddings):
    """Returns ``(mean per-dimension std, effective rank, singular values)`` of unit embeddings.

    The effective rank is ``exp(H(p))`` with ``p`` the singular values of the
    centred unit-norm embeddings divided by their sum: 1 for a collapse onto a
    line, D when the embeddings spread over every dimension equally.
    """
    unit = _unit_rows(embeddings)
    singular_values = np.linalg.svd(unit - unit.mean(axis=0), compute_uv=False)
    weights = singular_values / max(singular_values.sum(), 1e-12)
    weights = weights[weights > 0]
    effective_rank = float(np.exp(-np.sum(weights * np.log(weights))))
    return float(unit.std(axis=0).mean()), effective_rank, singular_values


def nearest_neighbour_accuracy(reference, reference_labels, queries, query_labels):
    """Accuracy of labelling each query with its nearest reference point by cosine."""
    similarity = _unit_rows(queries) @ _unit_rows(reference).T
    predicted = reference_labels[np.argmax(similarity, axis=1)]
    return float(np.mean(predicted == query_labels))


def _random_map(rng, inputs, out_dim, activation, hidden=32):
    first = rng.normal(size=(inputs.shape[1], hidden)) / np.sqrt(inputs.shape[1])
    offset = rng.uniform(-1.0, 1.0, size=hidden)
    second = rng.normal(size=(hidden, out_dim)) / np.sqrt(hidden)
    return activation(inputs @ first + offset) @ second


def _unit_rows(values):
    values = np.asarray(values, "float64")
    return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)
