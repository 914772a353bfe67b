"""core.ops: the native path and the keras.ops reference agree with numpy, value and gradient.

Each primitive is checked on the current backend three ways: the dispatching
function (native where ``native_backends`` lists the backend), its
``*_reference`` twin, and a float64 numpy formula; gradients by the backend's
autodiff, eager and compiled, against numpy's analytic gradient.
"""

import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dl_techniques.losses.core import ops
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    backend_gradient,
    hypothesis_examples,
    log_softmax,
    sigmoid,
    softmax,
)

BACKEND = keras.backend.backend()
RNG = np.random.default_rng(7)
LOGITS = (RNG.normal(size=(3, 4, 6)) * 3.0).astype("float32")
LABELS = RNG.integers(0, 6, size=(3, 4)).astype("int32")
LABELS[0, 1] = LABELS[2, 3] = -100


def numpy_softmax_cross_entropy(labels, logits, ignore_index, smoothing):
    logits = logits.astype("float64")
    valid = labels != ignore_index if ignore_index is not None else np.ones(labels.shape, bool)
    safe = np.where(valid, labels, 0)
    classes = logits.shape[-1]
    target = (1.0 - smoothing) * np.eye(classes)[safe] + smoothing / classes
    values = -(target * log_softmax(logits)).sum(axis=-1)
    return np.where(valid, values, 0.0)


def numpy_softmax_cross_entropy_gradient(labels, logits, ignore_index, smoothing):
    valid = labels != ignore_index
    safe = np.where(valid, labels, 0)
    classes = logits.shape[-1]
    target = (1.0 - smoothing) * np.eye(classes)[safe] + smoothing / classes
    return (softmax(logits.astype("float64")) - target) * valid[..., None]


@pytest.mark.parametrize(
    "function", [ops.softmax_cross_entropy, ops.softmax_cross_entropy_reference]
)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_softmax_cross_entropy_matches_numpy_with_ignored_positions(function, smoothing):
    values = function(LABELS, keras.ops.convert_to_tensor(LOGITS), -100, smoothing)

    expected = numpy_softmax_cross_entropy(LABELS, LOGITS, -100, smoothing)
    np.testing.assert_allclose(as_numpy(values), expected, rtol=1e-5, atol=1e-6)
    assert as_numpy(values)[0, 1] == 0.0


@pytest.mark.parametrize(
    "function", [ops.softmax_cross_entropy, ops.softmax_cross_entropy_reference]
)
@pytest.mark.parametrize("compiled", [False, True])
def test_softmax_cross_entropy_gradient_is_softmax_minus_smoothed_target(function, compiled):
    weights = RNG.normal(size=LABELS.shape).astype("float32")
    weight_tensor = keras.ops.convert_to_tensor(weights)

    gradient = backend_gradient(
        lambda logits: keras.ops.sum(function(LABELS, logits, -100, 0.1) * weight_tensor),
        LOGITS,
        compiled=compiled,
    )

    expected = numpy_softmax_cross_entropy_gradient(LABELS, LOGITS, -100, 0.1) * weights[..., None]
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-6)
    assert np.all(gradient[0, 1] == 0.0)


