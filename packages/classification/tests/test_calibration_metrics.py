import keras
import numpy as np
import pytest

from dl_techniques.losses.classification.brier_score_metric import BrierScoreMetric
from dl_techniques.losses.classification.spiegelhalter_z_metric import SpiegelhalterZMetric
from dl_techniques.losses.core.testing.numeric import as_numpy, softmax

EPSILON = 1e-7


def brier_mean_reference(y_true, probs, weights=None):
    """Weighted mean over samples of sum_c (y_c - p_c)^2 on (B, C) inputs, float64."""
    probs = np.asarray(probs, "float64")
    probs = probs.reshape(len(probs), -1)
    y_true = np.asarray(y_true, "float64").reshape(probs.shape)
    return np.average(((y_true - probs) ** 2).sum(axis=1), weights=weights)


def z_per_class_reference(y_true, probs, weights=None):
    """Spiegelhalter's Z per column from the 1986 formula, float64."""
    probs = np.asarray(probs, "float64")
    probs = probs.reshape(len(probs), -1)
    y_true = np.asarray(y_true, "float64").reshape(probs.shape)
    column = np.ones((len(probs), 1)) if weights is None else np.reshape(weights, (-1, 1))
    numerator = (column * (y_true - probs) * (1.0 - 2.0 * probs)).sum(axis=0)
    variance = (column * (1.0 - 2.0 * probs) ** 2 * probs * (1.0 - probs)).sum(axis=0)
    return numerator / np.sqrt(variance + EPSILON)


def random_multiclass(seed, batch, classes):
    rng = np.random.default_rng(seed)
    y_true = np.eye(classes, dtype="float32")[rng.integers(0, classes, size=batch)]
    probs = softmax(rng.normal(scale=1.5, size=(batch, classes))).astype("float32")
    weights = rng.uniform(0.2, 2.0, size=batch).astype("float32")
    return y_true, probs, weights


def random_binary_column(seed, batch):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, size=(batch, 1)).astype("float32")
    probs = rng.uniform(0.05, 0.95, size=(batch, 1)).astype("float32")
    weights = rng.uniform(0.2, 2.0, size=batch).astype("float32")
    return y_true, probs, weights


def test_brier_metric_hand_checked_accumulation():
    # scores 0.01, 0.09 then 0.25: 0.35 / 3
    metric = BrierScoreMetric()
    metric.update_state([1.0, 0.0], [0.9, 0.3])
    metric.update_state([1.0], [0.5])
    np.testing.assert_allclose(as_numpy(metric.result()), 0.35 / 3.0, rtol=1e-6)


def test_brier_metric_updates_equal_one_update_on_the_concatenation():
    y_true, probs, weights = random_multiclass(1, 15, 4)
    split = BrierScoreMetric()
    for rows in (slice(0, 4), slice(4, 11), slice(11, 15)):
        split.update_state(y_true[rows], probs[rows], sample_weight=weights[rows])
    whole = BrierScoreMetric()
    whole.update_state(y_true, probs, sample_weight=weights)
    expected = brier_mean_reference(y_true, probs, weights)
    np.testing.assert_allclose(as_numpy(split.result()), expected, rtol=1e-5)
    np.testing.assert_allclose(as_numpy(whole.result()), expected, rtol=1e-5)


def test_brier_metric_row_weights_do_not_broadcast_against_a_column():
    y_true, probs, weights = random_binary_column(2, 6)
    metric = BrierScoreMetric()
    metric.update_state(y_true, probs, sample_weight=weights)
    expected = brier_mean_reference(y_true, probs, weights)
    # The bug: (B,) * (B, 1) broadcasts to (B, B) and mixes every weight with every row.
    broadcast = (weights * (y_true - probs) ** 2).sum() / (weights * np.ones_like(y_true)).sum()
    assert abs(broadcast - expected) > 1e-3
    np.testing.assert_allclose(as_numpy(metric.result()), expected, rtol=1e-5)


