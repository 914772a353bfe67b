import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dl_techniques.losses.classification.spiegelhalter_z_loss import SpiegelhalterZLoss
from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    central_differences,
    gradient_dtype,
    hypothesis_examples,
    sigmoid,
    softmax,
)

EPSILON = 1e-7


def spiegelhalter_z(y_true, probs, weights=None):
    """Spiegelhalter's Z per column of (B, C) inputs, from the 1986 formula, in float64."""
    y_true, probs = np.asarray(y_true, "float64"), np.asarray(probs, "float64")
    weights = np.ones(len(probs)) if weights is None else np.asarray(weights, "float64")
    weights = weights.reshape(-1, 1)
    numerator = (weights * (y_true - probs) * (1.0 - 2.0 * probs)).sum(axis=0)
    variance = (weights * (1.0 - 2.0 * probs) ** 2 * probs * (1.0 - probs)).sum(axis=0)
    return numerator / np.sqrt(variance + EPSILON)


def z_loss_reference(y_true, probs, weights=None, use_squared=True):
    """Mean over columns of Z^2 / N (or |Z| / sqrt(N)), N the sum of weights."""
    probs = np.asarray(probs, "float64")
    probs = probs.reshape(len(probs), -1)
    y_true = np.asarray(y_true, "float64").reshape(probs.shape)
    total = len(probs) if weights is None else float(np.sum(weights, dtype="float64"))
    z = spiegelhalter_z(y_true, probs, weights)
    per_class = z**2 / total if use_squared else np.abs(z) / np.sqrt(total)
    return per_class.mean()


HAND_TRUE = np.array([1.0, 0.0, 1.0, 0.0], "float32")
HAND_PROBS = np.array([0.8, 0.4, 0.6, 0.1], "float32")


def test_hand_checked_four_sample_statistic():
    # (y - p)(1 - 2p):        0.2 * -0.6 = -0.12, -0.4 * 0.2 = -0.08,
    #                         0.4 * -0.2 = -0.08, -0.1 * 0.8 = -0.08   -> sum -0.36
    # (1 - 2p)^2 p (1 - p):   0.36 * 0.16 = 0.0576, 0.04 * 0.24 = 0.0096,
    #                         0.04 * 0.24 = 0.0096, 0.64 * 0.09 = 0.0576 -> sum 0.1344
    # Z = -0.36 / sqrt(0.1344 + 1e-7) = -0.981980; Z^2 / 4 = 0.241071; |Z| / 2 = 0.490990
    np.testing.assert_allclose(
        as_numpy(SpiegelhalterZLoss()(HAND_TRUE, HAND_PROBS)), 0.241071, rtol=1e-5
    )
    np.testing.assert_allclose(
        as_numpy(SpiegelhalterZLoss(use_squared=False)(HAND_TRUE, HAND_PROBS)), 0.490990, rtol=1e-5
    )


def test_binary_vector_and_column_shapes_agree():
    expected = z_loss_reference(HAND_TRUE, HAND_PROBS)
    loss = SpiegelhalterZLoss()
    for true_form, pred_form in [
        (HAND_TRUE[:, None], HAND_PROBS[:, None]),
        (HAND_TRUE, HAND_PROBS[:, None]),
        (HAND_TRUE[:, None], HAND_PROBS),
    ]:
        np.testing.assert_allclose(as_numpy(loss(true_form, pred_form)), expected, rtol=1e-5)


@pytest.mark.parametrize("use_squared", [True, False])
def test_random_multiclass_is_the_mean_of_one_vs_rest_losses(use_squared):
    rng = np.random.default_rng(21)
    y_true = np.eye(5, dtype="float32")[rng.integers(0, 5, size=40)]
    probs = softmax(rng.normal(scale=1.5, size=(40, 5))).astype("float32")
    value = as_numpy(SpiegelhalterZLoss(use_squared=use_squared)(y_true, probs))
    np.testing.assert_allclose(
        value, z_loss_reference(y_true, probs, use_squared=use_squared), rtol=1e-4
    )
    one_vs_rest = [
        as_numpy(SpiegelhalterZLoss(use_squared=use_squared)(y_true[:, c], probs[:, c]))
        for c in range(5)
    ]
    np.testing.assert_allclose(value, np.mean(one_vs_rest), rtol=1e-5)


