import inspect
import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.classification.accuracy_loss import AccuracyLoss
from dl_techniques.losses.classification.balanced_accuracy_loss import BalancedAccuracyLoss
from dl_techniques.losses.classification.f1_loss import F1Loss
from dl_techniques.losses.classification.fbeta_loss import FBetaLoss
from dl_techniques.losses.classification.geometric_mean_loss import GeometricMeanLoss
from dl_techniques.losses.classification.mcc_loss import MCCLoss
from dl_techniques.losses.classification.precision_loss import PrecisionLoss
from dl_techniques.losses.classification.recall_loss import RecallLoss
from dl_techniques.losses.classification.specificity_loss import SpecificityLoss
from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    float64_enabled,
    hypothesis_examples,
    sigmoid,
)

EPS = 1e-5


def soft_confusion_reference(
    y_true, y_pred, sample_weight=None, scale=73.0, from_logits=False, average="micro"
):
    """TP, FN, FP, TN, N from the paper's formulas, in float64."""
    y = np.asarray(y_true, "float64")
    p = np.asarray(y_pred, "float64")
    if y.ndim == 1:
        y, p = y[:, None], p[:, None]
    if from_logits:
        p = sigmoid(p)
    yhat = sigmoid(scale * (p - 0.5))
    if sample_weight is None:
        w = np.ones_like(y)
    else:
        w = np.asarray(sample_weight, "float64")
        w = np.broadcast_to(w[:, None] if w.ndim == 1 else w, y.shape)
    axis = None if average == "micro" else 0
    tp = np.sum(w * y * yhat, axis=axis)
    sum_y = np.sum(w * y, axis=axis)
    sum_yhat = np.sum(w * yhat, axis=axis)
    n = np.sum(w, axis=axis)
    return tp, sum_y - tp, sum_yhat - tp, n - sum_y - sum_yhat + tp, n


def f_beta(beta):
    b2 = beta**2
    return lambda tp, fn, fp, tn, n: (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp + EPS)


# Each metric written from LOSSES.md; a loss is 1 - metric.
METRICS = {
    "accuracy": lambda tp, fn, fp, tn, n: (tp + tn) / (n + EPS),
    "precision": lambda tp, fn, fp, tn, n: tp / (tp + fp + EPS),
    "recall": lambda tp, fn, fp, tn, n: tp / (tp + fn + EPS),
    "specificity": lambda tp, fn, fp, tn, n: tn / (tn + fp + EPS),
    "f1": f_beta(1.0),
    "f2": f_beta(2.0),
    "f_half": f_beta(0.5),
    "balanced_accuracy": lambda tp, fn, fp, tn, n: (
        (tp / (tp + fn + EPS) + tn / (tn + fp + EPS)) / 2
    ),
    "geometric_mean": lambda tp, fn, fp, tn, n: np.sqrt(
        tp / (tp + fn + EPS) * tn / (tn + fp + EPS) + EPS
    ),
    "mcc": lambda tp, fn, fp, tn, n: (
        ((tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + EPS) + 1) / 2
    ),
}

LOSSES = {
    "accuracy": lambda **kw: AccuracyLoss(**kw),
    "precision": lambda **kw: PrecisionLoss(**kw),
    "recall": lambda **kw: RecallLoss(**kw),
    "specificity": lambda **kw: SpecificityLoss(**kw),
    "f1": lambda **kw: F1Loss(**kw),
    "f2": lambda **kw: FBetaLoss(beta=2.0, **kw),
    "f_half": lambda **kw: FBetaLoss(beta=0.5, **kw),
    "balanced_accuracy": lambda **kw: BalancedAccuracyLoss(**kw),
    "geometric_mean": lambda **kw: GeometricMeanLoss(**kw),
    "mcc": lambda **kw: MCCLoss(**kw),
}
CLASSES = (
    AccuracyLoss,
    PrecisionLoss,
    RecallLoss,
    SpecificityLoss,
    F1Loss,
    FBetaLoss,
    BalancedAccuracyLoss,
    GeometricMeanLoss,
    MCCLoss,
)


def loss_reference(metric, y_true, y_pred, **kwargs):
    return 1.0 - np.mean(METRICS[metric](*soft_confusion_reference(y_true, y_pred, **kwargs)))


def random_labels(rng, shape):
    labels = rng.integers(0, 2, size=shape).astype("float32")
    labels[0], labels[1] = 1.0, 0.0
    return labels


