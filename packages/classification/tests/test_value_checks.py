"""Value checks of every classification loss and metric (core.validation rules).

Targets other than the documented format and probabilities outside [0, 1]
with ``from_logits=False`` raise a ``ValueError`` naming the loss and the
argument, on the first eager call of an instance (every eager call with
``DL_LOSSES_VALIDATE=always``); later eager calls read no values. NaN in
``y_pred`` is not a range error: it comes out as a NaN loss.
"""

import keras
import numpy as np
import pytest

from dl_techniques.losses.classification import (
    AccuracyLoss,
    AnyLoss,
    BalancedAccuracyLoss,
    BrierScoreLoss,
    BrierScoreMetric,
    CapsuleMarginLoss,
    CombinedCalibrationLoss,
    DecoupledInformationLoss,
    F1Loss,
    FBetaLoss,
    FocalUncertaintyLoss,
    GeometricMeanLoss,
    GoodhartAwareLoss,
    MCCLoss,
    PrecisionLoss,
    RecallLoss,
    SpecificityLoss,
    SpiegelhalterZLoss,
    SpiegelhalterZMetric,
)
from dl_techniques.losses.core import validation
from dl_techniques.losses.core.testing.numeric import sigmoid

ONE_HOT = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0]], dtype="float32")
PROBS = np.array(
    [[0.7, 0.1, 0.1, 0.1], [0.2, 0.2, 0.5, 0.1], [0.25, 0.25, 0.25, 0.25]], dtype="float32"
)
# Bad targets from the issue: scaled and shifted one-hot rows.
BAD_TARGETS = {"two_times_one_hot": 2.0 * ONE_HOT, "one_hot_minus_half": ONE_HOT - 0.5}
BAD_PROBS = PROBS + np.array([[0.8, 0, 0, 0], [0, -0.3, 0, 0], [0, 0, 0, 0]], dtype="float32")


def jaccard_index(tp, fn, fp, tn):
    return tp / (tp + fn + fp + 1e-5)


# name -> factory of an instance whose y_pred holds probabilities.
PROBABILITY_LOSSES = {
    "AnyLoss": lambda: AnyLoss(jaccard_index),
    "AccuracyLoss": AccuracyLoss,
    "PrecisionLoss": PrecisionLoss,
    "RecallLoss": RecallLoss,
    "SpecificityLoss": SpecificityLoss,
    "F1Loss": F1Loss,
    "FBetaLoss": lambda: FBetaLoss(beta=2.0),
    "BalancedAccuracyLoss": BalancedAccuracyLoss,
    "GeometricMeanLoss": GeometricMeanLoss,
    "MCCLoss": MCCLoss,
    "BrierScoreLoss": BrierScoreLoss,
    "SpiegelhalterZLoss": SpiegelhalterZLoss,
    "CombinedCalibrationLoss": CombinedCalibrationLoss,
    "FocalUncertaintyLoss": lambda: FocalUncertaintyLoss(from_logits=False),
    "DecoupledInformationLoss": lambda: DecoupledInformationLoss(from_logits=False),
    "GoodhartAwareLoss": lambda: GoodhartAwareLoss(from_logits=False),
}
PROBABILITY_METRICS = {
    "BrierScoreMetric": BrierScoreMetric,
    "SpiegelhalterZMetric": lambda: SpiegelhalterZMetric(num_classes=4),
}
# Losses whose targets must be hard 0/1 ("hold"); the calibration losses take
# soft targets in [0, 1] by design ("lie").
TARGET_LOSSES = {
    **PROBABILITY_LOSSES,
    "CapsuleMarginLoss": CapsuleMarginLoss,
    "FocalUncertaintyLoss": FocalUncertaintyLoss,
    "DecoupledInformationLoss": DecoupledInformationLoss,
    "GoodhartAwareLoss": GoodhartAwareLoss,
}
SOFT_TARGET_LOSSES = ("BrierScoreLoss", "SpiegelhalterZLoss", "CombinedCalibrationLoss")