def test_two_column_softmax_equals_the_binary_loss():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(10, 2)).astype("float32")
    labels = rng.integers(0, 2, size=10)
    two_columns = SpiegelhalterZLoss(from_logits=True)(np.eye(2, dtype="float32")[labels], logits)
    positive = softmax(logits.astype("float64"))[:, 1].astype("float32")
    binary = SpiegelhalterZLoss()(labels.astype("float32"), positive)
    np.testing.assert_allclose(as_numpy(two_columns), as_numpy(binary), rtol=1e-4)


def test_from_logits_uses_sigmoid_for_one_column():
    rng = np.random.default_rng(8)
    logits = rng.normal(scale=2.0, size=(12, 1)).astype("float32")
    labels = rng.integers(0, 2, size=(12, 1)).astype("float32")
    np.testing.assert_allclose(
        as_numpy(SpiegelhalterZLoss(from_logits=True)(labels, logits)),
        z_loss_reference(labels, sigmoid(logits.astype("float64"))),
        rtol=1e-4,
    )


@pytest.mark.parametrize("use_squared", [True, False])
@pytest.mark.parametrize("repeats", [2, 5])
def test_scale_does_not_grow_when_the_batch_is_repeated(use_squared, repeats):
    # Repeating the batch k times multiplies both sums by k, so Z grows as
    # sqrt(k) and Z^2 / N (and |Z| / sqrt(N)) stays the same.
    rng = np.random.default_rng(repeats)
    y_true = np.eye(3, dtype="float32")[rng.integers(0, 3, size=8)]
    probs = softmax(rng.normal(size=(8, 3))).astype("float32")
    z_once = spiegelhalter_z(y_true, probs)
    z_repeated = spiegelhalter_z(np.tile(y_true, (repeats, 1)), np.tile(probs, (repeats, 1)))
    np.testing.assert_allclose(z_repeated, np.sqrt(repeats) * z_once, rtol=1e-5)
    loss = SpiegelhalterZLoss(use_squared=use_squared)
    np.testing.assert_allclose(
        as_numpy(loss(np.tile(y_true, (repeats, 1)), np.tile(probs, (repeats, 1)))),
        as_numpy(loss(y_true, probs)),
        rtol=1e-5,
    )


def test_sample_weight_weights_every_sum():
    rng = np.random.default_rng(31)
    y_true = np.eye(3, dtype="float32")[rng.integers(0, 3, size=10)]
    probs = softmax(rng.normal(size=(10, 3))).astype("float32")
    weights = rng.uniform(0.0, 3.0, size=10).astype("float32")
    for weight_form in (weights, weights[:, None]):
        np.testing.assert_allclose(
            as_numpy(SpiegelhalterZLoss()(y_true, probs, sample_weight=weight_form)),
            z_loss_reference(y_true, probs, weights),
            rtol=1e-4,
        )


def test_integer_weights_equal_repeated_rows_and_zero_drops_a_row():
    weights = np.array([2.0, 0.0, 1.0, 3.0], "float32")
    rows = np.array([0, 0, 2, 3, 3, 3])
    loss = SpiegelhalterZLoss(use_squared=False)
    np.testing.assert_allclose(
        as_numpy(loss(HAND_TRUE, HAND_PROBS, sample_weight=weights)),
        as_numpy(loss(HAND_TRUE[rows], HAND_PROBS[rows])),
        rtol=1e-5,
    )