# Labels 1, 1, 1, 0, 0 against confident predictions 1, 1, 0, 0, 0:
# TP = 2 (rows 0, 1), FN = 1 (row 2), FP = 0, TN = 2 (rows 3, 4), N = 5.
HAND_LABELS = np.array([1.0, 1.0, 1.0, 0.0, 0.0], "float32")
HAND_PREDICTIONS = np.array([1.0, 1.0, 0.0, 0.0, 0.0], "float32")
HAND_EXPECTED = {
    "accuracy": 1 - 4 / (5 + EPS),
    "precision": 1 - 2 / (2 + EPS),
    "recall": 1 - 2 / (3 + EPS),
    "specificity": 1 - 2 / (2 + EPS),
    "f1": 1 - 4 / (4 + 1 + EPS),
    "f2": 1 - 10 / (10 + 4 + EPS),
    "f_half": 1 - 2.5 / (2.5 + 0.25 + EPS),
    "balanced_accuracy": 1 - (2 / (3 + EPS) + 2 / (2 + EPS)) / 2,
    "geometric_mean": 1 - math.sqrt(2 / (3 + EPS) * 2 / (2 + EPS) + EPS),
    # mcc = (2 * 2 - 0 * 1) / sqrt(2 * 3 * 2 * 3 + eps) ~ 2/3; loss 1 - (mcc + 1) / 2
    "mcc": 1 - (4 / math.sqrt(36 + EPS) + 1) / 2,
}


