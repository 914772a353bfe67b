import json
import re

import keras
import numpy as np
import pytest

import dl_techniques.losses  # noqa: F401  (makes saved losses resolvable, as a user would)
from dl_techniques.losses.core.testing.numeric import as_numpy
from dl_techniques.losses.vision.generalized_dice_focal_loss import GeneralizedDiceFocalLoss
from dl_techniques.losses.vision.generalized_dice_loss import GeneralizedDiceLoss
from dl_techniques.losses.vision.segmentation_loss import (
    GENERALIZED_DICE_NAMES,
    LOSS_NAMES,
    SegmentationLoss,
    create_segmentation_loss_function,
)
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig
from dl_techniques.losses.vision.segmentation_losses import SegmentationLosses

SPEC_NAMES = (
    "cross_entropy",
    "dice",
    "focal",
    "tversky",
    "focal_tversky",
    "lovasz",
    "lovasz_hinge",
    "dice_ce",
    "focal_dice",
    "focal_tversky_ce",
)


def small_batch(classes=3, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, classes, size=(2, 4, 4))
    logits = rng.normal(size=(2, 4, 4, classes)).astype("float32")
    return ids, logits


def test_factory_builds_every_name_of_the_spec():
    assert set(LOSS_NAMES) == set(SPEC_NAMES)
    for name in SPEC_NAMES:
        classes = 1 if name == "lovasz_hinge" else 3
        loss = create_segmentation_loss_function(name, SegmentationLossConfig(classes))
        assert isinstance(loss, SegmentationLoss)
        assert loss.loss_name == name


def test_unknown_name_raises_listing_the_valid_names():
    expected = "SegmentationLoss: `loss_name` must be one of .*; got loss_name='jaccard'"
    with pytest.raises(ValueError, match=expected) as error:
        create_segmentation_loss_function("jaccard", SegmentationLossConfig(3))
    assert all(name in str(error.value) for name in SPEC_NAMES)


def test_num_classes_differing_from_prediction_channels_raises():
    ids, logits = small_batch(classes=3)
    loss = create_segmentation_loss_function("dice", SegmentationLossConfig(4, from_logits=True))
    expected = r"SegmentationLoss.*3 channels.*num_classes=4.*\(2, 4, 4, 3\)"
    with pytest.raises(ValueError, match=expected):
        loss(ids, logits)


@pytest.mark.parametrize("bad_id", [3, -1, 1.5])
def test_class_ids_out_of_range_raise_when_eager(bad_id):
    ids, logits = small_batch()
    ids = ids.astype("float32")
    ids[0, 0, 0] = bad_id
    loss = create_segmentation_loss_function("lovasz", SegmentationLossConfig(3, from_logits=True))
    with pytest.raises(ValueError, match=r"SegmentationLoss: `y_true` .*\[0, 3\).*\(2, 4, 4\)"):
        loss(ids, logits)


def test_ignore_index_is_accepted_as_a_label():
    ids, logits = small_batch()
    ids[0, 0, 0] = 255
    config = SegmentationLossConfig(3, from_logits=True, ignore_index=255)
    assert np.isfinite(as_numpy(create_segmentation_loss_function("dice", config)(ids, logits)))


def test_one_hot_labels_outside_unit_interval_raise():
    ids, logits = small_batch()
    one_hot = np.eye(3, dtype="float32")[ids] * 2.0
    loss = create_segmentation_loss_function("dice", SegmentationLossConfig(3, from_logits=True))
    with pytest.raises(ValueError, match=r"SegmentationLoss: `y_true` .*\(2, 4, 4, 3\).*one-hot"):
        loss(one_hot, logits)


@pytest.mark.parametrize("name", ["dice", "cross_entropy", "lovasz", "lovasz_hinge"])
@pytest.mark.parametrize("bad_value", [1.5, -0.25])
def test_probabilities_outside_unit_interval_raise_with_from_logits_false(name, bad_value):
    ids, logits = small_batch(classes=2)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    if name == "lovasz_hinge":
        probabilities = probabilities[..., :1]
    probabilities[1, 2, 3, 0] = bad_value
    loss = create_segmentation_loss_function(name, SegmentationLossConfig(2, from_logits=False))
    expected = (
        r"SegmentationLoss: `y_pred` must lie in \[0.0, 1.0\]; 1 of \d+ entries "
        rf"\(shape {re.escape(str(probabilities.shape))}\).*from_logits=True"
    )
    with pytest.raises(ValueError, match=expected):
        loss(ids, probabilities)