def test_softmax_cross_entropy_without_ignore_index_scores_every_position():
    labels = np.array([[0, 2], [1, 1]], dtype="int32")
    logits = np.array([[[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]], [[2.0, 1.0, 0.0], [0.0, 50.0, 0.0]]])
    logits = logits.astype("float32")

    values = as_numpy(ops.softmax_cross_entropy(labels, logits))

    # Large logits stay finite: the label's logit is the maximum, 0 nats.
    np.testing.assert_allclose(
        values, numpy_softmax_cross_entropy(labels, logits, None, 0.0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(values[0], [0.0, np.log(3.0)], rtol=1e-6, atol=1e-6)


def numpy_sigmoid_cross_entropy(labels, logits):
    logits = logits.astype("float64")
    return np.logaddexp(0.0, logits) - labels * logits


@pytest.mark.parametrize(
    "function", [ops.sigmoid_cross_entropy, ops.sigmoid_cross_entropy_reference]
)
def test_sigmoid_cross_entropy_matches_numpy_and_its_gradient_is_sigmoid_minus_label(function):
    logits = np.array([[-200.0, -3.0, 0.0], [0.5, 7.0, 300.0]], dtype="float32")
    labels = np.array([[0.0, 1.0, 0.5], [0.2, 0.0, 1.0]], dtype="float32")

    values = as_numpy(function(labels, keras.ops.convert_to_tensor(logits)))
    gradient = backend_gradient(lambda x: keras.ops.sum(function(labels, x)), logits)

    np.testing.assert_allclose(
        values, numpy_sigmoid_cross_entropy(labels, logits), rtol=1e-6, atol=1e-30
    )
    np.testing.assert_allclose(gradient, sigmoid(logits) - labels, rtol=1e-5, atol=1e-7)


def numpy_huber(error, delta):
    error = np.abs(error.astype("float64"))
    return np.where(error <= delta, 0.5 * error**2, delta * (error - 0.5 * delta))


@pytest.mark.parametrize("function", [ops.huber, ops.huber_reference])
@pytest.mark.parametrize("compiled", [False, True])
def test_huber_value_and_gradient_on_both_sides_of_delta(function, compiled):
    y_true = np.zeros((2, 4), dtype="float32")
    # Errors inside, on and beyond delta = 1.5, of both signs.
    y_pred = np.array([[-3.0, -1.5, -0.25, 0.0], [0.25, 1.5, 1.75, 40.0]], dtype="float32")

    values = as_numpy(function(y_true, keras.ops.convert_to_tensor(y_pred), 1.5))
    gradient = backend_gradient(
        lambda x: keras.ops.sum(function(y_true, x, 1.5)), y_pred, compiled=compiled
    )

    np.testing.assert_allclose(values, numpy_huber(y_pred, 1.5), rtol=1e-6)
    np.testing.assert_allclose(gradient, np.clip(y_pred, -1.5, 1.5), rtol=1e-6)


@pytest.mark.parametrize("function", [ops.huber_mean, ops.huber_mean_reference])
@pytest.mark.parametrize("compiled", [False, True])
def test_huber_mean_is_the_mean_over_every_element(function, compiled):
    y_true = np.array([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, -3.0, 0.25]], dtype="float32")
    y_pred = np.array([[-3.0, -1.5, 1.75, 0.0], [0.25, 2.5, 1.75, 40.0]], dtype="float32")

    value = as_numpy(function(y_true, keras.ops.convert_to_tensor(y_pred), 1.5))
    gradient = backend_gradient(lambda x: function(y_true, x, 1.5), y_pred, compiled=compiled)

    error = y_pred.astype("float64") - y_true
    assert value.shape == ()
    np.testing.assert_allclose(value, numpy_huber(error, 1.5).mean(), rtol=1e-6)
    np.testing.assert_allclose(gradient, np.clip(error, -1.5, 1.5) / error.size, rtol=1e-6)


@pytest.mark.parametrize("function", [ops.sort_descending, ops.sort_descending_reference])
def test_sort_descending_is_stable_and_permutes_the_carried_tensors(function):
    values = np.array([[0.5, 2.0, 0.5, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0]], dtype="float32")
    positions = np.tile(np.arange(5, dtype="float32"), (2, 1))
    labels = np.array([[1.0, 0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0, 0.0]], dtype="float32")

    sorted_values, sorted_positions, sorted_labels = function(
        keras.ops.convert_to_tensor(values), positions, labels
    )

    np.testing.assert_array_equal(as_numpy(sorted_values), [[2, 2, 0.5, 0.5, -1], [0] * 5])
    # Ties keep their original order: a stable sort.
    np.testing.assert_array_equal(as_numpy(sorted_positions), [[1, 4, 0, 2, 3], [0, 1, 2, 3, 4]])
    np.testing.assert_array_equal(as_numpy(sorted_labels), [[0, 1, 1, 0, 1], [0, 1, 0, 1, 0]])


@pytest.mark.parametrize("function", [ops.sort_descending, ops.sort_descending_reference])
@pytest.mark.parametrize("compiled", [False, True])
def test_sort_descending_passes_the_gradient_back_to_the_unsorted_positions(function, compiled):
    values = RNG.normal(size=(3, 7)).astype("float32")
    weights = np.linspace(1.0, 2.0, 7, dtype="float32")
    weight_tensor = keras.ops.convert_to_tensor(weights)

    gradient = backend_gradient(
        lambda x: keras.ops.sum(function(x)[0] * weight_tensor), values, compiled=compiled
    )

    # d/dx_i sum_k w_k x_(k) = w_(rank of x_i).
    ranks = np.argsort(np.argsort(-values, axis=-1, kind="stable"), axis=-1)
    np.testing.assert_allclose(gradient, weights[ranks], rtol=1e-6)


def test_native_backends_names_each_primitive_and_rejects_an_unknown_one():
    assert ops.native_backends("softmax_cross_entropy") == ("tensorflow", "torch")
    assert ops.native_backends("huber") == ("torch",)
    assert ops.native_backends("huber_mean") == ("torch",)
    assert ops.native_backends("mean") == ("torch",)
    assert ops.native_backends("lgamma_increment") == ("torch",)
    assert ops.native_backends("pairwise_distances") == ("torch",)
    assert ops.native_backends("sort_descending") == ("torch",)
    with pytest.raises(ValueError, match="unknown primitive 'dice'"):
        ops.native_backends("dice")


def _native_kernels():
    """``(module, attribute, primitive)`` of each native kernel on this backend."""
    if BACKEND == "torch":
        import torch
        import torch.nn.functional as functional

        return [
            (functional, "cross_entropy", "softmax_cross_entropy"),
            (functional, "binary_cross_entropy_with_logits", "sigmoid_cross_entropy"),
            (functional, "huber_loss", "huber"),
            (torch.ops.aten.huber_loss, "default", "huber_mean"),
            (torch, "sort", "sort_descending"),
            (torch, "lgamma", "lgamma"),
            (torch.linalg, "vector_norm", "l2_normalize"),
        ]
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return [
            (tf.nn, "sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy"),
            (tf.nn, "sigmoid_cross_entropy_with_logits", "sigmoid_cross_entropy"),
            (tf.math, "lgamma", "lgamma"),
        ]
    # jax runs the references, which XLA fuses under jit, except lgamma.
    import jax

    return [(jax.lax, "lgamma", "lgamma")]


def test_each_primitive_calls_the_native_kernel_its_backend_lists(monkeypatch):
    kernels = _native_kernels()
    called = []
    for module, attribute in {(module, attribute) for module, attribute, _ in kernels}:
        original = getattr(module, attribute)

        def spy(*args, _original=original, _attribute=attribute, **kwargs):
            called.append(_attribute)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, attribute, spy)
    logits = keras.ops.convert_to_tensor(LOGITS)

    ops.softmax_cross_entropy(LABELS, logits, -100, 0.1)
    ops.sigmoid_cross_entropy(keras.ops.zeros_like(logits), logits)
    ops.huber(keras.ops.zeros_like(logits), logits, 1.0)
    ops.huber_mean(keras.ops.zeros_like(logits), logits, 1.0)
    ops.sort_descending(logits, logits)
    ops.lgamma(keras.ops.abs(logits) + 1.0)
    ops.l2_normalize(logits)

    # The primitives above are called in the order _native_kernels lists them.
    assert called == [attribute for _, attribute, _ in kernels]
    assert sorted(primitive for *_, primitive in kernels) == sorted(
        name
        for name in (
            "softmax_cross_entropy",
            "sigmoid_cross_entropy",
            "huber",
            "huber_mean",
            "sort_descending",
            "lgamma",
            "l2_normalize",
        )
        if BACKEND in ops.native_backends(name)
    )


