import math
import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    hypothesis_examples,
    log_softmax,
)
from dl_techniques.losses.self_supervised.clip_contrastive_loss import CLIPContrastiveLoss


def smoothed_cross_entropy(rows, smoothing):
    """Row i against label i, labels smoothed as Keras: (1 - e) one_hot + e / K."""
    classes = rows.shape[1]
    targets = (1.0 - smoothing) * np.eye(classes) + smoothing / classes
    return -(targets * log_softmax(rows)).sum(axis=1)


def clip_reference(logits_per_image, logits_per_text=None, temperature=None, smoothing=0.0):
    """Per-sample CLIP loss in float64: the mean of the two row cross-entropies."""
    logits_per_image = np.asarray(logits_per_image, "float64")
    if logits_per_text is None:
        logits_per_text = logits_per_image.T
    logits_per_text = np.asarray(logits_per_text, "float64")
    scale = 1.0 if temperature is None else 1.0 / temperature
    return 0.5 * (
        smoothed_cross_entropy(scale * logits_per_image, smoothing)
        + smoothed_cross_entropy(scale * logits_per_text, smoothing)
    )


def normalized(embeddings):
    embeddings = np.asarray(embeddings, "float64")
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


def clip_embeddings_reference(image, text, temperature, smoothing=0.0):
    return clip_reference(normalized(image) @ normalized(text).T, None, temperature, smoothing)


def embeddings(image, text):
    return {
        "image_embeddings": np.asarray(image, "float32"),
        "text_embeddings": np.asarray(text, "float32"),
    }


SIGNS = np.where(np.random.default_rng(0).random((5, 3)) < 0.5, -1.0, 1.0).astype("float32")


def test_hand_checked_value_of_a_diagonal_matrix():
    # Each row [2, 0]: CE = log(e^2 + 1) - 2 = log(1 + e^-2) = 0.126928; both directions alike.
    loss = CLIPContrastiveLoss(temperature=None)
    np.testing.assert_allclose(as_numpy(loss(None, [[2.0, 0.0], [0.0, 2.0]])), 0.126928, rtol=1e-5)


def test_hand_checked_temperature_and_label_smoothing():
    # Zero logits: every CE is log(2) whatever the smoothing; with temperature 0.5,
    # logits [[1, 0], [0, 1]] -> [[2, 0], [0, 2]]; smoothing 0.2 puts 0.9 on the label
    # and 0.1 on the other: 0.9 * log(1 + e^-2) + 0.1 * (2 + log(1 + e^-2)) = 0.326928.
    loss = CLIPContrastiveLoss(temperature=0.5, label_smoothing=0.2)
    np.testing.assert_allclose(
        as_numpy(loss(None, np.eye(2, dtype="float32"))), 0.326928, rtol=1e-5
    )


@pytest.mark.parametrize("form", ["matrix", "dict", "tuple"])
def test_logits_forms_match_the_reference_per_sample(form):
    rng = np.random.default_rng(1)
    logits_per_image = rng.normal(scale=2.0, size=(5, 5)).astype("float32")
    # Deliberately not the transpose, so each direction is checked on its own.
    logits_per_text = rng.normal(scale=2.0, size=(5, 5)).astype("float32")
    loss = CLIPContrastiveLoss(temperature=0.7, label_smoothing=0.1, reduction=None)
    if form == "matrix":
        y_pred, expected_text = logits_per_image, None
    elif form == "dict":
        y_pred = {"logits_per_image": logits_per_image, "logits_per_text": logits_per_text}
        expected_text = logits_per_text
    else:
        y_pred, expected_text = (logits_per_image, logits_per_text), logits_per_text

    np.testing.assert_allclose(
        as_numpy(loss(None, y_pred)),
        clip_reference(logits_per_image, expected_text, temperature=0.7, smoothing=0.1),
        rtol=1e-5,
        atol=1e-6,
    )


def test_embeddings_are_l2_normalised_then_compared_by_cosine():
    rng = np.random.default_rng(2)
    image, text = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    # Rescaling rows leaves cosine similarities, hence the loss, unchanged.
    scaled_image = image * rng.uniform(0.1, 10.0, size=(6, 1))
    loss = CLIPContrastiveLoss(temperature=0.1, reduction=None)

    np.testing.assert_allclose(
        as_numpy(loss(np.zeros(6), embeddings(scaled_image, text))),
        clip_embeddings_reference(image, text, temperature=0.1),
        rtol=1e-5,
        atol=1e-6,
    )


