import math
import sys

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.classification.any_loss import AnyLoss
from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    compiled,
    float64_enabled,
    hypothesis_examples,
    sigmoid,
)

EPS = 1e-5


@keras.saving.register_keras_serializable(package="test_any_loss")
def jaccard_index(tp, fn, fp, tn):
    return tp / (tp + fn + fp + EPS)


@keras.saving.register_keras_serializable(package="test_any_loss")
class WeightedAccuracy:
    """A callable metric object with a config, registered as a class."""

    def __init__(self, negative_weight=1.0):
        self.negative_weight = negative_weight

    def __call__(self, tp, fn, fp, tn):
        w = self.negative_weight
        return (tp + w * tn) / (tp + fn + w * (fp + tn) + EPS)

    def get_config(self):
        return {"negative_weight": self.negative_weight}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="test_any_loss")
class NoFromConfigMetric:
    def __call__(self, tp, fn, fp, tn):
        return tp / (tp + fn + EPS)

    def get_config(self):
        return {}


def unregistered_jaccard(tp, fn, fp, tn):
    return tp / (tp + fn + fp + EPS)


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


def jaccard_loss_reference(y_true, y_pred, **kwargs):
    tp, fn, fp, _, _ = soft_confusion_reference(y_true, y_pred, **kwargs)
    return 1.0 - np.mean(tp / (tp + fn + fp + EPS))


def random_labels(rng, shape):
    labels = rng.integers(0, 2, size=shape).astype("float32")
    labels[0], labels[1] = 1.0, 0.0
    return labels


# yhat = A(p) for p = 0.5 + logit(yhat) / L: with L = 4, these p give
# yhat = 0.75, 0.25, 0.5, 0.75 for labels 1, 0, 1, 0, so by hand
# TP = 0.75 + 0.5 = 1.25, FN = 0.25 + 0.5 = 0.75,
# FP = 0.25 + 0.75 = 1.0, TN = 0.75 + 0.25 = 1.0, N = 4.
HAND_LABELS = np.array([1.0, 0.0, 1.0, 0.0], "float32")
HAND_PREDICTIONS = np.array(
    [0.5 + math.log(3) / 4, 0.5 - math.log(3) / 4, 0.5, 0.5 + math.log(3) / 4], "float32"
)


@pytest.mark.parametrize(
    "component, expected",
    [(0, 1.25), (1, 0.75), (2, 1.0), (3, 1.0)],
    ids=["tp", "fn", "fp", "tn"],
)
def test_soft_confusion_matrix_matches_hand_count(component, expected):
    def pick(tp, fn, fp, tn):
        return (tp, fn, fp, tn)[component]

    loss = AnyLoss(pick, amplifying_scale=4.0)
    # loss = 1 - metric, so the picked count is 1 - loss.
    np.testing.assert_allclose(
        1.0 - as_numpy(loss(HAND_LABELS, HAND_PREDICTIONS)), expected, rtol=1e-5
    )


def test_hand_checked_jaccard_value():
    # 1 - 1.25 / (1.25 + 0.75 + 1.0 + eps) = 1 - 1.25 / 3
    loss = AnyLoss(jaccard_index, amplifying_scale=4.0)
    np.testing.assert_allclose(
        as_numpy(loss(HAND_LABELS, HAND_PREDICTIONS)), 1.0 - 1.25 / (3.0 + EPS), rtol=1e-5
    )


def test_callable_object_metric_receives_the_counts():
    # negative_weight 2: (1.25 + 2 * 1.0) / (1.25 + 0.75 + 2 * (1.0 + 1.0)) = 3.25 / 6
    loss = AnyLoss(WeightedAccuracy(negative_weight=2.0), amplifying_scale=4.0)
    np.testing.assert_allclose(
        as_numpy(loss(HAND_LABELS, HAND_PREDICTIONS)), 1.0 - 3.25 / (6.0 + EPS), rtol=1e-5
    )