@pytest.mark.parametrize("function", [ops.mean, ops.mean_reference])
@pytest.mark.parametrize("axis", [1, (1, 2), (0, 2), -1, (0, 1, 2)])
def test_mean_matches_numpy_and_spreads_the_gradient_evenly(function, axis):
    values = RNG.normal(size=(3, 4, 5)).astype("float32")

    result = as_numpy(function(keras.ops.convert_to_tensor(values), axis))
    gradient = backend_gradient(lambda x: keras.ops.sum(function(x, axis)), values)

    # Float32 sums round at 2**-24 of each partial sum: a mean near 0 needs an absolute bound.
    expected = values.astype("float64").mean(axis=axis)
    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-6)
    count = values.size // result.size
    np.testing.assert_allclose(gradient, np.full(values.shape, 1.0 / count), rtol=1e-6)


@pytest.mark.parametrize("function", [ops.l2_normalize, ops.l2_normalize_reference])
@pytest.mark.parametrize("compiled", [False, True])
def test_l2_normalize_matches_numpy_value_and_gradient(function, compiled):
    values = RNG.normal(size=(3, 4, 6)).astype("float32")
    weights = RNG.normal(size=values.shape).astype("float32")

    result = as_numpy(function(keras.ops.convert_to_tensor(values)))
    gradient = backend_gradient(
        lambda x: keras.ops.sum(function(x) * keras.ops.convert_to_tensor(weights)),
        values,
        compiled=compiled,
    )

    norms = np.linalg.norm(values.astype("float64"), axis=-1, keepdims=True)
    unit = values / norms
    np.testing.assert_allclose(result, unit, rtol=1e-6, atol=1e-7)
    # d (sum w u) / d x = (w - u (u . w)) / ||x||.
    expected = (weights - unit * (unit * weights).sum(-1, keepdims=True)) / norms
    np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("function", [ops.l2_normalize, ops.l2_normalize_reference])