def test_brier_metric_from_logits_and_reset():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(8, 3)).astype("float32")
    y_true = np.eye(3, dtype="float32")[rng.integers(0, 3, size=8)]
    metric = BrierScoreMetric(from_logits=True)
    metric.update_state(np.ones((2, 3), "float32") / 3.0, np.zeros((2, 3), "float32"))
    metric.reset_state()
    assert as_numpy(metric.result()) == 0.0
    metric.update_state(y_true, logits)
    np.testing.assert_allclose(
        as_numpy(metric.result()),
        brier_mean_reference(y_true, softmax(logits.astype("float64"))),
        rtol=1e-5,
    )


def test_spiegelhalter_metric_reports_the_signed_binary_z():
    # The four-sample case of test_spiegelhalter_z: numerator -0.36, variance
    # 0.1344, Z = -0.36 / sqrt(0.1344 + 1e-7) = -0.981980 (under-confident).
    metric = SpiegelhalterZMetric()
    metric.update_state([1.0, 0.0], [0.8, 0.4])
    metric.update_state([1.0, 0.0], [0.6, 0.1])
    np.testing.assert_allclose(as_numpy(metric.result()), -0.981980, rtol=1e-5)


def test_spiegelhalter_metric_over_confidence_gives_positive_z():
    # p = 0.9 and 0.1 where the outcome goes the other way half of the time
    metric = SpiegelhalterZMetric()
    metric.update_state([1.0, 0.0, 0.0, 1.0], [0.9, 0.9, 0.1, 0.1])
    assert as_numpy(metric.result()) > 1.96


def test_spiegelhalter_metric_multiclass_is_root_mean_square_of_class_z():
    y_true, probs, weights = random_multiclass(4, 30, 4)
    metric = SpiegelhalterZMetric(num_classes=4)
    metric.update_state(y_true, probs, sample_weight=weights)
    z = z_per_class_reference(y_true, probs, weights)
    np.testing.assert_allclose(as_numpy(metric.result()), np.sqrt(np.mean(z**2)), rtol=1e-5)


@pytest.mark.parametrize("num_classes", [1, 3])
def test_spiegelhalter_metric_updates_equal_one_update_on_the_concatenation(num_classes):
    if num_classes == 1:
        y_true, probs, weights = random_binary_column(5, 14)
    else:
        y_true, probs, weights = random_multiclass(5, 14, num_classes)
    split = SpiegelhalterZMetric(num_classes=num_classes)
    for rows in (slice(0, 5), slice(5, 6), slice(6, 14)):
        split.update_state(y_true[rows], probs[rows], sample_weight=weights[rows])
    whole = SpiegelhalterZMetric(num_classes=num_classes)
    whole.update_state(y_true, probs, sample_weight=weights)
    np.testing.assert_allclose(as_numpy(split.result()), as_numpy(whole.result()), rtol=1e-5)
    z = z_per_class_reference(y_true, probs, weights)
    expected = z[0] if num_classes == 1 else np.sqrt(np.mean(z**2))
    np.testing.assert_allclose(as_numpy(split.result()), expected, rtol=1e-5)


def test_spiegelhalter_metric_row_weights_do_not_broadcast_against_a_column():
    y_true, probs, weights = random_binary_column(6, 8)
    metric = SpiegelhalterZMetric()
    metric.update_state(y_true, probs, sample_weight=weights)
    expected = z_per_class_reference(y_true, probs, weights)[0]
    # (B,) * (B, 1) would form (B, B) products: every weight times every row.
    slope = 1.0 - 2.0 * probs
    broadcast = (weights * (y_true - probs) * slope).sum() / np.sqrt(
        (weights * slope**2 * probs * (1.0 - probs)).sum() + EPSILON
    )
    assert abs(broadcast - expected) > 1e-2
    np.testing.assert_allclose(as_numpy(metric.result()), expected, rtol=1e-5)


def test_spiegelhalter_metric_grows_as_sqrt_of_repetitions():
    y_true, probs, _ = random_binary_column(7, 10)
    once = SpiegelhalterZMetric()
    once.update_state(y_true, probs)
    repeated = SpiegelhalterZMetric()
    for _ in range(4):
        repeated.update_state(y_true, probs)
    np.testing.assert_allclose(
        as_numpy(repeated.result()), 2.0 * as_numpy(once.result()), rtol=1e-5
    )


