"""The stock compile/fit patterns the README documents for CLIP and SigLIP."""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.testing.numeric import log_softmax
from dl_techniques.losses.self_supervised.clip_contrastive_loss import CLIPContrastiveLoss
from dl_techniques.losses.self_supervised.contrastive_logits_layer import ContrastiveLogitsLayer
from dl_techniques.losses.self_supervised.siglip_contrastive_loss import SigLIPContrastiveLoss

BATCH = 8


def clip_reference(logits):
    """CLIP on final logits: mean of the image-row and text-row cross-entropies."""
    logits = np.asarray(logits, "float64")
    return -0.5 * (np.diag(log_softmax(logits)).mean() + np.diag(log_softmax(logits.T)).mean())


def siglip_reference(image, text, temperature, bias):
    image = np.asarray(image, "float64")
    text = np.asarray(text, "float64")
    image = image / np.linalg.norm(image, axis=1, keepdims=True)
    text = text / np.linalg.norm(text, axis=1, keepdims=True)
    logits = temperature * image @ text.T + bias
    signs = 2.0 * np.eye(len(logits)) - 1.0
    return np.logaddexp(0.0, -signs * logits).sum() / len(logits)


def paired_data():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(BATCH, 3))
    image = np.tanh(latent @ rng.normal(size=(3, 6))).astype("float32")
    text = np.tanh(latent @ rng.normal(size=(3, 5))).astype("float32")
    return {"image": image, "text": text}


def encoders():
    image = keras.Input((6,), name="image")
    text = keras.Input((5,), name="text")
    image_embeddings = keras.layers.Dense(4, name="image_encoder")(image)
    text_embeddings = keras.layers.Dense(4, name="text_encoder")(text)
    return (image, text), image_embeddings, text_embeddings


def logits_model(**layer_kwargs):
    inputs, image_embeddings, text_embeddings = encoders()
    logits = ContrastiveLogitsLayer(**layer_kwargs)((image_embeddings, text_embeddings))
    return keras.Model(inputs, logits)


class EmbeddingPairModel(keras.Model):
    """Outputs both embedding batches; the loss sees them whole."""

    def __init__(self):
        super().__init__()
        self.image_encoder = keras.layers.Dense(4)
        self.text_encoder = keras.layers.Dense(4)

    def call(self, inputs):
        return {
            "image_embeddings": self.image_encoder(inputs["image"]),
            "text_embeddings": self.text_encoder(inputs["text"]),
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Keras would apply a single loss to each dict output separately.
        return self.loss(y, y_pred, sample_weight)


def fit_once_per_epoch(model, data, labels, epochs=2):
    """Fits one batch per epoch; returns (losses, weights before, weights after)."""
    before = [np.array(weight) for weight in model.get_weights()]
    history = model.fit(data, labels, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)
    after = [np.array(weight) for weight in model.get_weights()]
    return history.history["loss"], before, after


def assert_trained(losses, before, after):
    assert np.all(np.isfinite(losses))
    assert all(np.all(np.isfinite(weight)) for weight in after)
    assert not all(np.array_equal(old, new) for old, new in zip(before, after, strict=True))


@pytest.mark.parametrize("labels", ["none", "dummy"])
def test_single_logits_output_trains_clip_with_or_without_labels(labels):
    data = paired_data()
    model = logits_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=CLIPContrastiveLoss(temperature=None))
    first_logits = keras.ops.convert_to_numpy(model(data))
    dummy = None if labels == "none" else np.zeros((BATCH,), "float32")

    losses, before, after = fit_once_per_epoch(model, data, dummy)

    # One batch per epoch: the first reported loss is that of the initial weights.
    np.testing.assert_allclose(losses[0], clip_reference(first_logits), rtol=1e-5)
    assert_trained(losses, before, after)


def test_dict_output_with_none_for_the_second_key_trains_clip():
    data = paired_data()
    inputs, image_embeddings, text_embeddings = encoders()
    logits = ContrastiveLogitsLayer()((image_embeddings, text_embeddings))
    outputs = {
        "logits_per_image": logits,
        "logits_per_text": keras.layers.Lambda(keras.ops.transpose)(logits),
    }
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss={"logits_per_image": CLIPContrastiveLoss(temperature=None), "logits_per_text": None},
    )
    first_logits = keras.ops.convert_to_numpy(model(data)["logits_per_image"])

    losses, before, after = fit_once_per_epoch(model, data, None)

    np.testing.assert_allclose(losses[0], clip_reference(first_logits), rtol=1e-5)
    assert_trained(losses, before, after)


def test_compute_loss_override_trains_siglip_on_embeddings():
    data = paired_data()
    model = EmbeddingPairModel()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=SigLIPContrastiveLoss(temperature=10.0, bias=-10.0, chunk_size=3),
    )
    first = {key: keras.ops.convert_to_numpy(value) for key, value in model(data).items()}

    losses, before, after = fit_once_per_epoch(model, data, None)

    expected = siglip_reference(first["image_embeddings"], first["text_embeddings"], 10.0, -10.0)
    np.testing.assert_allclose(losses[0], expected, rtol=1e-5)
    assert_trained(losses, before, after)


def test_learnable_scale_and_bias_train_siglip_from_a_single_output():
    data = paired_data()
    model = logits_model(initial_scale=10.0, use_bias=True, initial_bias=-10.0)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=SigLIPContrastiveLoss(temperature=None, bias=None),
    )
    image_encoder, text_encoder = model.get_layer("image_encoder"), model.get_layer("text_encoder")
    image_embeddings = keras.ops.convert_to_numpy(image_encoder(data["image"]))
    text_embeddings = keras.ops.convert_to_numpy(text_encoder(data["text"]))

    losses, before, after = fit_once_per_epoch(model, data, np.zeros((BATCH, 1), "float32"))

    np.testing.assert_allclose(
        losses[0], siglip_reference(image_embeddings, text_embeddings, 10.0, -10.0), rtol=1e-5
    )
    assert_trained(losses, before, after)