def test_l2_normalize_keeps_a_zero_row_zero_with_a_finite_gradient(function):
    values = np.zeros((2, 3), "float32")
    values[1] = [3.0, 0.0, 4.0]

    result = as_numpy(function(keras.ops.convert_to_tensor(values)))
    gradient = backend_gradient(lambda x: keras.ops.sum(function(x)), values)

    np.testing.assert_allclose(result, [[0.0, 0.0, 0.0], [0.6, 0.0, 0.8]], rtol=1e-6)
    # The floored norm is a constant 1e-12 at the zero row: the gradient is 1e12.
    np.testing.assert_allclose(gradient[0], np.full(3, 1e12), rtol=1e-5)
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize("function", [ops.softmax_expectation, ops.softmax_expectation_reference])
@pytest.mark.parametrize("compiled", [False, True])
def test_softmax_expectation_matches_numpy_value_and_gradient(function, compiled):
    weights = RNG.normal(size=LOGITS.shape[:-1]).astype("float32")

    values = as_numpy(function(keras.ops.convert_to_tensor(LOGITS)))
    gradient = backend_gradient(
        lambda logits: keras.ops.sum(function(logits) * keras.ops.convert_to_tensor(weights)),
        LOGITS,
        compiled=compiled,
    )

    probabilities = softmax(LOGITS.astype("float64"))
    bins = np.arange(LOGITS.shape[-1])
    expected = (probabilities * bins).sum(-1)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)
    # d E / d x_k = p_k (k - E).
    expected_gradient = weights[..., None] * probabilities * (bins - expected[..., None])
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5, atol=1e-6)


def test_softmax_expectation_leaves_the_reference_softmax_where_native(monkeypatch):
    calls = []
    original = keras.ops.softmax

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(keras.ops, "softmax", spy)
    ops.softmax_expectation(keras.ops.convert_to_tensor(LOGITS))

    native = BACKEND in ops.native_backends("softmax_expectation")
    assert calls == ([] if native else [1])
    assert ops.native_backends("softmax_expectation") == ("jax",)


