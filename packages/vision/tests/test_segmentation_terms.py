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
REGION_AND_PIXEL_NAMES = (
    "dice",
    "tversky",
    "focal_tversky",
    "cross_entropy",
    "focal",
    "dice_ce",
    "focal_dice",
    "focal_tversky_ce",
)


def reference_loss(name, one_hot, probs, weights, params, class_weights=None, per_image=False):
    """The loss from the LOSSES.md formulas, in float64.

    ``weights`` (B, H, W) is 0 on ignored pixels and carries sample weights;
    ``class_weights`` weights the class means (0 for a void class) and, when
    given, each pixel by its label.
    """
    y = np.asarray(one_hot, "float64")
    p = np.asarray(probs, "float64")
    w = np.asarray(weights, "float64")[..., None]
    cw = np.ones(y.shape[-1]) if class_weights is None else np.asarray(class_weights, "float64")
    axes = (1, 2) if per_image else (0, 1, 2)
    s = params.get("smooth", 1e-6)
    tp = np.sum(w * p * y, axis=axes)
    fp = np.sum(w * p * (1 - y), axis=axes)
    fn = np.sum(w * (1 - p) * y, axis=axes)

    def class_mean(per_class):
        return np.sum(per_class * cw, axis=-1) / cw.sum()

    def dice():
        sums = np.sum(w * p, axis=axes) + np.sum(w * y, axis=axes)
        return class_mean(1 - (2 * tp + s) / (sums + s))

    def tversky_index():
        a, b = params.get("tversky_alpha", 0.3), params.get("tversky_beta", 0.7)
        return (tp + s) / (tp + a * fp + b * fn + s)

    def pixel_mean(per_pixel):
        pixel_weights = w[..., 0]
        if class_weights is not None:
            pixel_weights = pixel_weights * np.sum(y * cw, axis=-1)
        return np.sum(pixel_weights * per_pixel, axis=axes) / np.sum(pixel_weights, axis=axes)

    log_p = np.log(np.maximum(p, 1e-7))
    alpha, gamma = params.get("focal_alpha", 0.25), params.get("focal_gamma", 2.0)
    terms = {
        "dice": dice,
        "tversky": lambda: class_mean(1 - tversky_index()),
        "focal_tversky": lambda: class_mean(
            (1 - tversky_index()) ** params.get("focal_tversky_gamma", 0.75)
        ),
        "cross_entropy": lambda: pixel_mean(-np.sum(y * log_p, axis=-1)),
        "focal": lambda: pixel_mean(-alpha * np.sum(y * (1 - p) ** gamma * log_p, axis=-1)),
    }
    pairs = {
        "dice_ce": ("dice", "cross_entropy"),
        "focal_dice": ("dice", "focal"),
        "focal_tversky_ce": ("focal_tversky", "cross_entropy"),
    }
    if name in pairs:
        region, pixel = pairs[name]
        dw, cew = params.get("dice_weight", 0.5), params.get("ce_weight", 0.5)
        return dw * terms[region]() + cew * terms[pixel]()
    return terms[name]()


def random_batch(seed, shape=(2, 4, 4), ignore_fraction=0.2):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(*shape, CLASSES)).astype("float32")
    ids = rng.integers(0, CLASSES, size=shape)
    ids = np.where(rng.uniform(size=shape) < ignore_fraction, IGNORE, ids)
    return ids, logits


def reference_inputs(ids):
    valid = ids != IGNORE
    one_hot = np.eye(CLASSES)[np.where(valid, ids, 0)]
    return one_hot, valid.astype("float64")


# One image of 2x2 pixels, labels [[0, 1], [1, 1]], p(class 1) = [[.2, .6], [.9, .5]].
HAND_IDS = np.array([[[0, 1], [1, 1]]])
HAND_PROBS = np.stack(
    [1 - np.array([[[0.2, 0.6], [0.9, 0.5]]]), np.array([[[0.2, 0.6], [0.9, 0.5]]])], axis=-1
).astype("float32")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # class 0: 1 - 2(.8) / (1.8 + 1) = 3/7; class 1: 1 - 2(2.0) / (2.2 + 3) = 3/13
        ("dice", (3 / 7 + 3 / 13) / 2),
        # TI_0 = .8 / (.8 + .3 * 1.0 + .7 * .2) = .64516; TI_1 = 2 / (2 + .3 * .2 + .7 * 1) = .72464
        ("tversky", 0.3151005143),
        # ((1 - .64516)^.75 + (1 - .72464)^.75) / 2
        ("focal_tversky", 0.4199391501),
        # -(log .8 + log .6 + log .9 + log .5) / 4
        ("cross_entropy", 0.3831192178),
        # .25 (.2^2 * .2231 + .4^2 * .5108 + .1^2 * .1054 + .5^2 * .6931) / 4
        ("focal", 0.0165623901),
    ],
)
def test_hand_checked_values(name, expected):
    loss = SegmentationLoss(name, SegmentationLossConfig(num_classes=2, smooth=0.0))
    np.testing.assert_allclose(as_numpy(loss(HAND_IDS, HAND_PROBS)), expected, rtol=1e-5)


