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
    softmax,
)
from dl_techniques.losses.vision.segmentation_loss import SegmentationLoss
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig

IGNORE = 255
CLASSES = 3


def jaccard_set_loss(in_set, foreground):
    """Delta_J(M) = |M| / |fg U M|, 0 for an empty union."""
    union = np.sum(in_set | foreground)
    return np.sum(in_set) / union if union else 0.0


def lovasz_reference(errors, foreground):
    """The Lovasz extension of Delta_J at ``errors``, from its definition.

    Sort the errors descending; the k-th largest error is weighted by the
    increase of the Jaccard loss when its pixel joins the set of the k - 1
    larger ones.
    """
    errors = np.asarray(errors, "float64")
    foreground = np.asarray(foreground, bool)
    order = np.argsort(-errors, kind="stable")
    in_set = np.zeros(errors.shape, bool)
    total, previous = 0.0, 0.0
    for pixel in order:
        in_set[pixel] = True
        current = jaccard_set_loss(in_set, foreground)
        total += errors[pixel] * (current - previous)
        previous = current
    return total


def lovasz_softmax_reference(ids, probs, per_image=False):
    """Mean over the classes present of the Lovasz extension of |fg - p_c|."""
    if per_image:
        pairs = zip(ids[:, None], probs[:, None], strict=True)
        return np.array([lovasz_softmax_reference(image, p) for image, p in pairs])
    valid = (ids != IGNORE).ravel()
    labels = ids.ravel()[valid]
    p = probs.reshape(-1, probs.shape[-1])[valid].astype("float64")
    losses = [
        lovasz_reference(np.abs((labels == c) - p[:, c]), labels == c)
        for c in range(p.shape[1])
        if np.any(labels == c)
    ]
    return np.mean(losses) if losses else 0.0


def lovasz_hinge_reference(labels, logits, per_image=False):
    if per_image:
        pairs = zip(labels[:, None], logits[:, None], strict=True)
        return np.array([lovasz_hinge_reference(label, logit) for label, logit in pairs])
    valid = (labels != IGNORE).ravel()
    fg = labels.ravel()[valid] == 1
    scores = logits.ravel()[valid].astype("float64")
    return lovasz_reference(np.maximum(0.0, 1.0 - scores * (2.0 * fg - 1.0)), fg)


def random_batch(seed, shape=(2, 4, 4), ignore_fraction=0.2, classes=CLASSES):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(*shape, classes)).astype("float32")
    ids = rng.integers(0, classes, size=shape)
    return np.where(rng.uniform(size=shape) < ignore_fraction, IGNORE, ids), logits


def lovasz(per_image=False, **overrides):
    config = SegmentationLossConfig(
        CLASSES, from_logits=True, ignore_index=IGNORE, per_image=per_image, **overrides
    )
    return SegmentationLoss("lovasz", config, reduction=None)


def hinge(per_image=False):
    config = SegmentationLossConfig(1, from_logits=True, ignore_index=IGNORE, per_image=per_image)
    return SegmentationLoss("lovasz_hinge", config, reduction=None)


def test_hand_checked_lovasz_softmax():
    # Labels [0, 1, 1, 1], p(class 1) = [.2, .6, .9, .5]; both classes have the
    # errors [.2, .4, .1, .5]. Class 1 (fg = pixels 1, 2, 3) visits pixels
    # 3, 1, 0, 2: Delta_J = 1/3, 2/3, 3/4, 1, so .5/3 + .4/3 + .2/12 + .1/4.
    # Class 0 (fg = pixel 0): Delta_J = 1/2, 2/3, 1, 1, so .5/2 + .4/6 + .2/3.
    ids = np.array([[[0, 1], [1, 1]]])
    p1 = np.array([[[0.2, 0.6], [0.9, 0.5]]])
    probs = np.stack([1 - p1, p1], axis=-1).astype("float32")
    loss = SegmentationLoss("lovasz", SegmentationLossConfig(num_classes=2))
    expected = ((0.5 / 2 + 0.4 / 6 + 0.2 / 3) + (0.5 / 3 + 0.4 / 3 + 0.2 / 12 + 0.1 / 4)) / 2
    np.testing.assert_allclose(as_numpy(loss(ids, probs)), expected, rtol=1e-6)


def test_hand_checked_lovasz_hinge():
    # Labels [1, 1, 0, 0], logits [2, -1, .5, -3]: hinge errors [0, 2, 1.5, 0].
    # Pixel 1 (fg) first: Delta_J = 1/2; then pixel 2 (bg): 2/3. 2/2 + 1.5/6.
    labels = np.array([[[1, 1], [0, 0]]])
    logits = np.array([[[2.0, -1.0], [0.5, -3.0]]], "float32")
    loss = SegmentationLoss("lovasz_hinge", SegmentationLossConfig(1, from_logits=True))
    np.testing.assert_allclose(as_numpy(loss(labels, logits)), 1.25, rtol=1e-6)