@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("compiled", [False, True])
def test_softmax_matches_numpy_value_and_gradient(axis, compiled):
    weights = RNG.normal(size=LOGITS.shape).astype("float32")

    values = as_numpy(ops.softmax(keras.ops.convert_to_tensor(LOGITS), axis))
    gradient = backend_gradient(
        lambda logits: keras.ops.sum(
            ops.softmax(logits, axis) * keras.ops.convert_to_tensor(weights)
        ),
        LOGITS,
        compiled=compiled,
    )

    probabilities = softmax(np.moveaxis(LOGITS.astype("float64"), axis, -1))
    probabilities = np.moveaxis(probabilities, -1, axis)
    np.testing.assert_allclose(values, probabilities, rtol=1e-5, atol=1e-7)
    # d (sum w p) / d x_k = p_k (w_k - sum_j w_j p_j).
    mixed = (weights * probabilities).sum(axis, keepdims=True)
    np.testing.assert_allclose(gradient, probabilities * (weights - mixed), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compiled", [False, True])
def test_softmax_of_a_row_with_a_nan_logit_is_nan_on_every_backend(compiled):
    logits = LOGITS.copy()
    logits[1, 2, 0] = np.nan
    function = _compiled(lambda x: ops.softmax(x, -1)) if compiled else (lambda x: ops.softmax(x))

    values = as_numpy(function(keras.ops.convert_to_tensor(logits)))

    assert np.all(np.isnan(values[1, 2]))
    values[1, 2] = 0.0
    assert np.all(np.isfinite(values))


PAIR_FIRST = RNG.normal(size=(2, 3, 4)).astype("float32")
PAIR_SECOND = RNG.normal(size=(2, 5, 4)).astype("float32")
PAIR_MASK = RNG.uniform(size=(2, 3, 5)) < 0.4
PAIR_MASK[1, 2] = False


def pair_dot_plus_one(first, second):
    return keras.ops.sum(first * second, axis=-1) + 1.0


@pytest.mark.parametrize("function", [ops.pairwise_where, ops.pairwise_where_reference])
@pytest.mark.parametrize("compiled", [False, True])
def test_pairwise_where_evaluates_the_masked_pairs_and_zeros_the_rest(function, compiled):
    weights = RNG.normal(size=PAIR_MASK.shape).astype("float32")
    second = keras.ops.convert_to_tensor(PAIR_SECOND)
    mask = keras.ops.convert_to_tensor(PAIR_MASK)

    values = as_numpy(function(mask, pair_dot_plus_one, PAIR_FIRST, second))
    gradient = backend_gradient(
        lambda first: keras.ops.sum(
            function(mask, pair_dot_plus_one, first, second) * keras.ops.convert_to_tensor(weights)
        ),
        PAIR_FIRST,
        compiled=compiled,
    )

    first64, second64 = PAIR_FIRST.astype("float64"), PAIR_SECOND.astype("float64")
    expected = np.where(PAIR_MASK, np.einsum("bif,bjf->bij", first64, second64) + 1.0, 0.0)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)
    assert np.all(values[~PAIR_MASK] == 0.0)
    expected_gradient = np.einsum("bij,bjf->bif", np.where(PAIR_MASK, weights, 0.0), second64)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5, atol=1e-6)


def test_pairwise_where_calls_its_function_on_the_masked_pairs_only_where_native():
    shapes = []

    def recording(first, second):
        shapes.append(tuple(first.shape))
        return pair_dot_plus_one(first, second)

    ops.pairwise_where(keras.ops.convert_to_tensor(PAIR_MASK), recording, PAIR_FIRST, PAIR_SECOND)

    if BACKEND in ops.native_backends("pairwise_where"):
        assert shapes == [(int(PAIR_MASK.sum()), 4)]
    else:
        assert shapes == [(2, 3, 1, 4)]


PAIR_CLASSES = RNG.integers(0, 3, size=(2, 3, 1)).astype("int32")
PAIR_TABLE = RNG.normal(size=(2, 5, 3)).astype("float32")


def pair_dot_and_lookup(first, second):
    """Two values per pair: the dot of the float rows plus one, and ``table[class]``."""
    (rows, classes), (other_rows, table) = first, second
    lookup = keras.ops.take_along_axis(table, classes, axis=-1)[..., 0]
    return pair_dot_plus_one(rows, other_rows), lookup