def test_value_checks_run_on_the_first_eager_call_of_an_instance(monkeypatch):
    monkeypatch.delenv("DL_LOSSES_VALIDATE", raising=False)
    ids, logits = small_batch()
    bad_ids = ids.astype("float32")
    bad_ids[0, 0, 0] = 1.5
    loss = create_segmentation_loss_function("dice", SegmentationLossConfig(3, from_logits=True))
    assert np.isfinite(as_numpy(loss(ids, logits)))
    # Checked once: later eager calls read no values (no device sync per step).
    assert np.isfinite(as_numpy(loss(bad_ids, logits)))
    monkeypatch.setenv("DL_LOSSES_VALIDATE", "always")
    with pytest.raises(ValueError, match=r"SegmentationLoss: `y_true` .*\[0, 3\)"):
        loss(bad_ids, logits)


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("name", SPEC_NAMES)
def test_a_nan_logit_gives_a_nan_loss(name, per_image):
    ids, logits = small_batch()
    logits[0, 1, 2, 0] = np.nan
    classes = 3
    if name == "lovasz_hinge":
        ids, logits, classes = ids % 2, logits[..., :1], 2
    config = SegmentationLossConfig(classes, from_logits=True, per_image=per_image)
    loss = create_segmentation_loss_function(name, config)
    if per_image:
        values = as_numpy(loss.call(ids, logits))
        assert np.isnan(values[0]) and np.isfinite(values[1])
    else:
        assert np.isnan(as_numpy(loss(ids, logits)))


@pytest.mark.parametrize("name", ["dice", "tversky", "focal_tversky", "lovasz"])
def test_a_nan_probability_gives_a_nan_loss_not_a_perfect_score(name):
    # A perfect prediction scores 0; with one NaN entry the safe divide would
    # have taken its empty value (1, a perfect match) for every class.
    ids, _ = small_batch()
    probabilities = np.eye(3, dtype="float32")[ids]
    probabilities[1, 0, 0, 2] = np.nan
    config = SegmentationLossConfig(3, from_logits=False)
    assert np.isnan(as_numpy(create_segmentation_loss_function(name, config)(ids, probabilities)))


def test_label_shape_matching_neither_form_raises():
    _, logits = small_batch()
    loss = create_segmentation_loss_function("dice", SegmentationLossConfig(3, from_logits=True))
    expected = r"SegmentationLoss: `y_true`.*\(2, 4, 5\).*\(2, 4, 4, 3\)"
    with pytest.raises(ValueError, match=expected):
        loss(np.zeros((2, 4, 5), "int32"), logits)


def test_lovasz_hinge_needs_a_binary_config_and_one_channel():
    with pytest.raises(ValueError, match="SegmentationLoss: 'lovasz_hinge' is binary"):
        create_segmentation_loss_function("lovasz_hinge", SegmentationLossConfig(3))
    with pytest.raises(ValueError, match="SegmentationLoss: 'lovasz_hinge' has no classes"):
        create_segmentation_loss_function(
            "lovasz_hinge", SegmentationLossConfig(2, class_weights=(1.0, 2.0))
        )
    ids, logits = small_batch(classes=2)
    loss = create_segmentation_loss_function("lovasz_hinge", SegmentationLossConfig(2))
    with pytest.raises(ValueError, match=r"SegmentationLoss: 'lovasz_hinge'.*\(2, 4, 4, 2\)"):
        loss(ids, logits)


def test_multiclass_names_need_two_classes():
    with pytest.raises(ValueError, match="SegmentationLoss: 'dice' needs num_classes >= 2"):
        create_segmentation_loss_function("dice", SegmentationLossConfig(1))


@pytest.mark.parametrize(
    "bad",
    [
        {"num_classes": 0},
        {"num_classes": 2.0},
        {"from_logits": 1},
        {"smooth": -1e-3},
        {"focal_gamma": float("nan")},
        {"focal_alpha": 0.0},
        {"tversky_alpha": 0.0, "tversky_beta": 0.0},
        {"focal_tversky_gamma": 0.0},
        {"dice_weight": 0.0, "ce_weight": 0.0},
        {"ignore_index": 1.5},
        {"class_weights": (1.0, 2.0)},
        {"class_weights": (1.0, -1.0, 1.0)},
        {"class_weights": (0.0, 0.0, 0.0)},
        {"per_image": "yes"},
    ],
)
def test_invalid_config_raises_naming_the_argument(bad):
    arguments = {"num_classes": 3, **bad}
    field = next(iter(bad)) if "tversky_alpha" not in bad else "tversky_alpha"
    with pytest.raises(ValueError, match=f"SegmentationLossConfig: `{field}"):
        SegmentationLossConfig(**arguments)


def test_config_dict_with_an_unknown_field_raises():
    expected = r"SegmentationLossConfig: unknown field\(s\) \['classes'\]"
    with pytest.raises(ValueError, match=expected):
        SegmentationLoss("dice", {"num_classes": 3, "classes": 3})


