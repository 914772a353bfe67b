"""AcmeLogCoshLoss against a numpy reference written from its formula."""

import keras
import numpy as np
import pytest

from acme_losses import AcmeLogCoshLoss


def reference_log_cosh(y_true, y_pred, scale):
    """Per-sample ``mean(s**2 * log(cosh(e / s)))`` in float64 numpy."""
    error = (np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)) / scale
    # log(cosh(x)) = logaddexp(x, -x) - log(2), finite for any finite x.
    per_element = scale**2 * (np.logaddexp(error, -error) - np.log(2.0))
    return per_element.reshape(per_element.shape[0], -1).mean(axis=1)


def per_sample(loss, y_true, y_pred):
    loss = AcmeLogCoshLoss(scale=loss.scale, reduction=None)
    return keras.ops.convert_to_numpy(loss(y_true, y_pred))


def test_hand_checked_value():
    loss = AcmeLogCoshLoss(scale=1.0)
    value = loss(np.array([[0.0, 0.0]]), np.array([[0.0, 1.0]]))
    # (log(cosh(0)) + log(cosh(1))) / 2 = (0 + 0.4337808) / 2
    np.testing.assert_allclose(keras.ops.convert_to_numpy(value), 0.2168904, rtol=1e-6)


def test_random_values_match_reference():
    rng = np.random.default_rng(3)
    y_true = rng.normal(size=(6, 3, 2)).astype("float32")
    y_pred = (y_true + rng.normal(scale=3.0, size=y_true.shape)).astype("float32")
    loss = AcmeLogCoshLoss(scale=0.7)
    np.testing.assert_allclose(
        per_sample(loss, y_true, y_pred), reference_log_cosh(y_true, y_pred, 0.7), rtol=1e-5
    )


def test_small_errors_are_quadratic_and_large_errors_linear():
    scale = 2.0
    y_true = np.zeros((2, 1), "float32")
    y_pred = np.array([[1e-3], [1e3]], "float32")
    values = per_sample(AcmeLogCoshLoss(scale=scale), y_true, y_pred)
    np.testing.assert_allclose(values[0], 0.5 * 1e-6, rtol=1e-5)
    np.testing.assert_allclose(values[1], scale * 1e3 - scale**2 * np.log(2.0), rtol=1e-6)


def test_sample_weight_scales_each_sample():
    y_true = np.zeros((2, 2), "float32")
    y_pred = np.array([[1.0, -1.0], [2.0, 0.0]], "float32")
    loss = AcmeLogCoshLoss(scale=1.0)
    weighted = keras.ops.convert_to_numpy(loss(y_true, y_pred, sample_weight=[0.0, 3.0]))
    expected = 3.0 * reference_log_cosh(y_true, y_pred, 1.0)[1] / 2
    np.testing.assert_allclose(weighted, expected, rtol=1e-6)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf"), "1.0", True])
def test_invalid_scale_is_rejected(scale):
    with pytest.raises(ValueError, match=r"AcmeLogCoshLoss: `scale`"):
        AcmeLogCoshLoss(scale=scale)


def test_mismatched_shapes_are_rejected_with_both_shapes():
    with pytest.raises(ValueError, match=r"AcmeLogCoshLoss.*\(2, 3\).*\(2, 4\)"):
        AcmeLogCoshLoss()(np.zeros((2, 3)), np.zeros((2, 4)))


def test_config_keeps_the_scale():
    loss = AcmeLogCoshLoss(scale=0.25, name="acme")
    rebuilt = AcmeLogCoshLoss.from_config(loss.get_config())
    assert rebuilt.scale == 0.25
    assert rebuilt.name == "acme"