@pytest.mark.parametrize("average", ["micro", "macro"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_random_multilabel_matches_reference(average, weighted):
    rng = np.random.default_rng(7 + weighted)
    y_true = random_labels(rng, (12, 4))
    y_pred = rng.uniform(0.3, 0.7, size=(12, 4)).astype("float32")
    weights = rng.uniform(0.2, 3.0, size=12).astype("float32") if weighted else None
    loss = AnyLoss(jaccard_index, amplifying_scale=9.0, average=average)
    value = loss(y_true, y_pred) if weights is None else loss(y_true, y_pred, weights)
    expected = jaccard_loss_reference(
        y_true, y_pred, sample_weight=weights, scale=9.0, average=average
    )
    np.testing.assert_allclose(as_numpy(value), expected, rtol=1e-5, atol=1e-6)


def test_per_cell_sample_weight_matches_reference():
    rng = np.random.default_rng(11)
    y_true = random_labels(rng, (10, 3))
    y_pred = rng.uniform(0.2, 0.8, size=(10, 3)).astype("float32")
    weights = rng.uniform(0.0, 2.0, size=(10, 3)).astype("float32")
    loss = AnyLoss(jaccard_index, amplifying_scale=6.0, average="macro")
    np.testing.assert_allclose(
        as_numpy(loss(y_true, y_pred, weights)),
        jaccard_loss_reference(y_true, y_pred, sample_weight=weights, scale=6.0, average="macro"),
        rtol=1e-5,
    )


def test_integer_weight_two_equals_duplicating_the_row():
    rng = np.random.default_rng(3)
    y_true = random_labels(rng, (6, 3))
    y_pred = rng.uniform(0.2, 0.8, size=(6, 3)).astype("float32")
    weights = np.array([1.0, 2.0, 1.0, 1.0, 1.0, 1.0], "float32")
    rows = [0, 1, 1, 2, 3, 4, 5]
    loss = AnyLoss(jaccard_index, amplifying_scale=6.0, average="macro")
    np.testing.assert_allclose(
        as_numpy(loss(y_true, y_pred, weights)),
        as_numpy(loss(y_true[rows], y_pred[rows])),
        rtol=1e-6,
    )


def test_macro_is_the_mean_of_per_column_binary_losses():
    rng = np.random.default_rng(5)
    y_true = random_labels(rng, (9, 3))
    y_pred = rng.uniform(0.2, 0.8, size=(9, 3)).astype("float32")
    loss = AnyLoss(jaccard_index, amplifying_scale=6.0, average="macro")
    per_column = [as_numpy(loss(y_true[:, c], y_pred[:, c])) for c in range(3)]
    np.testing.assert_allclose(as_numpy(loss(y_true, y_pred)), np.mean(per_column), rtol=1e-6)


def test_binary_shapes_b_and_b1_agree():
    loss = AnyLoss(jaccard_index, amplifying_scale=4.0)
    expected = 1.0 - 1.25 / (3.0 + EPS)
    for y_true, y_pred in [
        (HAND_LABELS, HAND_PREDICTIONS),
        (HAND_LABELS[:, None], HAND_PREDICTIONS[:, None]),
        (HAND_LABELS, HAND_PREDICTIONS[:, None]),
        (HAND_LABELS[:, None], HAND_PREDICTIONS),
    ]:
        np.testing.assert_allclose(as_numpy(loss(y_true, y_pred)), expected, rtol=1e-5)


def test_from_logits_applies_sigmoid_first():
    rng = np.random.default_rng(13)
    y_true = random_labels(rng, (8, 2))
    logits = rng.normal(scale=0.5, size=(8, 2)).astype("float32")
    loss = AnyLoss(jaccard_index, amplifying_scale=5.0, from_logits=True)
    np.testing.assert_allclose(
        as_numpy(loss(y_true, logits)),
        jaccard_loss_reference(y_true, logits, scale=5.0, from_logits=True),
        rtol=1e-5,
    )


def test_default_amplifying_scale_is_73():
    # p = 0.51 gives yhat = sigmoid(0.73) = 0.6748 only with L = 73.
    def tp_only(tp, fn, fp, tn):
        return tp

    value = as_numpy(AnyLoss(tp_only)([1.0], [0.51]))
    np.testing.assert_allclose(1.0 - value, sigmoid(0.73), rtol=1e-5)


@pytest.mark.parametrize("reduction", [None, "sum", "mean", "sum_over_batch_size"])
def test_reduction_has_no_effect_on_the_batch_value(reduction):
    loss = AnyLoss(jaccard_index, amplifying_scale=4.0, reduction=reduction)
    value = as_numpy(loss(HAND_LABELS, HAND_PREDICTIONS))
    assert value.shape == ()
    np.testing.assert_allclose(value, 1.0 - 1.25 / (3.0 + EPS), rtol=1e-5)


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_gradient_matches_central_differences_of_the_reference(average):
    rng = np.random.default_rng(17)
    y_true = random_labels(rng, (6, 2))
    y_pred = rng.uniform(0.3, 0.7, size=(6, 2))
    weights = rng.uniform(0.5, 2.0, size=6)
    kwargs = {"sample_weight": weights, "scale": 6.0, "average": average}
    expected = central_differences(
        lambda values: jaccard_loss_reference(y_true, values, **kwargs), y_pred
    )
    with float64_enabled():
        loss = AnyLoss(jaccard_index, amplifying_scale=6.0, average=average, dtype="float64")
        labels = keras.ops.convert_to_tensor(y_true, "float64")
        sample_weight = keras.ops.convert_to_tensor(weights, "float64")
        gradient = input_gradient(
            lambda values: loss(labels, values, sample_weight),
            keras.ops.convert_to_tensor(y_pred, "float64"),
        )
        assert keras.backend.standardize_dtype(gradient.dtype) == "float64"
        np.testing.assert_allclose(as_numpy(gradient), expected, rtol=1e-6, atol=1e-9)


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    average=st.sampled_from(["micro", "macro"]),
    scale=st.floats(0.5, 200.0),
)
def test_metric_in_unit_interval_gives_loss_in_unit_interval(seed, average, scale):
    rng = np.random.default_rng(seed)
    y_true = random_labels(rng, (7, 3))
    y_pred = rng.uniform(0.0, 1.0, size=(7, 3)).astype("float32")
    loss = AnyLoss(jaccard_index, amplifying_scale=scale, average=average)
    value = float(as_numpy(loss(y_true, y_pred)))
    assert 0.0 <= value <= 1.0
    # Confident: probabilities exactly 0 or 1 under the default scale.
    default_loss = AnyLoss(jaccard_index, average=average)
    perfect = float(as_numpy(default_loss(y_true, y_true)))
    assert 0.0 <= perfect < 1e-3


def test_registered_metric_function_survives_keras_save_and_load(tmp_path):
    rng = np.random.default_rng(19)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = random_labels(rng, (16, 3))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="sigmoid")])
    model.compile(
        optimizer="sgd", loss=AnyLoss(jaccard_index, amplifying_scale=7.0, average="macro")
    )
    expected = model.evaluate(x, y, batch_size=16, verbose=0)
    path = tmp_path / "jaccard.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, AnyLoss)
    assert loaded.loss.metric_fn is jaccard_index
    assert loaded.loss.average == "macro" and loaded.loss.amplifying_scale == 7.0
    np.testing.assert_allclose(loaded.evaluate(x, y, batch_size=16, verbose=0), expected, rtol=1e-6)