@pytest.fixture(autouse=True)
def _first_call_rule(monkeypatch):
    monkeypatch.delenv(validation.ENVIRONMENT_VARIABLE, raising=False)


def as_float(value):
    return float(keras.ops.convert_to_numpy(value))


# --- numpy references from the formulas -------------------------------------


def accuracy_loss_reference(y, p, scale=73.0):
    y, p = np.asarray(y, "float64"), np.asarray(p, "float64")
    yhat = sigmoid(scale * (p - 0.5))
    tp, fp = np.sum(y * yhat), np.sum((1 - y) * yhat)
    fn, tn = np.sum(y) - tp, np.sum(1 - y) - fp
    return 1.0 - (tp + tn) / (tp + fn + fp + tn + 1e-5)


def f1_loss_reference(y, p, scale=73.0):
    y, p = np.asarray(y, "float64"), np.asarray(p, "float64")
    yhat = sigmoid(scale * (p - 0.5))
    tp = np.sum(y * yhat)
    fn, fp = np.sum(y) - tp, np.sum((1 - y) * yhat)
    return 1.0 - 2 * tp / (2 * tp + fn + fp + 1e-5)


def brier_reference(y, p):
    return np.mean(np.sum((np.asarray(y, "float64") - np.asarray(p, "float64")) ** 2, axis=-1))


def z_terms(y, p):
    """Per-class Spiegelhalter numerator and variance sums, Spiegelhalter (1986)."""
    y, p = np.asarray(y, "float64"), np.asarray(p, "float64")
    numerator = np.sum((y - p) * (1 - 2 * p), axis=0)
    variance = np.sum((1 - 2 * p) ** 2 * p * (1 - p), axis=0)
    return numerator, variance


def z_loss_reference(y, p):
    numerator, variance = z_terms(y, p)
    return np.mean((numerator / np.sqrt(variance + 1e-7)) ** 2 / len(y))


def capsule_reference(y, lengths):
    y, lengths = np.asarray(y, "float64"), np.asarray(lengths, "float64")
    present = y * np.maximum(0.0, 0.9 - lengths) ** 2
    absent = 0.5 * (1 - y) * np.maximum(0.0, lengths - 0.1) ** 2
    return np.mean(np.sum(present + absent, axis=-1))


def cross_entropy_per_sample(y, p):
    p = np.asarray(p, "float64")
    p = np.clip(p / p.sum(axis=-1, keepdims=True), 1e-7, 1 - 1e-7)
    return -np.sum(np.asarray(y, "float64") * np.log(p), axis=-1)


@pytest.mark.parametrize("targets", list(BAD_TARGETS), ids=str)
@pytest.mark.parametrize("name", sorted(TARGET_LOSSES))
def test_targets_outside_zero_one_are_a_value_error(name, targets):
    rule = "lie in \\[0.0, 1.0\\]" if name in SOFT_TARGET_LOSSES else "hold .*0 or 1"
    with pytest.raises(ValueError, match=rf"^{name}: `y_true` must {rule}.*\(3, 4\)"):
        TARGET_LOSSES[name]()(BAD_TARGETS[targets], PROBS)


@pytest.mark.parametrize("targets", list(BAD_TARGETS), ids=str)
@pytest.mark.parametrize("name", sorted(PROBABILITY_METRICS))
def test_metric_targets_outside_zero_one_are_a_value_error(name, targets):
    with pytest.raises(ValueError, match=rf"^{name}: `y_true` must lie in \[0.0, 1.0\]"):
        PROBABILITY_METRICS[name]().update_state(BAD_TARGETS[targets], PROBS)


def test_capsule_vectors_with_bad_targets_are_a_value_error():
    vectors = np.full((3, 4, 2), 0.3, dtype="float32")
    with pytest.raises(ValueError, match=r"CapsuleMarginLoss: `y_true` must hold"):
        CapsuleMarginLoss()(ONE_HOT - 0.5, vectors)