@pytest.mark.parametrize("name", REGION_AND_PIXEL_NAMES)
def test_pooled_value_matches_reference_with_ignore_class_and_sample_weights(name):
    ids, logits = random_batch(seed=len(name))
    params = {"smooth": 1e-3, "focal_gamma": 1.5, "dice_weight": 0.3, "ce_weight": 0.9}
    class_weights = (1.0, 2.5, 0.5)
    config = SegmentationLossConfig(
        num_classes=CLASSES,
        from_logits=True,
        ignore_index=IGNORE,
        class_weights=class_weights,
        **params,
    )
    sample_weight = np.array([0.5, 2.0], "float32")
    one_hot, valid = reference_inputs(ids)
    expected = reference_loss(
        name,
        one_hot,
        softmax(logits.astype("float64")),
        valid * sample_weight[:, None, None],
        params,
        class_weights,
    )
    value = SegmentationLoss(name, config)(ids, logits, sample_weight=sample_weight)
    np.testing.assert_allclose(as_numpy(value), expected, rtol=2e-5)


@pytest.mark.parametrize("name", REGION_AND_PIXEL_NAMES)
def test_per_image_values_match_reference(name):
    ids, logits = random_batch(seed=10 + len(name))
    config = SegmentationLossConfig(
        num_classes=CLASSES, from_logits=True, ignore_index=IGNORE, per_image=True
    )
    one_hot, valid = reference_inputs(ids)
    expected = reference_loss(
        name, one_hot, softmax(logits.astype("float64")), valid, {}, per_image=True
    )
    loss = SegmentationLoss(name, config, reduction=None)
    np.testing.assert_allclose(as_numpy(loss(ids, logits)), expected, rtol=2e-5)


def test_one_hot_and_sparse_labels_give_the_same_value():
    ids, logits = random_batch(seed=3, ignore_fraction=0.0)
    loss = SegmentationLoss("focal_dice", SegmentationLossConfig(CLASSES, from_logits=True))
    one_hot = np.eye(CLASSES, dtype="float32")[ids]
    np.testing.assert_allclose(
        as_numpy(loss(one_hot, logits)), as_numpy(loss(ids[..., None], logits)), rtol=1e-6
    )


def test_one_hot_zero_rows_are_ignored_for_an_out_of_range_ignore_index():
    ids, logits = random_batch(seed=4)
    zero_rows = as_numpy(keras.ops.one_hot(np.where(ids == IGNORE, -1, ids), CLASSES))
    config = SegmentationLossConfig(CLASSES, from_logits=True, ignore_index=IGNORE)
    loss = SegmentationLoss("dice_ce", config)
    np.testing.assert_allclose(
        as_numpy(loss(zero_rows.astype("float32"), logits)),
        as_numpy(loss(ids, logits)),
        rtol=1e-6,
    )


def test_void_channel_is_left_out_of_pixels_and_class_mean():
    ids, logits = random_batch(seed=5, ignore_fraction=0.0)
    config = SegmentationLossConfig(CLASSES, from_logits=True, ignore_index=2)
    one_hot = np.eye(CLASSES)[ids]
    valid = (ids != 2).astype("float64")
    probs = softmax(logits.astype("float64"))
    void_out = (1.0, 1.0, 0.0)
    for name in ("dice", "cross_entropy"):
        expected = reference_loss(name, one_hot, probs, valid, {}, class_weights=void_out)
        value = SegmentationLoss(name, config)(one_hot.astype("float32"), logits)
        np.testing.assert_allclose(as_numpy(value), expected, rtol=2e-5)


def test_pixel_sample_weights_weight_every_sum():
    ids, logits = random_batch(seed=6, ignore_fraction=0.0)
    pixel_weights = np.random.default_rng(6).uniform(0.0, 2.0, size=ids.shape).astype("float32")
    config = SegmentationLossConfig(CLASSES, from_logits=True)
    one_hot, valid = reference_inputs(ids)
    expected = reference_loss(
        "dice_ce", one_hot, softmax(logits.astype("float64")), pixel_weights, {}
    )
    value = SegmentationLoss("dice_ce", config)(ids, logits, sample_weight=pixel_weights)
    np.testing.assert_allclose(as_numpy(value), expected, rtol=2e-5)