def test_registered_metric_object_survives_serialization():
    loss = AnyLoss(WeightedAccuracy(negative_weight=2.0), amplifying_scale=4.0)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored.metric_fn, WeightedAccuracy)
    assert restored.metric_fn.negative_weight == 2.0
    np.testing.assert_allclose(
        as_numpy(restored(HAND_LABELS, HAND_PREDICTIONS)), 1.0 - 3.25 / (6.0 + EPS), rtol=1e-5
    )


def test_lambda_metric_trains_but_saving_raises_a_clear_error(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="sigmoid")])
    model.compile(loss=AnyLoss(lambda tp, fn, fp, tn: tp / (tp + fn + fp + EPS)))
    model.fit(np.ones((4, 2), "float32"), np.array([[1, 0], [0, 1]] * 2, "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"AnyLoss: `metric_fn` is a lambda"):
        model.save(tmp_path / "lambda.keras")


def test_unregistered_function_raises_at_get_config():
    with pytest.raises(
        ValueError, match=r"AnyLoss: `metric_fn` .*unregistered_jaccard.*registered"
    ):
        AnyLoss(unregistered_jaccard).get_config()


def test_registered_metric_object_without_from_config_raises_at_get_config():
    with pytest.raises(ValueError, match=r"AnyLoss: `metric_fn` .*NoFromConfigMetric.*from_config"):
        AnyLoss(NoFromConfigMetric()).get_config()


def test_loading_a_metric_function_not_registered_in_this_process_is_a_clear_error():
    config = AnyLoss(jaccard_index).get_config()
    config["metric_fn"] = {**config["metric_fn"], "config": "test_any_loss>missing_metric"}
    with pytest.raises(ValueError, match=r"AnyLoss: cannot rebuild `metric_fn`.*missing_metric"):
        AnyLoss.from_config(config)


def test_a_library_module_named_in_the_config_is_imported_to_find_its_metric():
    # The conformance module registers jaccard_index on import; drop the
    # registration so that only the import in from_config can restore it.
    module = "dl_techniques.losses.classification.conformance.any_loss"
    name = "dl_techniques_conformance>jaccard_index"
    registered = keras.saving.get_custom_objects()
    saved = registered.pop(name, None)
    saved_module = sys.modules.pop(module, None)
    try:
        config = AnyLoss(jaccard_index).get_config()
        config["metric_fn"] = {**config["metric_fn"], "config": name, "module": module}
        restored = AnyLoss.from_config(config)
        assert restored.metric_fn.__module__ == module
        assert restored.metric_fn.__name__ == "jaccard_index"
    finally:
        if saved is not None:
            registered[name] = saved
        if saved_module is not None:
            sys.modules[module] = saved_module


def test_a_module_outside_the_library_is_never_imported_from_a_config():
    config = AnyLoss(jaccard_index).get_config()
    config["metric_fn"] = {
        **config["metric_fn"],
        "config": "elsewhere>metric",
        "module": "json.tool",
    }
    sys.modules.pop("json.tool", None)
    with pytest.raises(ValueError, match=r"AnyLoss: cannot rebuild `metric_fn`.*elsewhere>metric"):
        AnyLoss.from_config(config)
    assert "json.tool" not in sys.modules


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"amplifying_scale": 0.0}, "amplifying_scale"),
        ({"amplifying_scale": -1.0}, "amplifying_scale"),
        ({"amplifying_scale": float("inf")}, "amplifying_scale"),
        ({"amplifying_scale": True}, "amplifying_scale"),
        ({"average": "weighted"}, "average"),
        ({"average": None}, "average"),
        ({"from_logits": 1}, "from_logits"),
    ],
)
def test_invalid_hyperparameters_are_value_errors(kwargs, argument):
    with pytest.raises(ValueError, match=rf"AnyLoss: `{argument}`"):
        AnyLoss(jaccard_index, **kwargs)


