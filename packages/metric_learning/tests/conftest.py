"""Float64 numpy references of the metric-learning losses, written from the papers' formulas.

The tests take them as session fixtures of the same names.
"""

import itertools

import numpy as np
import pytest


def distance_matrix(embeddings, distance):
    """Pairwise distances from explicit differences, not a Gram matrix."""
    x = np.asarray(embeddings, "float64")
    if distance == "cosine":
        unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return 1.0 - unit @ unit.T
    squared = np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    return squared if distance == "squared_euclidean" else np.sqrt(squared)


def _triplet_reference(labels, embeddings, margin, mining, distance):
    """The triplet loss by explicit loops over anchors, positives and negatives."""
    d = distance_matrix(embeddings, distance)
    labels = np.asarray(labels).reshape(-1)
    batch = len(labels)
    values = []
    for anchor in range(batch):
        positives = [j for j in range(batch) if j != anchor and labels[j] == labels[anchor]]
        negatives = [k for k in range(batch) if labels[k] != labels[anchor]]
        if not positives or not negatives:
            continue
        if mining == "batch_hard":
            hardest = max(d[anchor, j] for j in positives) - min(d[anchor, k] for k in negatives)
            values.append(max(hardest + margin, 0.0))
        for positive in positives if mining != "batch_hard" else ():
            if mining == "semi_hard":
                farther = [d[anchor, k] for k in negatives if d[anchor, k] > d[anchor, positive]]
                chosen = min(farther) if farther else max(d[anchor, k] for k in negatives)
                values.append(max(d[anchor, positive] - chosen + margin, 0.0))
            else:
                for negative in negatives:
                    value = d[anchor, positive] - d[anchor, negative] + margin
                    if value > 0.0:
                        values.append(value)
    return float(np.mean(values)) if values else 0.0


def _contrastive_reference(labels, embeddings, margin, distance):
    """Hadsell et al.'s pair loss, averaged over the pairs i < j."""
    d = distance_matrix(embeddings, distance)
    labels = np.asarray(labels).reshape(-1)
    values = [
        d[i, j] ** 2 if labels[i] == labels[j] else max(margin - d[i, j], 0.0) ** 2
        for i, j in itertools.combinations(range(len(labels)), 2)
    ]
    return float(np.mean(values)) if values else 0.0


def _margin_logits_reference(
    embeddings, kernel, labels, *, kind, scale, margin, easy_margin=False, sub_centers=1
):
    """insightface's ArcFace / CosFace logits, with sub-centres as adjacent kernel columns."""
    x = np.asarray(embeddings, "float64")
    w = np.asarray(kernel, "float64")
    cosine = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
        w / np.linalg.norm(w, axis=0, keepdims=True)
    )
    cosine = cosine.reshape(len(x), -1, sub_centers).max(axis=-1).clip(-1.0, 1.0)
    if labels is None:
        return scale * cosine
    one_hot = np.eye(cosine.shape[1])[np.asarray(labels).reshape(-1)]
    if kind == "cosface":
        return scale * (cosine - margin * one_hot)
    sine = np.sqrt(np.clip(1.0 - cosine**2, 0.0, 1.0))
    phi = cosine * np.cos(margin) - sine * np.sin(margin)
    if easy_margin:
        phi = np.where(cosine > 0, phi, cosine)
    else:
        phi = np.where(
            cosine > np.cos(np.pi - margin), phi, cosine - np.sin(np.pi - margin) * margin
        )
    return scale * (one_hot * phi + (1.0 - one_hot) * cosine)


@pytest.fixture(scope="session")
def triplet_reference():
    return _triplet_reference


@pytest.fixture(scope="session")
def contrastive_reference():
    return _contrastive_reference


@pytest.fixture(scope="session")
def margin_logits_reference():
    return _margin_logits_reference