def test_spiegelhalter_metric_reset_state_starts_over():
    y_true, probs, _ = random_binary_column(8, 6)
    metric = SpiegelhalterZMetric()
    metric.update_state(1.0 - y_true, probs)
    metric.reset_state()
    assert as_numpy(metric.result()) == 0.0
    metric.update_state(y_true, probs)
    np.testing.assert_allclose(
        as_numpy(metric.result()), z_per_class_reference(y_true, probs)[0], rtol=1e-5
    )


def test_spiegelhalter_metric_from_logits_uses_softmax_for_several_columns():
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(12, 3)).astype("float32")
    y_true = np.eye(3, dtype="float32")[rng.integers(0, 3, size=12)]
    metric = SpiegelhalterZMetric(num_classes=3, from_logits=True)
    metric.update_state(y_true, logits)
    z = z_per_class_reference(y_true, softmax(logits.astype("float64")))
    np.testing.assert_allclose(as_numpy(metric.result()), np.sqrt(np.mean(z**2)), rtol=1e-5)


def test_metrics_accumulate_across_batches_in_compiled_evaluate():
    y_true, probs, weights = random_binary_column(10, 24)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Identity()])
    model.compile(
        loss="mse",
        weighted_metrics=[BrierScoreMetric(), SpiegelhalterZMetric()],
        jit_compile=keras.backend.backend() != "torch",
    )
    results = model.evaluate(
        probs, y_true, sample_weight=weights, batch_size=5, return_dict=True, verbose=0
    )
    np.testing.assert_allclose(
        results["brier_score"], brier_mean_reference(y_true, probs, weights), rtol=1e-5
    )
    np.testing.assert_allclose(
        results["spiegelhalter_z"], z_per_class_reference(y_true, probs, weights)[0], rtol=1e-5
    )


@pytest.mark.parametrize(
    "metric",
    [BrierScoreMetric(from_logits=True, name="b"), SpiegelhalterZMetric(3, True, name="z")],
    ids=["brier", "spiegelhalter"],
)
def test_config_round_trip_and_registered_name(metric):
    config = metric.get_config()
    assert type(metric).from_config(config).get_config() == config
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert type(restored) is type(metric) and restored.get_config() == config
    name = type(metric).__name__
    assert keras.saving.get_registered_name(type(metric)) == f"dl_techniques>{name}"


def test_spiegelhalter_metric_rejects_a_class_count_mismatch():
    metric = SpiegelhalterZMetric(num_classes=3)
    with pytest.raises(ValueError, match=r"SpiegelhalterZMetric.*num_classes=3.*\(4, 2\)"):
        metric.update_state(np.zeros((4, 2)), np.full((4, 2), 0.5))


@pytest.mark.parametrize("num_classes", [0, -1, 2.0, True, None])
def test_spiegelhalter_metric_rejects_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match=r"SpiegelhalterZMetric.*num_classes"):
        SpiegelhalterZMetric(num_classes=num_classes)


@pytest.mark.parametrize("metric_class", [BrierScoreMetric, SpiegelhalterZMetric])
def test_metrics_reject_non_bool_from_logits(metric_class):
    with pytest.raises(ValueError, match=rf"{metric_class.__name__}.*from_logits"):
        metric_class(from_logits="no")


@pytest.mark.parametrize("metric_class", [BrierScoreMetric, SpiegelhalterZMetric])
def test_metrics_reject_probabilities_outside_unit_interval(metric_class):
    with pytest.raises(ValueError, match=rf"{metric_class.__name__}.*y_pred"):
        metric_class().update_state([1.0, 0.0], [1.5, 0.2])


@pytest.mark.parametrize("metric_class", [BrierScoreMetric, SpiegelhalterZMetric])
def test_metrics_reject_weights_with_a_class_axis(metric_class):
    with pytest.raises(ValueError, match=rf"{metric_class.__name__}.*sample_weight"):
        metric_class().update_state(
            np.zeros((4, 1)), np.full((4, 1), 0.5), sample_weight=np.ones((4, 4))
        )