def test_non_callable_metric_is_a_value_error():
    with pytest.raises(ValueError, match=r"AnyLoss: `metric_fn` must be a callable"):
        AnyLoss("jaccard")


@pytest.mark.parametrize("bad_label", [0.5, 2.0, -1.0, float("nan")])
def test_labels_outside_zero_one_are_a_value_error(bad_label):
    labels = np.array([[1.0, 0.0], [0.0, bad_label]], "float32")
    with pytest.raises(ValueError, match=r"AnyLoss: `y_true` must hold hard labels 0 or 1.*1 of 4"):
        AnyLoss(jaccard_index)(labels, np.full((2, 2), 0.5, "float32"))


def test_mismatched_shapes_are_a_value_error_naming_both():
    with pytest.raises(ValueError, match=r"AnyLoss: .*\(4, 3\).*\(4, 2\)"):
        AnyLoss(jaccard_index)(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"))


def test_rank_three_predictions_are_a_value_error():
    with pytest.raises(ValueError, match=r"AnyLoss: `y_pred` must have shape.*\(2, 3, 4\)"):
        AnyLoss(jaccard_index)(np.ones((2, 3, 4), "float32"), np.ones((2, 3, 4), "float32"))


def test_sample_weight_of_the_wrong_shape_is_a_value_error():
    with pytest.raises(ValueError, match=r"AnyLoss: `sample_weight`.*\(3,\).*\(4, 2\)"):
        AnyLoss(jaccard_index)(np.ones((4, 2), "float32"), np.ones((4, 2), "float32"), np.ones(3))


def test_metric_of_the_wrong_shape_is_a_value_error():
    def summed(tp, fn, fp, tn):
        return keras.ops.sum(tp)

    with pytest.raises(ValueError, match=r"AnyLoss: `metric_fn` must return .*\(2,\)"):
        AnyLoss(summed, average="macro")(np.eye(2, dtype="float32"), np.eye(2, dtype="float32"))


def test_static_shape_check_also_runs_under_jit():
    loss = AnyLoss(jaccard_index)
    step = compiled(lambda y_true, y_pred: loss(y_true, y_pred))
    with pytest.raises(ValueError, match=r"AnyLoss: .*\(4, 3\).*\(4, 2\)"):
        step(
            keras.ops.convert_to_tensor(np.ones((4, 3), "float32")),
            keras.ops.convert_to_tensor(np.ones((4, 2), "float32")),
        )


def test_compiled_value_equals_eager_value():
    rng = np.random.default_rng(23)
    y_true = keras.ops.convert_to_tensor(random_labels(rng, (8, 3)))
    y_pred = keras.ops.convert_to_tensor(rng.uniform(0.3, 0.7, size=(8, 3)).astype("float32"))
    loss = AnyLoss(jaccard_index, amplifying_scale=6.0, average="macro")
    step = compiled(lambda labels, values: loss(labels, values))
    np.testing.assert_allclose(
        as_numpy(step(y_true, y_pred)), as_numpy(loss(y_true, y_pred)), rtol=1e-6
    )