def test_absent_class_scores_zero_unless_predicted():
    ids = np.zeros((1, 2, 2), "int32")
    config = SegmentationLossConfig(num_classes=2)
    loss = SegmentationLoss("dice", config)
    certain = np.stack([np.ones((1, 2, 2)), np.zeros((1, 2, 2))], axis=-1).astype("float32")
    hedged = np.stack([np.full((1, 2, 2), 0.7), np.full((1, 2, 2), 0.3)], -1).astype("float32")
    # Class 1 absent and not predicted: both Dice ratios are 1.
    np.testing.assert_allclose(as_numpy(loss(ids, certain)), 0.0, atol=1e-6)
    # Class 1 absent but predicted: (0 + s) / (1.2 + s) ~ 0, a loss ~1 for it;
    # class 0: 1 - 2(2.8) / (2.8 + 4) = 1.2 / 6.8.
    np.testing.assert_allclose(as_numpy(loss(ids, hedged)), (1.2 / 6.8 + 1.0) / 2, rtol=1e-5)


@pytest.mark.parametrize("name", ["dice", "focal_tversky", "focal"])
def test_gradient_matches_central_differences_of_reference(name):
    ids, logits = random_batch(seed=7, shape=(1, 3, 3), ignore_fraction=0.2)
    one_hot, valid = reference_inputs(ids)
    params = {"smooth": 1e-3, "focal_gamma": 2.0}
    config = SegmentationLossConfig(CLASSES, from_logits=True, ignore_index=IGNORE, **params)
    loss = SegmentationLoss(name, config)
    gradient = input_gradient(lambda values: loss(ids, values), keras.ops.convert_to_tensor(logits))

    def reference(values):
        return reference_loss(name, one_hot, softmax(values), valid, params)

    np.testing.assert_allclose(
        as_numpy(gradient), central_differences(reference, logits), rtol=2e-3, atol=2e-5
    )


@pytest.mark.parametrize("name", ["focal_tversky", "focal", "dice_ce"])
def test_saturated_probabilities_give_finite_gradient(name):
    ids = np.array([[[0, 1], [1, 1]]])
    perfect = np.eye(2, dtype="float32")[ids]
    config = SegmentationLossConfig(num_classes=2, focal_gamma=0.5, smooth=0.0)
    loss = SegmentationLoss(name, config)
    gradient = as_numpy(input_gradient(lambda values: loss(ids, values), perfect))
    assert np.all(np.isfinite(gradient))
    np.testing.assert_allclose(as_numpy(loss(ids, perfect)), 0.0, atol=1e-6)


def test_all_pixels_ignored_gives_zero_and_finite_gradient():
    ids = np.full((2, 4, 4), IGNORE)
    logits = np.random.default_rng(8).normal(size=(2, 4, 4, CLASSES)).astype("float32")
    config = SegmentationLossConfig(CLASSES, from_logits=True, ignore_index=IGNORE, smooth=0.0)
    # Between them these cover the Dice, focal-Tversky, cross-entropy and focal terms.
    for name in ("dice_ce", "focal_tversky", "focal"):
        loss = SegmentationLoss(name, config)
        gradient = as_numpy(input_gradient(lambda values, loss=loss: loss(ids, values), logits))
        assert as_numpy(loss(ids, logits)) == 0.0, name
        assert np.all(np.isfinite(gradient)), name


probability_maps = st.integers(0, 2**31 - 1).map(
    lambda seed: random_batch(seed, ignore_fraction=0.0)
)


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(probability_maps)
def test_tversky_with_equal_half_weights_equals_dice(batch):
    ids, logits = batch
    tversky = SegmentationLossConfig(CLASSES, from_logits=True, tversky_alpha=0.5, tversky_beta=0.5)
    np.testing.assert_allclose(
        as_numpy(SegmentationLoss("tversky", tversky)(ids, logits)),
        as_numpy(SegmentationLoss("dice", tversky)(ids, logits)),
        atol=2e-6,
    )


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(probability_maps, st.booleans())
def test_region_losses_lie_in_unit_interval(batch, per_image):
    ids, logits = batch
    config = SegmentationLossConfig(CLASSES, from_logits=True, per_image=per_image)
    for name in ("dice", "tversky", "focal_tversky"):
        value = as_numpy(SegmentationLoss(name, config, reduction=None)(ids, logits))
        assert np.all((value >= 0.0) & (value <= 1.0)), (name, value)
