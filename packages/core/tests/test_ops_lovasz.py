"""core.ops.lovasz_absolute_errors: native and reference paths against a numpy definition.

The numpy reference walks the pixels in descending error order and adds each
error times the increase of the weighted Jaccard loss, from the definition of
the Lovasz extension (Berman et al., 2018); its gradient with respect to the
predictions is that increase times ``-sign(y - p)``.
"""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import ops
from dl_techniques.losses.core.testing.numeric import as_numpy, backend_gradient

FUNCTIONS = [ops.lovasz_absolute_errors, ops.lovasz_absolute_errors_reference]


def numpy_lovasz(labels, predictions, weights):
    """``(value (G, K), d value / d predictions (G, N, K))`` in float64, by definition."""
    labels = labels.astype("float64")
    predictions = predictions.astype("float64")
    groups, _, classes = predictions.shape
    values = np.zeros((groups, classes))
    gradient = np.zeros(predictions.shape)
    for group in range(groups):
        pixel_weights = weights[group].astype("float64")
        for label in range(classes):
            difference = labels[group, :, label] - predictions[group, :, label]
            errors = np.abs(difference) * (pixel_weights > 0)
            foreground = pixel_weights * labels[group, :, label]
            total = foreground.sum()
            seen_foreground = seen_background = previous = 0.0
            for pixel in np.argsort(-errors, kind="stable"):
                seen_foreground += foreground[pixel]
                seen_background += pixel_weights[pixel] - foreground[pixel]
                union = total + seen_background
                current = 1.0 - (total - seen_foreground) / union if union > 0 else 0.0
                values[group, label] += errors[pixel] * (current - previous)
                slope = -np.sign(difference[pixel]) * (pixel_weights[pixel] > 0)
                gradient[group, pixel, label] = (current - previous) * slope
                previous = current
    return values, gradient


def random_inputs(seed, shape=(2, 9, 3), soft=False):
    rng = np.random.default_rng(seed)
    predictions = rng.uniform(size=shape).astype("float32")
    labels = np.eye(shape[-1], dtype="float32")[rng.integers(0, shape[-1], size=shape[:-1])]
    if soft:
        labels = (0.8 * labels + 0.2 * rng.uniform(size=shape)).astype("float32")
    weights = rng.integers(0, 3, size=shape[:-1]).astype("float32")
    return labels, predictions, weights


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("soft", [False, True])
def test_lovasz_absolute_errors_matches_numpy_value_and_gradient(function, weighted, soft):
    labels, predictions, weights = random_inputs(seed=1 + weighted + 2 * soft, soft=soft)
    given = weights if weighted else None
    pixel_weights = weights if weighted else np.ones_like(weights)

    values = as_numpy(function(labels, keras.ops.convert_to_tensor(predictions), given))
    gradient = backend_gradient(lambda x: keras.ops.sum(function(labels, x, given)), predictions)

    expected_values, expected_gradient = numpy_lovasz(labels, predictions, pixel_weights)
    np.testing.assert_allclose(values, expected_values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_lovasz_absolute_errors_compiled_gradient_matches_numpy(function):
    labels, predictions, weights = random_inputs(seed=5, shape=(1, 40, 4))

    gradient = backend_gradient(
        lambda x: keras.ops.sum(function(labels, x, weights)), predictions, compiled=True
    )

    np.testing.assert_allclose(
        gradient, numpy_lovasz(labels, predictions, weights)[1], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_tied_errors_give_the_value_of_the_definition_and_finite_gradients(function):
    # Hard predictions: every error is 0 or 1, so most pixels tie.
    rng = np.random.default_rng(11)
    labels = np.eye(3, dtype="float32")[rng.integers(0, 3, size=(2, 12))]
    predictions = np.eye(3, dtype="float32")[rng.integers(0, 3, size=(2, 12))]
    weights = np.ones((2, 12), "float32")

    values = as_numpy(function(labels, keras.ops.convert_to_tensor(predictions)))
    gradient = backend_gradient(lambda x: keras.ops.sum(function(labels, x)), predictions)

    np.testing.assert_allclose(
        values, numpy_lovasz(labels, predictions, weights)[0], rtol=1e-6, atol=1e-7
    )
    assert np.all(np.isfinite(gradient))


def test_the_reference_splits_a_tie_in_proportion_to_the_weights():
    # One class, pixels [fg, bg, bg] with equal errors 0.5 and weights [1, 2, 1]:
    # the block takes the loss from 0 to 1 - 0 / (1 + 3) = 1, shared 1:2:1.
    labels = np.array([[[1.0], [0.0], [0.0]]], "float32")
    predictions = np.full((1, 3, 1), 0.5, "float32")
    weights = np.array([[1.0, 2.0, 1.0]], "float32")

    gradient = backend_gradient(
        lambda x: keras.ops.sum(ops.lovasz_absolute_errors_reference(labels, x, weights)),
        predictions,
    )

    np.testing.assert_allclose(gradient[0, :, 0], [-0.25, 0.5, 0.25], rtol=1e-6)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_lovasz_absolute_errors_propagates_nan(function):
    labels, predictions, _ = random_inputs(seed=6)
    predictions[0, 2, 1] = np.nan

    values = as_numpy(function(labels, keras.ops.convert_to_tensor(predictions)))

    assert np.isnan(values[0, 1])
    assert np.all(np.isfinite(values[1]))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_group_without_weight_gives_zero(function):
    labels, predictions, weights = random_inputs(seed=7)
    weights[1] = 0.0

    values = as_numpy(function(labels, keras.ops.convert_to_tensor(predictions), weights))

    np.testing.assert_array_equal(values[1], np.zeros(3))


def test_lovasz_absolute_errors_is_native_on_torch_only():
    assert ops.native_backends("lovasz_absolute_errors") == ("torch",)
