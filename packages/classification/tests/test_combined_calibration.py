import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.classification.brier_score_loss import BrierScoreLoss
from dl_techniques.losses.classification.combined_calibration_loss import CombinedCalibrationLoss
from dl_techniques.losses.classification.spiegelhalter_z_loss import SpiegelhalterZLoss
from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    gradient_dtype,
    hypothesis_examples,
    softmax,
)

EPSILON = 1e-7


def combined_reference(y_true, probs, alpha, weights=None, use_squared=True):
    """alpha * weighted mean Brier + (1 - alpha) * class-mean Z loss, in float64."""
    probs = np.asarray(probs, "float64")
    probs = probs.reshape(len(probs), -1)
    y_true = np.asarray(y_true, "float64").reshape(probs.shape)
    weights = np.ones(len(probs)) if weights is None else np.asarray(weights, "float64")
    total = weights.sum()
    brier = (weights * ((y_true - probs) ** 2).sum(axis=1)).sum() / total
    column = weights[:, None]
    numerator = (column * (y_true - probs) * (1.0 - 2.0 * probs)).sum(axis=0)
    variance = (column * (1.0 - 2.0 * probs) ** 2 * probs * (1.0 - probs)).sum(axis=0)
    z = numerator / np.sqrt(variance + EPSILON)
    z_loss = (z**2 / total if use_squared else np.abs(z) / np.sqrt(total)).mean()
    return alpha * brier + (1.0 - alpha) * z_loss


HAND_TRUE = np.array([1.0, 0.0, 1.0, 0.0], "float32")
HAND_PROBS = np.array([0.8, 0.4, 0.6, 0.1], "float32")


def test_hand_checked_value():
    # Brier: (0.04 + 0.16 + 0.16 + 0.01) / 4 = 0.0925
    # Z = -0.36 / sqrt(0.1344 + 1e-7) = -0.981980, Z^2 / 4 = 0.241071
    # 0.25 * 0.0925 + 0.75 * 0.241071 = 0.203928
    value = CombinedCalibrationLoss(alpha=0.25)(HAND_TRUE, HAND_PROBS)
    np.testing.assert_allclose(as_numpy(value), 0.203928, rtol=1e-5)


def test_endpoints_reduce_to_the_component_losses():
    rng = np.random.default_rng(2)
    y_true = np.eye(3, dtype="float32")[rng.integers(0, 3, size=9)]
    probs = softmax(rng.normal(size=(9, 3))).astype("float32")
    np.testing.assert_allclose(
        as_numpy(CombinedCalibrationLoss(alpha=1.0)(y_true, probs)),
        as_numpy(BrierScoreLoss()(y_true, probs)),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        as_numpy(CombinedCalibrationLoss(alpha=0.0, use_squared=False)(y_true, probs)),
        as_numpy(SpiegelhalterZLoss(use_squared=False)(y_true, probs)),
        rtol=1e-6,
    )


