import math
import re

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
)
from dl_techniques.losses.self_supervised.siglip_contrastive_loss import SigLIPContrastiveLoss


def log_sigmoid(values):
    return -np.logaddexp(0.0, -values)


def siglip_reference(similarities, temperature, bias):
    """Per image row: -sum_j log_sigmoid(z_ij (t * S_ij + b)), z = 2 I - 1, float64."""
    similarities = np.asarray(similarities, "float64")
    logits = similarities * (1.0 if temperature is None else temperature)
    logits = logits + (0.0 if bias is None else bias)
    signs = 2.0 * np.eye(len(logits)) - 1.0
    return -log_sigmoid(signs * logits).sum(axis=1)


def normalized(embeddings):
    embeddings = np.asarray(embeddings, "float64")
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


def siglip_embeddings_reference(image, text, temperature, bias):
    return siglip_reference(normalized(image) @ normalized(text).T, temperature, bias)


def embeddings(image, text):
    return {
        "image_embeddings": np.asarray(image, "float32"),
        "text_embeddings": np.asarray(text, "float32"),
    }


def test_hand_checked_value_of_zero_logits():
    # Four pairs of -log_sigmoid(0) = log(2), summed and divided by B = 2, not B^2 = 4.
    loss = SigLIPContrastiveLoss(temperature=None, bias=None)
    np.testing.assert_allclose(
        as_numpy(loss(None, np.zeros((2, 2), "float32"))), 2 * math.log(2), rtol=1e-6
    )


def test_hand_checked_temperature_and_bias():
    # S = I (2 x 2), t = 2, b = -1: positives 2 - 1 = 1 -> log(1 + e^-1) = 0.313262;
    # negatives -1 -> -log_sigmoid(1) = 0.313262 too; four of them over B = 2.
    loss = SigLIPContrastiveLoss(temperature=2.0, bias=-1.0)
    np.testing.assert_allclose(
        as_numpy(loss(None, np.eye(2, dtype="float32"))), 2 * 0.313262, rtol=1e-5
    )


@pytest.mark.parametrize("form", ["matrix", "dict", "tuple"])
@pytest.mark.parametrize("chunk_size", [None, 2])
def test_similarity_forms_match_the_reference_per_row(form, chunk_size):
    rng = np.random.default_rng(1)
    similarities = rng.uniform(-1.0, 1.0, size=(5, 5)).astype("float32")
    loss = SigLIPContrastiveLoss(temperature=3.0, bias=-1.5, chunk_size=chunk_size, reduction=None)
    if form == "matrix":
        y_pred = similarities
    elif form == "dict":
        y_pred = {"logits_per_image": similarities, "logits_per_text": similarities.T}
    else:
        y_pred = (similarities, similarities.T)

    np.testing.assert_allclose(
        as_numpy(loss(None, y_pred)),
        siglip_reference(similarities, 3.0, -1.5),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("chunk_size", [None, 3, 7, 50])
def test_embeddings_match_the_reference_for_any_chunk_size(chunk_size):
    rng = np.random.default_rng(2)
    image, text = rng.normal(size=(7, 4)), rng.normal(size=(7, 4))
    loss = SigLIPContrastiveLoss(chunk_size=chunk_size, reduction=None)

    np.testing.assert_allclose(
        as_numpy(loss(np.zeros(7), embeddings(3.0 * image, text))),
        siglip_embeddings_reference(image, text, 10.0, -10.0),
        rtol=1e-5,
        atol=1e-5,
    )


def test_final_logits_are_used_as_they_are():
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=4.0, size=(4, 4)).astype("float32")
    loss = SigLIPContrastiveLoss(temperature=None, bias=None)

    np.testing.assert_allclose(
        as_numpy(loss(None, logits)), siglip_reference(logits, None, None).mean(), rtol=1e-5
    )


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_gradient_wrt_embeddings_matches_finite_differences(chunk_size):
    rng = np.random.default_rng(4)
    image, text = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    loss = SigLIPContrastiveLoss(temperature=4.0, bias=-2.0, chunk_size=chunk_size)
    image_tensor = keras.ops.convert_to_tensor(image.astype("float32"))
    text_tensor = keras.ops.convert_to_tensor(text.astype("float32"))

    image_gradient = input_gradient(
        lambda values: loss(None, {"image_embeddings": values, "text_embeddings": text_tensor}),
        image_tensor,
    )
    text_gradient = input_gradient(
        lambda values: loss(None, {"image_embeddings": image_tensor, "text_embeddings": values}),
        text_tensor,
    )

    expected_image = central_differences(
        lambda values: siglip_embeddings_reference(values, text, 4.0, -2.0).mean(), image
    )
    expected_text = central_differences(
        lambda values: siglip_embeddings_reference(image, values, 4.0, -2.0).mean(), text
    )
    np.testing.assert_allclose(as_numpy(image_gradient), expected_image, rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(as_numpy(text_gradient), expected_text, rtol=2e-3, atol=2e-5)


def test_coincident_embeddings_give_finite_values_and_gradients():
    # Identical rows: every cosine similarity is 1; zero rows: every similarity is 0.
    same = np.ones((4, 3), dtype="float32")
    loss = SigLIPContrastiveLoss(chunk_size=3)
    for image, similarity in ((same, 1.0), (np.zeros((4, 3), dtype="float32"), 0.0)):
        np.testing.assert_allclose(
            as_numpy(loss(None, embeddings(image, same))),
            siglip_reference(np.full((4, 4), similarity), 10.0, -10.0).mean(),
            rtol=1e-5,
        )
        gradient = input_gradient(
            lambda values: loss(None, {"image_embeddings": values, "text_embeddings": same}),
            keras.ops.convert_to_tensor(image),
        )
        assert np.all(np.isfinite(as_numpy(gradient)))


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(st.integers(1, 9), st.integers(0, 2**16))
def test_value_unchanged_by_chunk_size(chunk_size, seed):
    rng = np.random.default_rng(seed)
    image, text = rng.normal(size=(9, 3)), rng.normal(size=(9, 3))
    chunked = SigLIPContrastiveLoss(
        temperature=5.0, bias=-3.0, chunk_size=chunk_size, reduction=None
    )
    whole = SigLIPContrastiveLoss(temperature=5.0, bias=-3.0, reduction=None)

    chunked_value = as_numpy(chunked(None, embeddings(image, text)))

    np.testing.assert_allclose(
        chunked_value, as_numpy(whole(None, embeddings(image, text))), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        chunked_value, siglip_embeddings_reference(image, text, 5.0, -3.0), rtol=1e-5, atol=1e-5
    )


def test_non_square_logits_raise_naming_the_loss_and_shape():
    with pytest.raises(ValueError, match=r"SigLIPContrastiveLoss.*logits_per_image.*\(2, 5\)"):
        SigLIPContrastiveLoss()(None, np.zeros((2, 5), dtype="float32"))


def test_batch_mismatch_between_modalities_raises_naming_both_shapes():
    pattern = r"SigLIPContrastiveLoss.*" + re.escape("(6, 4)") + r".*" + re.escape("(3, 4)")
    with pytest.raises(ValueError, match=pattern):
        SigLIPContrastiveLoss()(None, embeddings(np.ones((6, 4)), np.ones((3, 4))))


def test_embedding_dimension_mismatch_raises():
    pattern = r"SigLIPContrastiveLoss.*" + re.escape("(3, 4)") + r".*" + re.escape("(3, 5)")
    with pytest.raises(ValueError, match=pattern):
        SigLIPContrastiveLoss()(None, embeddings(np.ones((3, 4)), np.ones((3, 5))))