@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_softmax_matches_reference(per_image):
    ids, logits = random_batch(seed=1 + per_image)
    expected = lovasz_softmax_reference(ids, softmax(logits.astype("float64")), per_image)
    np.testing.assert_allclose(
        as_numpy(lovasz(per_image)(ids, logits)), expected, rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_hinge_matches_reference(per_image):
    rng = np.random.default_rng(3 + per_image)
    labels = rng.integers(0, 2, size=(2, 4, 4))
    labels = np.where(rng.uniform(size=labels.shape) < 0.2, IGNORE, labels)
    logits = rng.normal(scale=2.0, size=(2, 4, 4, 1)).astype("float32")
    expected = lovasz_hinge_reference(labels, logits[..., 0], per_image)
    np.testing.assert_allclose(
        as_numpy(hinge(per_image)(labels[..., None], logits)), expected, rtol=1e-5, atol=1e-7
    )


def test_hinge_takes_probabilities_through_their_logits():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, size=(2, 4, 4))
    logits = rng.normal(size=(2, 4, 4)).astype("float32")
    probabilities = 1.0 / (1.0 + np.exp(-logits.astype("float64")))
    loss = SegmentationLoss("lovasz_hinge", SegmentationLossConfig(num_classes=2))
    np.testing.assert_allclose(
        as_numpy(loss(labels, probabilities.astype("float32"))),
        lovasz_hinge_reference(labels, logits),
        rtol=1e-4,
    )


def test_hard_predictions_give_one_minus_jaccard():
    rng = np.random.default_rng(6)
    ids = rng.integers(0, CLASSES, size=(2, 4, 4))
    flipped = rng.integers(0, CLASSES, ids.shape)
    predicted = np.where(rng.uniform(size=ids.shape) < 0.4, flipped, ids)
    hard = np.eye(CLASSES, dtype="float32")[predicted]
    config = SegmentationLossConfig(CLASSES)
    ious = [
        np.sum((ids == c) & (predicted == c)) / np.sum((ids == c) | (predicted == c))
        for c in range(CLASSES)
    ]
    np.testing.assert_allclose(
        as_numpy(SegmentationLoss("lovasz", config)(ids, hard)), 1.0 - np.mean(ious), rtol=1e-6
    )


def test_hard_hinge_logits_give_twice_one_minus_foreground_jaccard():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, size=(2, 4, 4))
    predicted = np.where(rng.uniform(size=labels.shape) < 0.3, 1 - labels, labels)
    logits = (2.0 * predicted - 1.0).astype("float32")
    iou = np.sum((labels == 1) & (predicted == 1)) / np.sum((labels == 1) | (predicted == 1))
    loss = SegmentationLoss("lovasz_hinge", SegmentationLossConfig(1, from_logits=True))
    # Errors are 0 (right) or 2 (wrong): the extension at 2 * 1_M is 2 Delta_J(M).
    np.testing.assert_allclose(as_numpy(loss(labels, logits)), 2.0 * (1.0 - iou), rtol=1e-6)


def test_gradient_matches_central_differences_of_reference():
    ids, logits = random_batch(seed=8, shape=(1, 3, 3))

    def reference(values):
        return lovasz_softmax_reference(ids, softmax(values))

    loss = lovasz()
    gradient = input_gradient(lambda values: loss(ids, values), keras.ops.convert_to_tensor(logits))
    np.testing.assert_allclose(
        as_numpy(gradient), central_differences(reference, logits), rtol=2e-3, atol=2e-5
    )


def test_gradients_are_finite_with_tied_errors():
    # Uniform probabilities tie every error; the repeated image ties pixels too.
    ids = np.tile(np.array([[[0, 1, 2, IGNORE]]]), (2, 4, 1))
    uniform = np.zeros((2, 4, 4, CLASSES), "float32")
    zero_logits = np.zeros((2, 4, 4, 1), "float32")
    softmax_gradient = input_gradient(lambda values: lovasz()(ids, values), uniform)
    hinge_gradient = input_gradient(
        lambda values: hinge(per_image=True)(ids[..., None] % 2, values), zero_logits
    )
    assert np.all(np.isfinite(as_numpy(softmax_gradient)))
    assert np.all(np.isfinite(as_numpy(hinge_gradient)))
    np.testing.assert_allclose(
        as_numpy(lovasz()(ids, uniform)),
        lovasz_softmax_reference(ids, softmax(uniform)),
        rtol=1e-6,
    )


def test_no_class_present_gives_zero():
    ids = np.full((2, 4, 4), IGNORE)
    logits = np.random.default_rng(9).normal(size=(2, 4, 4, CLASSES)).astype("float32")
    assert as_numpy(lovasz()(ids, logits)) == 0.0


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(st.integers(0, 2**31 - 1), st.booleans())
def test_lovasz_softmax_lies_in_unit_interval(seed, per_image):
    ids, logits = random_batch(seed)
    value = as_numpy(lovasz(per_image)(ids, logits))
    assert np.all((value >= 0.0) & (value <= 1.0)), value