@pytest.mark.parametrize("function", [ops.pairwise_where, ops.pairwise_where_reference])
@pytest.mark.parametrize("compiled", [False, True])
def test_pairwise_where_takes_tuples_of_rows_and_fills_each_value_with_its_own(function, compiled):
    weights = keras.ops.convert_to_tensor(RNG.normal(size=PAIR_MASK.shape).astype("float32"))
    mask = keras.ops.convert_to_tensor(PAIR_MASK)
    classes = keras.ops.convert_to_tensor(PAIR_CLASSES)

    def values(table):
        return function(
            mask, pair_dot_and_lookup, (PAIR_FIRST, classes), (PAIR_SECOND, table), (0.0, -1.0)
        )

    dot, lookup = (as_numpy(value) for value in values(keras.ops.convert_to_tensor(PAIR_TABLE)))
    gradient = backend_gradient(
        lambda table: keras.ops.sum(values(table)[1] * weights), PAIR_TABLE, compiled=compiled
    )

    first64, second64 = PAIR_FIRST.astype("float64"), PAIR_SECOND.astype("float64")
    expected_dot = np.where(PAIR_MASK, np.einsum("bif,bjf->bij", first64, second64) + 1.0, 0.0)
    # table[b, j, classes[b, i]] for the pair (b, i, j).
    looked_up = np.take_along_axis(PAIR_TABLE[:, None], PAIR_CLASSES[:, :, None], axis=-1)
    expected_lookup = np.where(PAIR_MASK, looked_up[..., 0], -1.0)
    np.testing.assert_allclose(dot, expected_dot, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(lookup, expected_lookup.astype("float32"))
    masked_weights = np.where(PAIR_MASK, as_numpy(weights), 0.0)
    one_hot = np.eye(PAIR_TABLE.shape[-1])[PAIR_CLASSES[..., 0]]
    expected_gradient = np.einsum("bij,bic->bjc", masked_weights, one_hot)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("function", [ops.pairwise_where, ops.pairwise_where_reference])
def test_pairwise_where_rejects_a_fill_per_value_of_the_wrong_length(function):
    with pytest.raises(ValueError, match="pairwise_where: 3 fill values for the 2 values"):
        function(
            keras.ops.convert_to_tensor(PAIR_MASK),
            pair_dot_and_lookup,
            (PAIR_FIRST, PAIR_CLASSES),
            (PAIR_SECOND, PAIR_TABLE),
            (0.0, 1.0, 2.0),
        )


def test_pairwise_where_gathers_the_rows_of_every_tuple_member_for_the_masked_pairs():
    widths = []

    def recording(first, second):
        widths.append([tuple(rows.shape) for rows in (*first, *second)])
        return pair_dot_and_lookup(first, second)

    ops.pairwise_where(
        keras.ops.convert_to_tensor(PAIR_MASK),
        recording,
        (PAIR_FIRST, PAIR_CLASSES),
        (PAIR_SECOND, PAIR_TABLE),
    )

    if BACKEND in ops.native_backends("pairwise_where"):
        count = int(PAIR_MASK.sum())
        assert widths == [[(count, 4), (count, 1), (count, 4), (count, 3)]]
    else:
        assert widths == [[(2, 3, 1, 4), (2, 3, 1, 1), (2, 1, 5, 4), (2, 1, 5, 3)]]


ROW_MASK = RNG.uniform(size=(2, 5)) < 0.5
ROW_MASK[1] = False
ROW_VALUES = RNG.normal(size=(2, 5, 3)).astype("float32")
ROW_SCALES = RNG.uniform(0.5, 2.0, size=(2, 5, 1)).astype("float32")


def row_log_sum_exp_times_scale(values, scales):
    return keras.ops.logsumexp(values, axis=-1) * scales[..., 0]


@pytest.mark.parametrize("function", [ops.rowwise_where, ops.rowwise_where_reference])
@pytest.mark.parametrize("compiled", [False, True])
def test_rowwise_where_evaluates_the_masked_rows_and_fills_the_rest(function, compiled):
    weights = RNG.normal(size=ROW_MASK.shape).astype("float32")
    mask = keras.ops.convert_to_tensor(ROW_MASK)

    def values(rows):
        return function(mask, row_log_sum_exp_times_scale, rows, ROW_SCALES, fill=-2.0)

    result = as_numpy(values(keras.ops.convert_to_tensor(ROW_VALUES)))
    gradient = backend_gradient(
        lambda rows: keras.ops.sum(values(rows) * keras.ops.convert_to_tensor(weights)),
        ROW_VALUES,
        compiled=compiled,
    )

    rows64 = ROW_VALUES.astype("float64")
    log_sum_exp = np.log(np.exp(rows64).sum(-1))
    np.testing.assert_allclose(
        result, np.where(ROW_MASK, log_sum_exp * ROW_SCALES[..., 0], -2.0), rtol=1e-6
    )
    slopes = np.where(ROW_MASK, weights * ROW_SCALES[..., 0], 0.0)[..., None] * softmax(rows64)
    np.testing.assert_allclose(gradient, slopes, rtol=1e-5, atol=1e-7)


def test_rowwise_where_calls_its_function_on_the_masked_rows_only_where_native():
    shapes = []

    def recording(values, scales):
        shapes.append((tuple(values.shape), tuple(scales.shape)))
        return row_log_sum_exp_times_scale(values, scales)

    ops.rowwise_where(keras.ops.convert_to_tensor(ROW_MASK), recording, ROW_VALUES, ROW_SCALES)

    if BACKEND in ops.native_backends("rowwise_where"):
        count = int(ROW_MASK.sum())
        assert shapes == [((count, 3), (count, 1))]
    else:
        assert shapes == [((2, 5, 3), (2, 5, 1))]


@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(x=st.floats(1e-4, 1e4))
def test_lgamma_and_its_reference_match_the_standard_library(x):
    exact = math.lgamma(np.float32(x))
    for function in (ops.lgamma, ops.lgamma_reference):
        value = as_numpy(function(keras.ops.convert_to_tensor([x], dtype="float32")))[0]
        np.testing.assert_allclose(value, exact, rtol=2e-6, atol=1e-5)


@pytest.mark.parametrize("function", [ops.lgamma_increment, ops.lgamma_increment_reference])
@settings(max_examples=hypothesis_examples(20), deadline=None)
@given(x=st.floats(1e-3, 1e6), increment=st.floats(0.0, 1e3))
def test_lgamma_increment_keeps_precision_for_large_arguments(function, x, increment):
    x, increment = float(np.float32(x)), float(np.float32(increment))
    value = as_numpy(
        function(
            keras.ops.convert_to_tensor([x], dtype="float32"),
            keras.ops.convert_to_tensor([increment], dtype="float32"),
        )
    )[0]
    exact = math.lgamma(x + increment) - math.lgamma(x)
    np.testing.assert_allclose(value, exact, rtol=1e-5, atol=1e-5)


def _digamma(x):
    """The derivative of math.lgamma by a float64 central difference (error about 1e-9)."""
    step = 1e-4 * max(1.0, x)
    return (math.lgamma(x + step) - math.lgamma(x - step)) / (2.0 * step)


@pytest.mark.parametrize("function", [ops.lgamma_increment, ops.lgamma_increment_reference])
@pytest.mark.parametrize("increment_kind", ["number", "tensor"])
def test_lgamma_increment_value_and_gradients_are_digamma_differences(function, increment_kind):
    x = np.array([0.5, 3.0, 40.0, 2500.0], dtype="float32")
    increments = np.array([0.5, 0.5, 0.5, 0.5], dtype="float32")
    increment = 0.5 if increment_kind == "number" else keras.ops.convert_to_tensor(increments)

    value = as_numpy(function(keras.ops.convert_to_tensor(x), increment))
    gradient = backend_gradient(lambda t: keras.ops.sum(function(t, increment)), x)
    increment_gradient = backend_gradient(
        lambda d: keras.ops.sum(function(keras.ops.convert_to_tensor(x), d)), increments
    )

    wide = x.astype("float64")
    exact = [math.lgamma(v + 0.5) - math.lgamma(v) for v in wide]
    np.testing.assert_allclose(value, exact, rtol=1e-5, atol=1e-6)
    # d/dx = digamma(x + d) - digamma(x); d/dd = digamma(x + d).
    expected = [_digamma(v + 0.5) - _digamma(v) for v in wide]
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        increment_gradient, [_digamma(v + 0.5) for v in wide], rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("function", [ops.lgamma, ops.lgamma_reference])
def test_lgamma_gradient_is_the_digamma_function(function):
    x = np.array([0.5, 1.0, 3.0, 40.0], dtype="float32")

    gradient = backend_gradient(lambda t: keras.ops.sum(function(t)), x)

    # digamma(0.5) = -gamma - 2 log 2, digamma(1) = -gamma, digamma(3) = 1.5 - gamma,
    # digamma(40) = H_39 - gamma.
    euler = 0.5772156649015329
    expected = [
        -euler - 2 * math.log(2),
        -euler,
        1.5 - euler,
        sum(1 / k for k in range(1, 40)) - euler,
    ]
    np.testing.assert_allclose(gradient, expected, rtol=1e-5)


def _compiled(function):
    """``function`` compiled as a training step would be: without Python between its operations."""
    if BACKEND == "torch":
        import torch

        torch._dynamo.reset()
        # fullgraph: a graph break would hide an import inside the trace.
        return torch.compile(function, fullgraph=True, backend="eager")
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    import tensorflow as tf

    return tf.function(function, jit_compile=True)


def test_a_first_call_inside_a_compiled_function_finds_the_kernels_built():
    from dl_techniques.losses.core import numerics
    from dl_techniques.losses.core.ops import _dispatch

    # As after `import dl_techniques.losses.core.ops` in a fresh process.
    _dispatch._KERNELS.pop(BACKEND, None)
    ops.preload_native_kernels()
    step = _compiled(
        lambda x, y: numerics.safe_divide(ops.huber(y, x, 1.0), keras.ops.abs(x) + 1.0)
    )

    x = np.array([0.5, -3.0, 2.0], "float32")
    y = np.zeros(3, "float32")
    result = as_numpy(step(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)))

    huber = np.where(np.abs(x) <= 1.0, 0.5 * x**2, np.abs(x) - 0.5)
    np.testing.assert_allclose(result, huber / (np.abs(x) + 1.0), rtol=1e-6)


