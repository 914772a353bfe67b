import math

import keras
import numpy as np
import pytest

from dl_techniques.losses.self_supervised.clip_contrastive_loss import CLIPContrastiveLoss
from dl_techniques.losses.self_supervised.contrastive_logits_layer import ContrastiveLogitsLayer
from dl_techniques.losses.self_supervised.siglip_contrastive_loss import SigLIPContrastiveLoss


def normalized(embeddings):
    embeddings = np.asarray(embeddings, "float64")
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


def paired_model(**layer_kwargs):
    image = keras.Input((4,))
    text = keras.Input((4,))
    image_embeddings = keras.layers.Dense(3)(image)
    text_embeddings = keras.layers.Dense(3)(text)
    layer = ContrastiveLogitsLayer(**layer_kwargs)
    return keras.Model([image, text], layer((image_embeddings, text_embeddings))), layer


def paired_data(batch=6):
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(batch, 4)).astype("float32")
    return [latent, latent + 0.1 * rng.normal(size=(batch, 4)).astype("float32")]


def test_logits_are_scaled_cosine_similarities_plus_bias():
    rng = np.random.default_rng(1)
    image, text = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    layer = ContrastiveLogitsLayer(initial_scale=10.0, use_bias=True, initial_bias=-10.0)

    logits = keras.ops.convert_to_numpy(layer((image.astype("float32"), text.astype("float32"))))

    expected = 10.0 * normalized(image) @ normalized(text).T - 10.0
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_clip_layer_has_only_the_scale_as_trainable_weight():
    layer = ContrastiveLogitsLayer()
    assert [weight.name for weight in layer.trainable_weights] == ["log_scale"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.scale), 1.0 / 0.07, rtol=1e-6)


def test_scale_and_bias_change_in_fit():
    model, layer = paired_model(initial_scale=10.0, use_bias=True, initial_bias=-10.0)
    model.compile(
        optimizer=keras.optimizers.SGD(0.5), loss=SigLIPContrastiveLoss(temperature=None, bias=None)
    )
    assert {id(weight) for weight in layer.trainable_weights} <= {
        id(w) for w in model.trainable_weights
    }

    model.fit(paired_data(), epochs=3, batch_size=6, verbose=0)

    assert not math.isclose(float(keras.ops.convert_to_numpy(layer.log_scale)), math.log(10.0))
    # Five negatives per positive: the bias moves to make the negatives' logits smaller.
    assert float(keras.ops.convert_to_numpy(layer.bias)) != -10.0


def test_scale_is_clamped_to_max_scale_after_each_step():
    # Both modalities through one frozen encoder: every image matches its own
    # text best, so a larger scale always lowers the loss and a large step
    # overshoots the clamp (a small scale keeps the softmax, hence the gradient, unsaturated).
    image, text = keras.Input((4,)), keras.Input((4,))
    encoder = keras.layers.Dense(3, trainable=False)
    layer = ContrastiveLogitsLayer(initial_scale=1.5, max_scale=2.0)
    model = keras.Model([image, text], layer((encoder(image), encoder(text))))
    model.compile(optimizer=keras.optimizers.SGD(1e3), loss=CLIPContrastiveLoss(temperature=None))
    latent = paired_data()[0]

    model.fit([latent, latent], epochs=2, batch_size=6, verbose=0)

    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.scale), 2.0, rtol=1e-6)


def test_save_and_load_keep_the_learned_scale_and_bias(tmp_path):
    model, layer = paired_model(
        initial_scale=10.0, use_bias=True, initial_bias=-10.0, max_scale=50.0
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.5), loss=SigLIPContrastiveLoss(temperature=None, bias=None)
    )
    data = paired_data()
    model.fit(data, epochs=2, batch_size=6, verbose=0)
    path = tmp_path / "siglip.keras"

    model.save(path)
    loaded = keras.saving.load_model(path)

    loaded_layer = next(item for item in loaded.layers if isinstance(item, ContrastiveLogitsLayer))
    assert loaded_layer.get_config() == layer.get_config()
    for name in ("log_scale", "bias"):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(getattr(loaded_layer, name)),
            keras.ops.convert_to_numpy(getattr(layer, name)),
        )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.predict(data, verbose=0)),
        keras.ops.convert_to_numpy(model.predict(data, verbose=0)),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_scale": 200.0},
        {"initial_scale": 0.0},
        {"max_scale": -1.0},
        {"use_bias": 1},
        {"initial_bias": float("nan")},
    ],
)
def test_invalid_arguments_raise_naming_the_layer(kwargs):
    with pytest.raises(ValueError, match="ContrastiveLogitsLayer"):
        ContrastiveLogitsLayer(**kwargs)


def test_embeddings_of_different_batches_raise_naming_the_shapes():
    with pytest.raises(ValueError, match=r"ContrastiveLogitsLayer.*\(4, 3\).*\(5, 3\)"):
        ContrastiveLogitsLayer()((np.ones((4, 3), "float32"), np.ones((5, 3), "float32")))
