"""Each metric-learning loss against a plain keras.ops formula of the same mining.

Pairs (ours vs baseline), on the same labels and embeddings in the same run:

- TripletLoss(mining="batch_hard") vs an inline batch-hard triplet loss;
- TripletLoss(mining="semi_hard") vs an inline semi-hard loss written as
  TensorFlow Addons writes it (masked minimum and maximum over a tiled matrix);
- TripletLoss(mining="batch_all") vs an inline mean over the positive triplets;
- ContrastivePairLoss vs an inline mean over the pairs.

The baselines are scalar functions of ``(labels, embeddings)`` without the
library's safety (shape and label checks, the square root taken only where
positive, the exclusion of anchors without a triplet), so the ratio is what
that safety costs. Target: ratio <= 1.1.
"""

import keras
import numpy as np
from benchmarking import EMPTY_STEP, Case, empty_step, print_fixed_cost, print_pair_table

from dl_techniques.losses.metric_learning import ContrastivePairLoss, TripletLoss


def inline_distances(embeddings):
    squared_norm = keras.ops.sum(keras.ops.square(embeddings), axis=1)
    squared = (
        keras.ops.expand_dims(squared_norm, 1)
        + keras.ops.expand_dims(squared_norm, 0)
        - 2.0 * keras.ops.matmul(embeddings, keras.ops.transpose(embeddings))
    )
    return keras.ops.sqrt(keras.ops.maximum(squared, 1e-12))


def inline_masks(labels):
    same = keras.ops.cast(
        keras.ops.equal(keras.ops.expand_dims(labels, 1), keras.ops.expand_dims(labels, 0)),
        "float32",
    )
    positive = same - keras.ops.eye(keras.ops.shape(labels)[0])
    return positive, 1.0 - same


def inline_batch_hard(margin):
    def batch_hard(labels, embeddings):
        distances = inline_distances(embeddings)
        positive, negative = inline_masks(labels)
        hardest_positive = keras.ops.max(distances * positive, axis=1)
        largest = keras.ops.max(distances, axis=1, keepdims=True)
        hardest_negative = keras.ops.min(distances + largest * (1.0 - negative), axis=1)
        return keras.ops.mean(keras.ops.relu(hardest_positive - hardest_negative + margin))

    return batch_hard


def inline_semi_hard(margin):
    def semi_hard(labels, embeddings):
        distances = inline_distances(embeddings)
        positive, negative = inline_masks(labels)
        anchor_positive = keras.ops.expand_dims(distances, 2)
        anchor_negative = keras.ops.expand_dims(distances, 1)
        farther = keras.ops.expand_dims(negative, 1) * keras.ops.cast(
            anchor_negative > anchor_positive, "float32"
        )
        largest = keras.ops.max(distances)
        nearest_farther = keras.ops.min(anchor_negative + largest * (1.0 - farther), axis=2)
        farthest = keras.ops.max(distances * negative, axis=1, keepdims=True)
        has_farther = keras.ops.max(farther, axis=2)
        chosen = has_farther * nearest_farther + (1.0 - has_farther) * farthest
        losses = keras.ops.relu(distances - chosen + margin) * positive
        return keras.ops.sum(losses) / keras.ops.sum(positive)

    return semi_hard


def inline_batch_all(margin):
    def batch_all(labels, embeddings):
        distances = inline_distances(embeddings)
        positive, negative = inline_masks(labels)
        valid = keras.ops.expand_dims(positive, 2) * keras.ops.expand_dims(negative, 1)
        losses = keras.ops.relu(
            keras.ops.expand_dims(distances, 2) - keras.ops.expand_dims(distances, 1) + margin
        )
        losses = losses * valid
        active = keras.ops.sum(keras.ops.cast(losses > 0.0, "float32"))
        return keras.ops.sum(losses) / keras.ops.maximum(active, 1.0)

    return batch_all


def inline_contrastive(margin):
    def contrastive(labels, embeddings):
        distances = inline_distances(embeddings)
        positive, negative = inline_masks(labels)
        losses = positive * keras.ops.square(distances) + negative * keras.ops.square(
            keras.ops.relu(margin - distances)
        )
        batch = keras.ops.cast(keras.ops.shape(labels)[0], "float32")
        return keras.ops.sum(losses) / (batch * (batch - 1.0))

    return contrastive


def run_metric_learning(params, timing):
    batch, dim, classes, margin = params["batch"], params["dim"], params["classes"], 0.5
    rng = np.random.default_rng(0)
    labels = keras.ops.convert_to_tensor(rng.integers(0, classes, size=batch).astype("int32"))
    embeddings = keras.ops.convert_to_tensor(rng.normal(size=(batch, dim)).astype("float32"))
    comparisons = [
        ("TripletLoss batch_hard", TripletLoss(margin, "batch_hard"), inline_batch_hard(margin)),
        ("TripletLoss semi_hard", TripletLoss(margin, "semi_hard"), inline_semi_hard(margin)),
        ("TripletLoss batch_all", TripletLoss(margin, "batch_all"), inline_batch_all(margin)),
        ("ContrastivePairLoss", ContrastivePairLoss(margin), inline_contrastive(margin)),
    ]
    timed = []
    for name, loss, baseline in comparisons:
        timed.append((name, loss, labels, embeddings))
        timed.append((f"inline {name}", baseline, labels, embeddings))
    timed.append((EMPTY_STEP, empty_step, labels, embeddings))
    medians = timing.medians(timed)
    timing.print_header(
        f"batch {batch}, dim {dim}, {classes} classes; forward + gradient w.r.t. the embeddings"
    )
    print_pair_table([(name, f"inline {name}") for name, *_ in comparisons], medians, "us", 1.1)
    print_fixed_cost(medians)


CASES = [
    Case(
        "metric_learning",
        "TripletLoss (each mining) and ContrastivePairLoss vs keras.ops baselines "
        "(target ratio <= 1.1)",
        run_metric_learning,
        params={"batch": 256, "dim": 128, "classes": 32},
        quick={"batch": 12, "dim": 8, "classes": 3},
        repetitions=50,
        warmup=5,
    )
]