def test_zero_total_weight_gives_zero_with_finite_gradient():
    loss = SpiegelhalterZLoss()
    weights = keras.ops.zeros((4,))
    targets = keras.ops.convert_to_tensor(HAND_TRUE)
    probs = keras.ops.convert_to_tensor(HAND_PROBS)
    assert as_numpy(loss(targets, probs, sample_weight=weights)) == 0.0
    gradient = as_numpy(input_gradient(lambda v: loss(targets, v, sample_weight=weights), probs))
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize(
    ("use_squared", "from_logits", "classes"),
    [(True, False, 1), (False, False, 1), (True, True, 3), (False, True, 3)],
)
def test_gradient_matches_central_differences(use_squared, from_logits, classes):
    dtype = gradient_dtype()
    rng = np.random.default_rng(3 * classes + use_squared)
    if classes == 1:
        y_true = np.array([[1.0], [0.0], [1.0], [1.0], [0.0], [0.0]])
        to_probs = sigmoid
    else:
        y_true = np.eye(classes)[[0, 1, 2, 0, 1, 2]]
        to_probs = softmax
    y_pred = (
        rng.normal(size=(6, classes)) if from_logits else rng.uniform(0.1, 0.9, size=(6, classes))
    )
    weights = rng.uniform(0.5, 2.0, size=6)

    def reference(values):
        probs = to_probs(values) if from_logits else values
        return z_loss_reference(y_true, probs, weights, use_squared=use_squared)

    loss = SpiegelhalterZLoss(use_squared=use_squared, from_logits=from_logits, dtype=dtype)
    targets = keras.ops.convert_to_tensor(y_true, dtype=dtype)
    weight_tensor = keras.ops.convert_to_tensor(weights, dtype=dtype)
    gradient = input_gradient(
        lambda values: loss(targets, values, sample_weight=weight_tensor),
        keras.ops.convert_to_tensor(y_pred, dtype=dtype),
    )
    expected = central_differences(reference, y_pred)
    if dtype == "float64":
        np.testing.assert_allclose(as_numpy(gradient), expected, rtol=1e-6, atol=1e-8)
    else:
        scale = np.abs(expected).max()
        np.testing.assert_allclose(as_numpy(gradient), expected, rtol=1e-3, atol=1e-4 * scale)


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(
    probs=hnp.arrays("float32", (6, 3), elements=st.sampled_from([0.0, 0.5, 1.0])),
    labels=hnp.arrays("float32", (6, 3), elements=st.sampled_from([0.0, 1.0])),
    use_squared=st.booleans(),
    binary=st.booleans(),
)
def test_finite_value_and_gradient_when_every_p_is_zero_half_or_one(
    probs, labels, use_squared, binary
):
    if binary:
        probs, labels = probs[:, :1], labels[:, :1]
    loss = SpiegelhalterZLoss(use_squared=use_squared)
    targets = keras.ops.convert_to_tensor(labels)
    predictions = keras.ops.convert_to_tensor(probs)
    value = as_numpy(loss(targets, predictions))
    assert np.isfinite(value)
    np.testing.assert_allclose(
        value, z_loss_reference(labels, probs, use_squared=use_squared), rtol=1e-4
    )
    gradient = as_numpy(input_gradient(lambda v: loss(targets, v), predictions))
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize("argument", ["use_squared", "from_logits"])
@pytest.mark.parametrize("bad_value", ["yes", 1, None])
def test_non_bool_flags_are_a_value_error(argument, bad_value):
    with pytest.raises(ValueError, match=rf"SpiegelhalterZLoss.*{argument}"):
        SpiegelhalterZLoss(**{argument: bad_value})


def test_mismatched_shapes_are_a_value_error_naming_both():
    with pytest.raises(ValueError, match=r"SpiegelhalterZLoss.*\(4, 3\).*\(4, 2\)"):
        SpiegelhalterZLoss()(np.zeros((4, 3)), np.full((4, 2), 0.5))


def test_sample_weight_with_a_class_axis_is_a_value_error():
    with pytest.raises(ValueError, match=r"SpiegelhalterZLoss.*sample_weight.*\(4, 3\)"):
        SpiegelhalterZLoss()(np.zeros((4, 3)), np.full((4, 3), 0.3), sample_weight=np.ones((4, 3)))


def test_probabilities_outside_unit_interval_are_a_value_error():
    with pytest.raises(ValueError, match=r"SpiegelhalterZLoss.*y_pred.*from_logits"):
        SpiegelhalterZLoss()(HAND_TRUE, HAND_PROBS * 2.0)


def test_labels_outside_unit_interval_are_a_value_error():
    with pytest.raises(ValueError, match=r"SpiegelhalterZLoss.*y_true"):
        SpiegelhalterZLoss()(HAND_TRUE - 1.0, HAND_PROBS)


def test_reduction_has_no_effect_on_the_batch_value():
    expected = as_numpy(SpiegelhalterZLoss()(HAND_TRUE, HAND_PROBS))
    for reduction in ("sum", None, "mean_with_sample_weight"):
        value = SpiegelhalterZLoss(reduction=reduction)(HAND_TRUE, HAND_PROBS)
        np.testing.assert_allclose(as_numpy(value), expected, rtol=1e-6)


def test_config_round_trips():
    loss = SpiegelhalterZLoss(use_squared=False, from_logits=True, reduction="sum", name="z")
    config = loss.get_config()
    assert config == {
        "name": "z",
        "reduction": "sum",
        "dtype": "float32",
        "use_squared": False,
        "from_logits": True,
    }
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, SpiegelhalterZLoss) and restored.get_config() == config