def test_config_round_trips_through_json():
    config = SegmentationLossConfig(
        19, from_logits=True, focal_gamma=2.5, ignore_index=255, class_weights=[1] * 19
    )
    restored = SegmentationLossConfig.from_config(json.loads(json.dumps(config.get_config())))
    assert restored == config
    assert restored.class_weights == (1.0,) * 19


def test_loss_config_holds_the_name_and_a_plain_config_dict():
    config = SegmentationLossConfig(3, from_logits=True, tversky_beta=0.9, per_image=True)
    loss = SegmentationLoss("focal_tversky_ce", config, name="seg")
    loss_config = json.loads(json.dumps(loss.get_config()))
    assert loss_config["loss_name"] == "focal_tversky_ce"
    assert loss_config["config"] == config.get_config()
    rebuilt = SegmentationLoss.from_config(loss_config)
    assert (rebuilt.loss_name, rebuilt.config, rebuilt.name) == ("focal_tversky_ce", config, "seg")


def test_segmentation_losses_methods_equal_the_factory_losses():
    ids, logits = small_batch()
    config = SegmentationLossConfig(3, from_logits=True, ignore_index=0)
    losses = SegmentationLosses(config)
    for name in SPEC_NAMES:
        if name == "lovasz_hinge":
            continue
        expected = create_segmentation_loss_function(name, config)(ids, logits)
        np.testing.assert_allclose(as_numpy(getattr(losses, name)(ids, logits)), as_numpy(expected))
    binary = SegmentationLosses(SegmentationLossConfig(1, from_logits=True))
    labels, scores = ids % 2, logits[..., :1]
    expected = create_segmentation_loss_function("lovasz_hinge", binary.config)(labels, scores)
    np.testing.assert_allclose(as_numpy(binary.lovasz_hinge(labels, scores)), as_numpy(expected))


@pytest.mark.parametrize("per_image", [False, True])
def test_generalized_dice_methods_equal_the_named_losses(per_image):
    ids, logits = small_batch(classes=3, seed=5)
    ids[0, 0, 0] = 255
    config = SegmentationLossConfig(
        3,
        from_logits=True,
        smooth=1e-3,
        focal_gamma=1.5,
        focal_alpha=0.4,
        dice_weight=0.7,
        ce_weight=0.3,
        ignore_index=255,
        per_image=per_image,
    )
    losses = SegmentationLosses(config)
    shared = {"smooth_nr": 1e-3, "smooth_dr": 1e-3, "ignore_index": 255, "per_image": per_image}
    named = {
        "generalized_dice": GeneralizedDiceLoss(3, weight_type="square", **shared),
        "generalized_dice_focal": GeneralizedDiceFocalLoss(
            3, gamma=1.5, lambda_gdl=0.7, lambda_focal=0.3, focal_alpha=0.4, **shared
        ),
    }
    for name in GENERALIZED_DICE_NAMES:
        value = as_numpy(getattr(losses, name)(ids, logits))
        factory = create_segmentation_loss_function(name, config)(ids, logits)
        np.testing.assert_allclose(value, as_numpy(factory), rtol=1e-6)
        np.testing.assert_allclose(value, as_numpy(named[name](ids, logits)), rtol=1e-6)
        assert 0.0 < value < 2.0


def test_segmentation_losses_has_a_method_for_every_factory_name():
    losses = SegmentationLosses(SegmentationLossConfig(3))
    for name in LOSS_NAMES + GENERALIZED_DICE_NAMES:
        assert callable(getattr(losses, name))


def test_segmentation_losses_round_trips_through_keras_serialization():
    losses = SegmentationLosses(SegmentationLossConfig(5, smooth=0.5))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(losses))
    assert isinstance(restored, SegmentationLosses)
    assert restored.config == losses.config


def test_seed_usage_compiles_fits_saves_and_reloads(tmp_path):
    rng = np.random.default_rng(11)
    images = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    masks = rng.integers(0, 19, size=(4, 8, 8))
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(19, 1, activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss=create_segmentation_loss_function(
            "focal_tversky", config=SegmentationLossConfig(num_classes=19, focal_gamma=2.5)
        ),
    )
    history = model.fit(images, masks, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    path = tmp_path / "seed.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, SegmentationLoss)
    assert loaded.loss.config == SegmentationLossConfig(num_classes=19, focal_gamma=2.5)
    np.testing.assert_allclose(
        loaded.evaluate(images, masks, batch_size=4, verbose=0),
        model.evaluate(images, masks, batch_size=4, verbose=0),
        rtol=1e-6,
    )