@pytest.mark.parametrize("name", sorted(PROBABILITY_LOSSES))
def test_probabilities_outside_unit_interval_are_a_value_error(name):
    # 2 of 12 entries are outside: 1.5 and -0.1.
    pattern = (
        rf"^{name}: `y_pred` must lie in \[0.0, 1.0\]; 2 of 12 entries \(shape \(3, 4\)\) "
        r"are outside, from -0.1\d* to 1.5\. Pass from_logits=True"
    )
    with pytest.raises(ValueError, match=pattern):
        PROBABILITY_LOSSES[name]()(ONE_HOT, BAD_PROBS)


@pytest.mark.parametrize("name", sorted(PROBABILITY_METRICS))
def test_metric_probabilities_outside_unit_interval_are_a_value_error(name):
    with pytest.raises(ValueError, match=rf"^{name}: `y_pred` must lie in \[0.0, 1.0\].*2 of 12"):
        PROBABILITY_METRICS[name]().update_state(ONE_HOT, BAD_PROBS)


def test_logits_outside_unit_interval_are_accepted_with_from_logits():
    logits = (4.0 * BAD_PROBS).astype("float64")
    probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    brier = BrierScoreLoss(from_logits=True)(ONE_HOT, 4.0 * BAD_PROBS)
    np.testing.assert_allclose(as_float(brier), brier_reference(ONE_HOT, probs), rtol=1e-5)
    focal = FocalUncertaintyLoss(gamma=0.0, uncertainty_weight=0.0, from_logits=True)
    np.testing.assert_allclose(
        as_float(focal(ONE_HOT, 4.0 * BAD_PROBS)),
        np.mean(cross_entropy_per_sample(ONE_HOT, probs)),
        rtol=1e-5,
    )
    f1_loss = F1Loss(from_logits=True)(ONE_HOT, 4.0 * BAD_PROBS)
    np.testing.assert_allclose(
        as_float(f1_loss), f1_loss_reference(ONE_HOT, sigmoid(logits)), rtol=1e-5, atol=1e-6
    )


def test_negative_capsule_lengths_are_a_value_error():
    lengths = np.array([[0.9, 0.1, -0.2, 0.1]] * 3, dtype="float32")
    with pytest.raises(ValueError, match=r"^CapsuleMarginLoss: `y_pred` must lie in \[0.0, inf\]"):
        CapsuleMarginLoss()(ONE_HOT, lengths)


# --- first-eager-call rule -------------------------------------------------

WEIGHTS = np.array([1.0, 2.0, 0.5], dtype="float32")


def _weighted_cross_entropy(y, p):
    return np.sum(WEIGHTS * cross_entropy_per_sample(y, p)) / np.sum(WEIGHTS)


# id -> (factory, call(loss, y_true, y_pred) -> value, bad y_true, bad y_pred, reference)
FIRST_CALL_CASES = {
    "AccuracyLoss.__call__": (
        AccuracyLoss,
        lambda loss, y, p: loss(y, p),
        ONE_HOT,
        BAD_PROBS,
        accuracy_loss_reference,
    ),
    "AccuracyLoss.call": (
        AccuracyLoss,
        lambda loss, y, p: loss.call(y, p),
        2.0 * ONE_HOT,
        PROBS,
        accuracy_loss_reference,
    ),
    "BrierScoreLoss": (
        BrierScoreLoss,
        lambda loss, y, p: loss(y, p),
        ONE_HOT,
        BAD_PROBS,
        brier_reference,
    ),
    "SpiegelhalterZLoss": (
        SpiegelhalterZLoss,
        lambda loss, y, p: loss(y, p),
        ONE_HOT - 0.5,
        PROBS,
        z_loss_reference,
    ),
    "CombinedCalibrationLoss": (
        CombinedCalibrationLoss,
        lambda loss, y, p: loss(y, p),
        2.0 * ONE_HOT,
        PROBS,
        lambda y, p: 0.5 * brier_reference(y, p) + 0.5 * z_loss_reference(y, p),
    ),
    "CapsuleMarginLoss": (
        CapsuleMarginLoss,
        lambda loss, y, p: loss(y, p),
        2.0 * ONE_HOT,
        PROBS,
        capsule_reference,
    ),
    "FocalUncertaintyLoss": (
        lambda: FocalUncertaintyLoss(gamma=0.0, uncertainty_weight=0.0, from_logits=False),
        lambda loss, y, p: loss(y, p),
        ONE_HOT - 0.5,
        PROBS,
        lambda y, p: np.mean(cross_entropy_per_sample(y, p)),
    ),
    "DecoupledInformationLoss": (
        lambda: DecoupledInformationLoss(0.0, 0.0, from_logits=False),
        lambda loss, y, p: loss(y, p),
        2.0 * ONE_HOT,
        PROBS,
        lambda y, p: np.mean(cross_entropy_per_sample(y, p)),
    ),
    "GoodhartAwareLoss.sample_weight": (
        lambda: GoodhartAwareLoss(0.0, 0.0, from_logits=False),
        lambda loss, y, p: loss(y, p, sample_weight=WEIGHTS),
        ONE_HOT,
        BAD_PROBS * 0.5,
        _weighted_cross_entropy,
    ),
}