def test_ignores_y_true_and_averages_over_the_batch():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 4)).astype("float32")
    loss = CLIPContrastiveLoss(temperature=None)

    value = as_numpy(loss(rng.normal(size=(4, 3)), logits))

    np.testing.assert_allclose(value, clip_reference(logits).mean(), rtol=1e-5)


def test_gradient_wrt_embeddings_matches_finite_differences():
    rng = np.random.default_rng(4)
    image, text = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    loss = CLIPContrastiveLoss(temperature=0.5, label_smoothing=0.1)

    gradient = input_gradient(
        lambda values: loss(
            None, {"image_embeddings": values, "text_embeddings": text.astype("float32")}
        ),
        keras.ops.convert_to_tensor(image.astype("float32")),
    )

    expected = central_differences(
        lambda values: clip_embeddings_reference(values, text, 0.5, 0.1).mean(), image
    )
    np.testing.assert_allclose(as_numpy(gradient), expected, rtol=2e-3, atol=2e-5)


def test_gradient_wrt_a_logits_matrix_matches_finite_differences():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(4, 4))
    loss = CLIPContrastiveLoss(temperature=None)

    gradient = input_gradient(
        lambda values: loss(None, values), keras.ops.convert_to_tensor(logits.astype("float32"))
    )

    expected = central_differences(lambda values: clip_reference(values).mean(), logits)
    np.testing.assert_allclose(as_numpy(gradient), expected, rtol=2e-3, atol=2e-5)


def test_coincident_embeddings_give_log_batch_and_finite_gradients():
    # All pairs score alike, so every row is uniform: CE = log(B) = log(4).
    same = np.ones((4, 3), dtype="float32")
    zero_rows = np.zeros((4, 3), dtype="float32")
    loss = CLIPContrastiveLoss(temperature=0.07)
    for image in (same, zero_rows):
        np.testing.assert_allclose(
            as_numpy(loss(None, embeddings(image, same))), math.log(4), rtol=1e-5
        )
        gradient = input_gradient(
            lambda values: loss(None, {"image_embeddings": values, "text_embeddings": same}),
            keras.ops.convert_to_tensor(image),
        )
        assert np.all(np.isfinite(as_numpy(gradient)))


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(
    hnp.arrays("float32", (5, 3), elements=st.floats(0.25, 3.0, width=32)),
    hnp.arrays("float32", (5, 3), elements=st.floats(0.25, 3.0, width=32)),
    st.floats(0.05, 2.0),
)
def test_symmetric_under_swapping_modalities(image, text, temperature):
    # Magnitudes >= 0.25 keep every row's norm well above the 1e-12 floor.
    image, text = image * SIGNS, text * SIGNS[::-1]
    loss = CLIPContrastiveLoss(temperature=temperature, label_smoothing=0.1)

    forward = as_numpy(loss(None, embeddings(image, text)))
    swapped = as_numpy(loss(None, embeddings(text, image)))
    transposed = as_numpy(
        loss(None, normalized(image).astype("float32") @ normalized(text).T.astype("float32"))
    )

    np.testing.assert_allclose(swapped, forward, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(transposed, forward, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        forward,
        clip_embeddings_reference(image, text, temperature, 0.1).mean(),
        rtol=1e-4,
        atol=1e-5,
    )


def test_non_square_logits_raise_naming_the_loss_and_shape():
    with pytest.raises(ValueError, match=r"CLIPContrastiveLoss.*logits_per_image.*\(3, 4\)"):
        CLIPContrastiveLoss()(None, np.zeros((3, 4), dtype="float32"))


def test_batch_mismatch_between_modalities_raises_naming_both_shapes():
    pattern = r"CLIPContrastiveLoss.*" + re.escape("(4, 8)") + r".*" + re.escape("(5, 8)")
    with pytest.raises(ValueError, match=pattern):
        CLIPContrastiveLoss()(None, embeddings(np.ones((4, 8)), np.ones((5, 8))))


def test_logits_per_text_of_another_batch_raises():
    pattern = r"CLIPContrastiveLoss.*" + re.escape("(3, 3)") + r".*" + re.escape("(2, 2)")
    with pytest.raises(ValueError, match=pattern):
        CLIPContrastiveLoss()(None, (np.ones((3, 3), "float32"), np.ones((2, 2), "float32")))


def test_unknown_dict_keys_raise():
    with pytest.raises(ValueError, match=r"CLIPContrastiveLoss.*keys.*\['image', 'text'\]"):
        CLIPContrastiveLoss()(None, {"image": np.ones((2, 2)), "text": np.ones((2, 2))})
