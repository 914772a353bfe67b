"""core.deep_supervision: the full-resolution target resized to each output, then the loss."""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.deep_supervision import DeepSupervision
from dl_techniques.losses.core.testing import LossCase
from dl_techniques.losses.core.testing.checks import check_jit_fit_step, check_saved_model
from dl_techniques.losses.core.testing.numeric import log_softmax
from dl_techniques.losses.core.testing.pytest_suite import (
    batched_reload_case,
    check_batched_fresh_process_reload,
)

RNG = np.random.default_rng(3)
IDS = RNG.integers(0, 3, size=(2, 4, 4)).astype("int32")
ONE_HOT = np.eye(3, dtype="float32")[IDS]
LOGITS = RNG.normal(size=(2, 2, 2, 3)).astype("float32")
PROBABILITIES = np.exp(log_softmax(LOGITS.astype("float64"))).astype("float32")


def _value(tensor):
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32")))


def numpy_cross_entropy(targets, log_probabilities, weights=None):
    per_pixel = -(targets * log_probabilities).sum(axis=-1)
    if weights is None:
        return per_pixel.mean()
    # Keras: the weighted values averaged over every pixel of the batch.
    return (per_pixel * weights).sum() / per_pixel.size


def test_class_ids_take_the_centre_of_each_block():
    loss = DeepSupervision(keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    value = _value(loss(IDS, LOGITS))

    centres = IDS[:, 1::2, 1::2]
    expected = numpy_cross_entropy(np.eye(3)[centres], log_softmax(LOGITS.astype("float64")))
    assert value == pytest.approx(expected, rel=1e-5)


def test_one_hot_targets_are_averaged_over_each_block():
    loss = DeepSupervision(keras.losses.CategoricalCrossentropy())

    value = _value(loss(ONE_HOT, PROBABILITIES))

    areas = ONE_HOT.reshape(2, 2, 2, 2, 2, 3).mean(axis=(2, 4))
    expected = numpy_cross_entropy(areas, np.log(PROBABILITIES.astype("float64")))
    assert value == pytest.approx(expected, rel=1e-5)


def test_a_per_pixel_weight_is_averaged_like_the_target_and_a_row_weight_kept():
    pixel_weights = RNG.uniform(0.0, 2.0, size=(2, 4, 4)).astype("float32")
    loss = DeepSupervision(keras.losses.CategoricalCrossentropy())
    areas = ONE_HOT.reshape(2, 2, 2, 2, 2, 3).mean(axis=(2, 4))
    log_p = np.log(PROBABILITIES.astype("float64"))

    pixel_value = _value(loss(ONE_HOT, PROBABILITIES, sample_weight=pixel_weights))
    row_value = _value(loss(ONE_HOT, PROBABILITIES, sample_weight=np.array([1.0, 0.0])))

    block_weights = pixel_weights.reshape(2, 2, 2, 2, 2).mean(axis=(2, 4))
    assert pixel_value == pytest.approx(numpy_cross_entropy(areas, log_p, block_weights), 1e-5)
    # A (B,) weight reaches the loss unchanged: the loss alone on the resized target.
    alone = keras.losses.CategoricalCrossentropy()(
        areas.astype("float32"), PROBABILITIES, sample_weight=np.array([1.0, 0.0])
    )
    assert row_value == pytest.approx(_value(alone), 1e-6)


def test_volumes_and_outputs_at_full_resolution():
    ids = RNG.integers(0, 2, size=(1, 4, 4, 4, 1)).astype("int32")
    logits = RNG.normal(size=(1, 2, 2, 2, 2)).astype("float32")
    inner = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    loss = DeepSupervision(inner, interpolation="nearest")

    value = _value(loss(ids, logits))
    centres = ids[:, 1::2, 1::2, 1::2, 0]
    expected = numpy_cross_entropy(np.eye(2)[centres], log_softmax(logits.astype("float64")))
    assert value == pytest.approx(expected, rel=1e-5)
    full = RNG.normal(size=(1, 4, 4, 4, 2)).astype("float32")
    assert _value(loss(ids, full)) == pytest.approx(_value(inner(ids, full)))


def test_bad_arguments_and_shapes_raise_naming_the_loss():
    with pytest.raises(ValueError, match="DeepSupervision: `loss` must be a keras.losses.Loss"):
        DeepSupervision("categorical_crossentropy")
    with pytest.raises(ValueError, match="DeepSupervision: `interpolation`"):
        DeepSupervision(keras.losses.CategoricalCrossentropy(), interpolation="bilinear")
    loss = DeepSupervision(keras.losses.CategoricalCrossentropy())
    with pytest.raises(ValueError, match=r"integer multiple.*\(2, 4, 4, 3\).*\(2, 3, 3, 3\)"):
        loss(ONE_HOT, np.zeros((2, 3, 3, 3), dtype="float32"))


def _case():
    return LossCase(
        DeepSupervision,
        {"loss": keras.losses.CategoricalCrossentropy(), "interpolation": "area"},
        ONE_HOT,
        PROBABILITIES,
        case_id="DeepSupervision",
    )


RELOAD_CASE = batched_reload_case(_case())


def test_a_model_compiled_with_it_saves_reloads_and_fits(tmp_path):
    check_saved_model(_case(), tmp_path)
    check_jit_fit_step(_case())


def test_a_model_compiled_with_it_reloads_in_a_fresh_process(tmp_path_factory):
    check_batched_fresh_process_reload([RELOAD_CASE], tmp_path_factory)


def test_a_multi_scale_model_trains_on_one_full_resolution_target():
    inputs = keras.Input((4, 4, 2))
    full = keras.layers.Conv2D(3, 1, activation="softmax")(inputs)
    half = keras.layers.Conv2D(3, 1, activation="softmax")(keras.layers.AveragePooling2D(2)(inputs))
    model = keras.Model(inputs, [full, half])
    supervised = DeepSupervision(keras.losses.CategoricalCrossentropy())
    model.compile(optimizer="sgd", loss=[supervised, supervised], loss_weights=[1.0, 0.5])
    images = RNG.normal(size=(2, 4, 4, 2)).astype("float32")

    history = model.fit(images, [ONE_HOT, ONE_HOT], epochs=1, verbose=0)

    assert np.isfinite(history.history["loss"][0])