@pytest.mark.parametrize("metric", sorted(LOSSES))
def test_hand_checked_confident_case(metric):
    value = as_numpy(LOSSES[metric]()(HAND_LABELS, HAND_PREDICTIONS))
    np.testing.assert_allclose(value, HAND_EXPECTED[metric], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", sorted(LOSSES))
@pytest.mark.parametrize("average", ["micro", "macro"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_random_multilabel_matches_reference(metric, average, weighted):
    rng = np.random.default_rng(31 + weighted)
    y_true = random_labels(rng, (16, 3))
    y_pred = rng.uniform(0.25, 0.75, size=(16, 3)).astype("float32")
    weights = rng.uniform(0.2, 3.0, size=16).astype("float32") if weighted else None
    loss = LOSSES[metric](amplifying_scale=8.0, average=average)
    value = loss(y_true, y_pred) if weights is None else loss(y_true, y_pred, weights)
    expected = loss_reference(
        metric, y_true, y_pred, sample_weight=weights, scale=8.0, average=average
    )
    np.testing.assert_allclose(as_numpy(value), expected, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("metric", ["f1", "mcc", "specificity"])
def test_random_binary_logits_match_reference(metric):
    rng = np.random.default_rng(37)
    y_true = random_labels(rng, (20,))
    logits = rng.normal(scale=1.0, size=(20, 1)).astype("float32")
    loss = LOSSES[metric](from_logits=True)
    np.testing.assert_allclose(
        as_numpy(loss(y_true, logits)),
        loss_reference(metric, y_true, logits[:, 0], from_logits=True),
        rtol=2e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("metric", sorted(LOSSES))
def test_integer_weight_two_equals_duplicating_the_row(metric):
    rng = np.random.default_rng(41)
    y_true = random_labels(rng, (7, 2))
    y_pred = rng.uniform(0.3, 0.7, size=(7, 2)).astype("float32")
    weights = np.array([1.0, 1.0, 2.0, 1.0, 0.0, 1.0, 1.0], "float32")
    rows = [0, 1, 2, 2, 3, 5, 6]
    loss = LOSSES[metric](amplifying_scale=8.0, average="macro")
    np.testing.assert_allclose(
        as_numpy(loss(y_true, y_pred, weights)),
        as_numpy(loss(y_true[rows], y_pred[rows])),
        rtol=1e-5,
        atol=1e-7,
    )


def test_f1_equals_fbeta_with_beta_one():
    rng = np.random.default_rng(43)
    y_true = random_labels(rng, (10, 2))
    y_pred = rng.uniform(0.3, 0.7, size=(10, 2)).astype("float32")
    np.testing.assert_allclose(
        as_numpy(F1Loss(amplifying_scale=8.0)(y_true, y_pred)),
        as_numpy(FBetaLoss(beta=1.0, amplifying_scale=8.0)(y_true, y_pred)),
        rtol=1e-7,
    )


@pytest.mark.parametrize("loss_class", CLASSES, ids=lambda cls: cls.__name__)
def test_config_holds_exactly_the_constructor_arguments(loss_class):
    config = loss_class().get_config()
    parameters = set(inspect.signature(loss_class.__init__).parameters) - {"self"}
    assert set(config) == parameters
    rebuilt = loss_class.from_config(config)
    assert rebuilt.get_config() == config


@pytest.mark.parametrize("metric", sorted(LOSSES))
def test_gradient_matches_central_differences_of_the_reference(metric):
    rng = np.random.default_rng(47)
    y_true = random_labels(rng, (6, 2))
    y_pred = rng.uniform(0.3, 0.7, size=(6, 2))
    weights = rng.uniform(0.5, 2.0, size=6)
    kwargs = {"sample_weight": weights, "scale": 6.0, "average": "macro"}
    expected = central_differences(
        lambda values: loss_reference(metric, y_true, values, **kwargs), y_pred
    )
    with float64_enabled():
        loss = LOSSES[metric](amplifying_scale=6.0, average="macro", dtype="float64")
        labels = keras.ops.convert_to_tensor(y_true, "float64")
        sample_weight = keras.ops.convert_to_tensor(weights, "float64")
        gradient = input_gradient(
            lambda values: loss(labels, values, sample_weight),
            keras.ops.convert_to_tensor(y_pred, "float64"),
        )
        assert keras.backend.standardize_dtype(gradient.dtype) == "float64"
        np.testing.assert_allclose(as_numpy(gradient), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("metric", ["geometric_mean", "mcc", "precision"])
def test_gradient_is_finite_when_every_prediction_is_negative(metric):
    # TP = FP = 0: sensitivity, precision and the MCC denominator vanish.
    labels = keras.ops.convert_to_tensor(np.array([[1.0], [0.0], [1.0]], "float32"))
    predictions = keras.ops.convert_to_tensor(np.zeros((3, 1), "float32"))
    loss = LOSSES[metric]()
    gradient = as_numpy(input_gradient(lambda values: loss(labels, values), predictions))
    assert np.all(np.isfinite(gradient))
    assert np.isfinite(as_numpy(loss(labels, predictions)))


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    average=st.sampled_from(["micro", "macro"]),
    columns=st.integers(1, 4),
)
def test_every_loss_in_unit_interval_and_near_zero_when_perfect(seed, average, columns):
    rng = np.random.default_rng(seed)
    y_true = random_labels(rng, (6, columns))
    y_pred = rng.uniform(0.0, 1.0, size=(6, columns)).astype("float32")
    weights = rng.uniform(0.0, 3.0, size=6).astype("float32")
    weights[:2] = 1.0
    for metric, make in LOSSES.items():
        loss = make(average=average)
        for value in (loss(y_true, y_pred), loss(y_true, y_pred, weights)):
            value = float(as_numpy(value))
            # The geometric mean's eps inside the root can lift it to sqrt(1 + eps).
            assert 1.0 - math.sqrt(1.0 + EPS) - 1e-6 <= value <= 1.0 + 1e-6, metric
        perfect = float(as_numpy(loss(y_true, y_true)))
        assert abs(perfect) < 1e-3, metric


@pytest.mark.parametrize("loss_class", CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"amplifying_scale": 0.0}, "amplifying_scale"),
        ({"amplifying_scale": -73.0}, "amplifying_scale"),
        ({"average": "samples"}, "average"),
        ({"from_logits": "no"}, "from_logits"),
    ],
)
def test_invalid_hyperparameters_are_value_errors(loss_class, kwargs, argument):
    with pytest.raises(ValueError, match=rf"{loss_class.__name__}: `{argument}`"):
        loss_class(**kwargs)


@pytest.mark.parametrize("beta", [0.0, -2.0, float("nan"), float("inf"), "2", True])
def test_non_positive_or_non_numeric_beta_is_a_value_error(beta):
    with pytest.raises(ValueError, match=r"FBetaLoss: `beta` must be a finite number > 0"):
        FBetaLoss(beta=beta)


@pytest.mark.parametrize("loss_class", CLASSES, ids=lambda cls: cls.__name__)
def test_labels_outside_zero_one_are_a_value_error(loss_class):
    with pytest.raises(ValueError, match=rf"{loss_class.__name__}: `y_true` must hold hard labels"):
        loss_class()(np.array([1.0, 0.7, 0.0], "float32"), np.array([0.9, 0.5, 0.1], "float32"))


@pytest.mark.parametrize("loss_class", CLASSES, ids=lambda cls: cls.__name__)
def test_mismatched_shapes_are_a_value_error_naming_both(loss_class):
    with pytest.raises(ValueError, match=rf"{loss_class.__name__}: .*\(5, 2\).*\(5, 3\)"):
        loss_class()(np.ones((5, 2), "float32"), np.ones((5, 3), "float32"))


@pytest.mark.parametrize("loss_class", CLASSES, ids=lambda cls: cls.__name__)
def test_unknown_reduction_is_a_value_error_naming_the_loss(loss_class):
    with pytest.raises(ValueError, match=rf"{loss_class.__name__}: .*`reduction`"):
        loss_class(reduction="avg")


def test_mixed_precision_loss_computes_in_float32_and_returns_its_dtype():
    rng = np.random.default_rng(53)
    y_true = random_labels(rng, (64, 4))
    # The reference sees the same float16-rounded predictions.
    y_pred = rng.uniform(0.3, 0.7, size=(64, 4)).astype("float16")
    value = MCCLoss(dtype="mixed_float16")(y_true, y_pred)
    assert keras.backend.standardize_dtype(value.dtype) == "float16"
    expected = loss_reference("mcc", y_true, y_pred.astype("float64"))
    np.testing.assert_allclose(as_numpy(value), expected, rtol=1e-3)