@pytest.mark.parametrize("case_id", sorted(FIRST_CALL_CASES))
def test_later_eager_calls_read_no_values(case_id):
    factory, call, bad_true, bad_pred, reference = FIRST_CALL_CASES[case_id]
    loss = factory()
    call(loss, ONE_HOT, PROBS)
    # The instance passed its first eager check; the bad input is computed.
    value = as_float(call(loss, bad_true, bad_pred))
    np.testing.assert_allclose(value, reference(bad_true, bad_pred), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case_id", sorted(FIRST_CALL_CASES))
def test_environment_variable_checks_every_eager_call(case_id, monkeypatch):
    monkeypatch.setenv(validation.ENVIRONMENT_VARIABLE, "always")
    factory, call, bad_true, bad_pred, _ = FIRST_CALL_CASES[case_id]
    loss = factory()
    call(loss, ONE_HOT, PROBS)
    with pytest.raises(ValueError, match=r"must (hold|lie)"):
        call(loss, bad_true, bad_pred)


@pytest.mark.parametrize("metric_class", [BrierScoreMetric, SpiegelhalterZMetric])
def test_metrics_check_the_first_update_only(metric_class):
    binary_true = np.array([1.0, 0.0, 1.0], dtype="float32")
    good = np.array([0.8, 0.3, 0.6], dtype="float32")
    bad = np.array([1.5, 0.3, 0.6], dtype="float32")
    metric = metric_class()
    metric.update_state(binary_true, good)
    metric.update_state(binary_true, bad)
    y = np.concatenate([binary_true, binary_true])
    p = np.concatenate([good, bad]).astype("float64")
    if metric_class is BrierScoreMetric:
        expected = np.mean((y - p) ** 2)
    else:
        # p (1 - p) of 1.5 is negative; the metric clamps it at 0.
        numerator = np.sum((y - p) * (1 - 2 * p))
        variance = np.sum((1 - 2 * p) ** 2 * np.maximum(p * (1 - p), 0.0))
        expected = numerator / np.sqrt(variance + 1e-7)
    np.testing.assert_allclose(as_float(metric.result()), expected, rtol=1e-5)


# --- NaN in, NaN out --------------------------------------------------------

NAN_LOSSES = {
    **PROBABILITY_LOSSES,
    "CapsuleMarginLoss": CapsuleMarginLoss,
    "FocalUncertaintyLoss.logits": FocalUncertaintyLoss,
    "DecoupledInformationLoss.logits": DecoupledInformationLoss,
    "GoodhartAwareLoss.logits": GoodhartAwareLoss,
}


@pytest.mark.parametrize("name", sorted(NAN_LOSSES))
def test_nan_prediction_gives_a_nan_loss(name):
    y_pred = PROBS.copy()
    y_pred[1, 2] = np.nan
    assert np.isnan(as_float(NAN_LOSSES[name]()(ONE_HOT, y_pred)))