@pytest.mark.skipif(BACKEND != "torch", reason="the device test of torch's as_tensor kernel")
@pytest.mark.parametrize(
    ("keras_device", "kept"),
    [
        ("cuda", {"cuda:1"}),
        ("cuda:0", {"cuda:0"}),
        ("cuda:1", {"cuda:1"}),
        ("cpu", {"cpu"}),
    ],
)
def test_the_torch_device_test_keeps_only_tensors_on_keras_device(monkeypatch, keras_device, kept):
    # A machine with CUDA, whose current device is cuda:1; the tensors are
    # stand-ins whose device is all the test reads.
    import types

    import torch
    from keras.src.backend.torch import core as keras_torch_core

    from dl_techniques.losses.core.ops import _torch

    fake_torch = types.SimpleNamespace(
        device=torch.device,
        cuda=types.SimpleNamespace(is_available=lambda: True, current_device=lambda: 1),
        backends=types.SimpleNamespace(mps=types.SimpleNamespace(is_available=lambda: False)),
    )
    monkeypatch.setattr(keras_torch_core, "get_device", lambda: keras_device)
    on_keras_device = _torch._keras_device_test(fake_torch)
    for device in ["cpu", "cuda:0", "cuda:1"]:
        tensor = types.SimpleNamespace(device=torch.device(device))
        assert on_keras_device(tensor) == (device in kept), device