@pytest.mark.parametrize("use_squared", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_random_inputs_match_reference(use_squared, weighted):
    rng = np.random.default_rng(40 + weighted)
    logits = rng.normal(scale=1.5, size=(16, 4)).astype("float32")
    y_true = np.eye(4, dtype="float32")[rng.integers(0, 4, size=16)]
    weights = rng.uniform(0.0, 2.5, size=16).astype("float32") if weighted else None
    loss = CombinedCalibrationLoss(alpha=0.4, use_squared=use_squared, from_logits=True)
    np.testing.assert_allclose(
        as_numpy(loss(y_true, logits, sample_weight=weights)),
        combined_reference(
            y_true, softmax(logits.astype("float64")), 0.4, weights, use_squared=use_squared
        ),
        rtol=1e-4,
    )


def test_integer_weights_equal_repeated_rows():
    weights = np.array([1.0, 3.0, 0.0, 2.0], "float32")
    rows = np.array([0, 1, 1, 1, 3, 3])
    loss = CombinedCalibrationLoss(alpha=0.6)
    np.testing.assert_allclose(
        as_numpy(loss(HAND_TRUE, HAND_PROBS, sample_weight=weights)),
        as_numpy(loss(HAND_TRUE[rows], HAND_PROBS[rows])),
        rtol=1e-5,
    )


def test_zero_total_weight_gives_zero():
    value = CombinedCalibrationLoss()(HAND_TRUE, HAND_PROBS, sample_weight=np.zeros(4, "float32"))
    assert as_numpy(value) == 0.0


@pytest.mark.parametrize("use_squared", [True, False])
def test_gradient_matches_central_differences(use_squared):
    dtype = gradient_dtype()
    rng = np.random.default_rng(17)
    y_true = np.eye(3)[[0, 1, 2, 2, 1, 0, 0]]
    logits = rng.normal(size=(7, 3))
    weights = rng.uniform(0.5, 2.0, size=7)

    def reference(values):
        return combined_reference(y_true, softmax(values), 0.3, weights, use_squared=use_squared)

    loss = CombinedCalibrationLoss(
        alpha=0.3, use_squared=use_squared, from_logits=True, dtype=dtype
    )
    targets = keras.ops.convert_to_tensor(y_true, dtype=dtype)
    weight_tensor = keras.ops.convert_to_tensor(weights, dtype=dtype)
    gradient = input_gradient(
        lambda values: loss(targets, values, sample_weight=weight_tensor),
        keras.ops.convert_to_tensor(logits, dtype=dtype),
    )
    expected = central_differences(reference, logits)
    if dtype == "float64":
        np.testing.assert_allclose(as_numpy(gradient), expected, rtol=1e-6, atol=1e-8)
    else:
        scale = np.abs(expected).max()
        np.testing.assert_allclose(as_numpy(gradient), expected, rtol=1e-3, atol=1e-4 * scale)


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    probs=hnp.arrays("float32", (8,), elements=st.floats(0.0, 1.0, width=32)),
    labels=hnp.arrays("float32", (8,), elements=st.sampled_from([0.0, 1.0])),
    alpha=st.floats(0.0, 1.0),
)
def test_nonnegative_finite_and_matches_reference(probs, labels, alpha):
    targets = keras.ops.convert_to_tensor(labels)
    predictions = keras.ops.convert_to_tensor(probs)
    loss = CombinedCalibrationLoss(alpha=alpha)
    value = as_numpy(loss(targets, predictions))
    assert np.isfinite(value) and value >= 0.0
    # atol: Z^2 of denormal probabilities (~1e-73 in float64) underflows to 0 in float32.
    np.testing.assert_allclose(
        value, combined_reference(labels, probs, alpha), rtol=1e-4, atol=1e-30
    )
    gradient = as_numpy(input_gradient(lambda v: loss(targets, v), predictions))
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize("alpha", [-0.1, 1.01, float("nan"), float("inf"), "0.5", True, None])
def test_alpha_outside_unit_interval_is_a_value_error(alpha):
    with pytest.raises(ValueError, match=r"CombinedCalibrationLoss.*alpha"):
        CombinedCalibrationLoss(alpha=alpha)


@pytest.mark.parametrize("argument", ["use_squared", "from_logits"])
def test_non_bool_flags_are_a_value_error(argument):
    with pytest.raises(ValueError, match=rf"CombinedCalibrationLoss.*{argument}"):
        CombinedCalibrationLoss(**{argument: "true"})


def test_mismatched_shapes_are_a_value_error_naming_both():
    with pytest.raises(ValueError, match=r"CombinedCalibrationLoss.*\(5,\).*\(5, 3\)"):
        CombinedCalibrationLoss()(np.zeros(5), np.full((5, 3), 0.3))


def test_probabilities_outside_unit_interval_are_a_value_error():
    with pytest.raises(ValueError, match=r"CombinedCalibrationLoss.*y_pred.*from_logits"):
        CombinedCalibrationLoss()(HAND_TRUE, HAND_PROBS - 0.5)


def test_config_keeps_every_argument():
    loss = CombinedCalibrationLoss(alpha=0.2, use_squared=False, from_logits=True, name="cal")
    restored = CombinedCalibrationLoss.from_config(loss.get_config())
    assert restored.get_config() == {
        "name": "cal",
        "reduction": "sum_over_batch_size",
        "dtype": "float32",
        "alpha": 0.2,
        "use_squared": False,
        "from_logits": True,
    }
