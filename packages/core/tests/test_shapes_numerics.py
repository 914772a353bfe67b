"""core.shapes, core.numerics and the hyper-parameter checks of core.validation."""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import numerics, ops, scopes, shapes, validation
from dl_techniques.losses.core.testing.numeric import backend_gradient

BACKEND = keras.backend.backend()


def _value(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def test_static_shape_and_matching():
    tensor = keras.ops.zeros((2, 3))
    assert shapes.static_shape(tensor) == (2, 3)
    assert shapes.shapes_match((2, None), (2, 3))
    assert not shapes.shapes_match((2, 3), (2, 4))
    assert not shapes.shapes_match((2, 3), (2, 3, 1))
    assert shapes.sizes_differ(2, 3) and not shapes.sizes_differ(None, 3)


def test_squeeze_trailing_unit_axis_on_either_side():
    a, b = shapes.squeeze_trailing_unit_axis(keras.ops.zeros((4,)), keras.ops.zeros((4, 1)))
    assert shapes.static_shape(a) == (4,) and shapes.static_shape(b) == (4,)
    a, b = shapes.squeeze_trailing_unit_axis(keras.ops.zeros((4, 3, 1)), keras.ops.zeros((4, 3)))
    assert shapes.static_shape(a) == (4, 3)


def test_shape_checks_name_the_loss_argument_and_shapes():
    with pytest.raises(
        ValueError,
        match=r"L: `y_true` and `y_pred` must have the same shape; "
        r"got y_true shape \(2, 3\) and y_pred shape \(2, 4\)\.",
    ):
        shapes.check_same_shape("L", keras.ops.zeros((2, 3)), keras.ops.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"L: `y_pred` must have shape \(batch, horizon\)"):
        shapes.check_min_rank("L", "y_pred", keras.ops.zeros((2,)), 2, "(batch, horizon)")
    with pytest.raises(ValueError, match=r"scores shape \(8, 1\), gradients shape \(7, 3\)"):
        shapes.check_same_batch(
            "L", {"scores": keras.ops.zeros((8, 1)), "gradients": keras.ops.zeros((7, 3))}
        )
    shapes.check_same_batch("L", {"a": keras.ops.zeros((8, 1)), "b": keras.ops.zeros((8,))})


SAFE_DIVIDES = [numerics.safe_divide, numerics.safe_divide_reference]


@pytest.mark.parametrize("safe_divide", SAFE_DIVIDES)
def test_safe_divide_gives_the_empty_value_and_keeps_nan(safe_divide):
    numerator = np.array([1.0, 0.0, np.nan, 2.0], dtype="float32")
    denominator = np.array([2.0, 0.0, 1.0, np.nan], dtype="float32")
    result = _value(safe_divide(numerator, denominator, empty_value=1.0))
    assert result[:2].tolist() == [0.5, 1.0]
    assert np.isnan(result[2]) and np.isnan(result[3])


@pytest.mark.parametrize("safe_divide", SAFE_DIVIDES)
def test_safe_divide_broadcasts_and_keeps_the_numerator_dtype(safe_divide):
    numerator = np.array([[1.0, 2.0], [3.0, 4.0]], dtype="float32")
    denominator = np.array([[2.0], [0.0]], dtype="float32")
    result = safe_divide(keras.ops.convert_to_tensor(numerator), denominator, empty_value=-1.0)
    assert keras.backend.standardize_dtype(result.dtype) == "float32"
    assert _value(result).tolist() == [[0.5, 1.0], [-1.0, -1.0]]


def _gradients_of_sum_of_safe_divide(safe_divide, numerator, denominator):
    """The gradients of ``sum(safe_divide(n, d))`` with respect to n and d."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        variables = [tf.constant(numerator), tf.constant(denominator)]
        with tf.GradientTape() as tape:
            tape.watch(variables)
            total = keras.ops.sum(safe_divide(*variables))
        return [gradient.numpy() for gradient in tape.gradient(total, variables)]
    if BACKEND == "jax":
        import jax

        gradients = jax.grad(lambda n, d: keras.ops.sum(safe_divide(n, d)), argnums=(0, 1))(
            numerator, denominator
        )
        return [np.asarray(gradient) for gradient in gradients]
    import torch

    variables = [torch.tensor(value, requires_grad=True) for value in (numerator, denominator)]
    keras.ops.sum(safe_divide(*variables)).backward()
    return [variable.grad.numpy() for variable in variables]


@pytest.mark.parametrize("safe_divide", SAFE_DIVIDES)
def test_safe_divide_gradient_is_finite_at_a_zero_denominator(safe_divide):
    numerator = np.array([1.0, 3.0], dtype="float32")
    denominator = np.array([2.0, 0.0], dtype="float32")
    numerator_gradient, denominator_gradient = _gradients_of_sum_of_safe_divide(
        safe_divide, numerator, denominator
    )
    # d (n / d) / dn = 1 / d and d (n / d) / dd = -n / d^2 where d > 0; 0 at d = 0.
    assert numerator_gradient.tolist() == [0.5, 0.0]
    assert denominator_gradient.tolist() == [-0.25, 0.0]


def test_weighted_mean_counts_integer_weights_as_repeats():
    values = np.array([[1.0, 3.0], [5.0, 7.0]], dtype="float32")
    weights = np.array([[2.0], [1.0]], dtype="float32")
    assert _value(numerics.weighted_mean(values, weights)) == pytest.approx(
        np.mean([1, 3, 1, 3, 5, 7])
    )
    assert _value(numerics.weighted_mean(values, weights, axis=0)).tolist() == [
        pytest.approx(7 / 3),
        pytest.approx(13 / 3),
    ]
    assert _value(numerics.weighted_mean(values, np.zeros((2, 1), "float32"))) == 0.0


def test_compute_dtype():
    assert numerics.compute_dtype("bfloat16") == "float32"
    assert numerics.compute_dtype("float16") == "float32"
    assert numerics.compute_dtype("float64") == "float64"


@pytest.mark.parametrize(
    ("check", "args", "good", "bad", "message"),
    [
        (validation.check_positive, (), 0.5, 0.0, r"a finite number > 0; got x=0\.0"),
        (validation.check_positive, (), 2, float("inf"), r"> 0; got x=inf"),
        (validation.check_non_negative, (), 0.0, -1e-3, r">= 0; got x=-0\.001"),
        (validation.check_interval, (0.0, 1.0), 1.0, 1.5, r"in \[0, 1\]; got x=1\.5"),
        (validation.check_positive_int, (), 3, 2.0, r"integer >= 1; got x=2\.0"),
        (validation.check_positive_int, (), 1, True, r"integer >= 1; got x=True"),
        (validation.check_bool, (), False, 0, r"a bool; got x=0"),
        (validation.check_choice, (("a", "b"),), "b", "c", r"one of .a., .b.; got x=.c."),
    ],
)
def test_hyperparameter_checks(check, args, good, bad, message):
    check("SomeLoss", "x", good, *args)
    with pytest.raises(ValueError, match=rf"^SomeLoss: `x` must be .*{message}"):
        check("SomeLoss", "x", bad, *args)


def test_is_real_number_excludes_bool_and_non_finite():
    assert validation.is_real_number(1) and validation.is_real_number(np.float32(0.5))
    assert not validation.is_real_number(True)
    assert not validation.is_real_number(float("nan"))
    assert not validation.is_real_number("1")


AS_TENSORS = [numerics.as_tensor, numerics.as_tensor_reference]


@pytest.mark.parametrize("as_tensor", AS_TENSORS)
def test_as_tensor_returns_a_tensor_of_the_dtype_as_it_is(as_tensor):
    tensor = keras.ops.convert_to_tensor(np.array([[1.5, -2.0]], dtype="float32"))
    assert as_tensor(tensor) is tensor
    assert as_tensor(tensor, "float32") is tensor
    halved = as_tensor(tensor, "float16")
    assert keras.backend.standardize_dtype(halved.dtype) == "float16"
    assert _value(halved).tolist() == [[1.5, -2.0]]


@pytest.mark.parametrize("as_tensor", AS_TENSORS)
@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        ([[1, 2], [3, 4]], None),
        ([[1, 2], [3, 4]], "float32"),
        (np.array([0.1, 0.2], dtype="float64"), "float32"),
        (np.array([0.1, 0.2], dtype="float64"), "float16"),
        (np.array([True, False]), "float32"),
        (2.5, None),
    ],
)
def test_as_tensor_converts_as_keras_does(as_tensor, value, dtype):
    expected = keras.ops.convert_to_tensor(value, dtype)
    result = as_tensor(value, dtype)
    assert keras.ops.is_tensor(result)
    assert numerics.dtype_name(result) == keras.backend.standardize_dtype(expected.dtype)
    assert _value(result).tolist() == _value(expected).tolist()


@pytest.mark.parametrize("as_tensor", AS_TENSORS)
@pytest.mark.parametrize("source_dtype", ["int32", "bool"])
def test_as_tensor_casts_a_tensor_of_another_dtype(as_tensor, source_dtype):
    tensor = keras.ops.convert_to_tensor(np.array([1, 0, 1]).astype(source_dtype))
    result = as_tensor(tensor, "float32")
    assert numerics.dtype_name(result) == "float32"
    assert _value(result).tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("as_tensor", AS_TENSORS)
def test_as_tensor_converts_a_variable_as_keras_does(as_tensor):
    variable = keras.Variable(np.array([1.0, 2.0], dtype="float32"))
    result = as_tensor(variable, "float32")
    assert type(result) is type(keras.ops.convert_to_tensor(variable, "float32"))
    assert _value(result).tolist() == [1.0, 2.0]


@pytest.mark.parametrize("as_tensor", AS_TENSORS)
@pytest.mark.parametrize("dtype", [None, "float32", "float16"])
@pytest.mark.parametrize("compiled", [False, True])
def test_the_gradient_flows_through_as_tensor(as_tensor, dtype, compiled):
    # d/dx sum(3 x) = 3, through the identity and through a cast and back.
    gradient = backend_gradient(
        lambda x: keras.ops.sum(keras.ops.cast(as_tensor(x, dtype), "float32") * 3.0),
        np.array([[0.5, -1.0], [2.0, 0.25]], dtype="float32"),
        compiled=compiled,
    )
    assert gradient.tolist() == [[3.0, 3.0], [3.0, 3.0]]


@pytest.mark.skipif(BACKEND != "torch", reason="only torch moves a tensor to Keras' device")
def test_as_tensor_hands_a_tensor_off_keras_device_to_keras():
    import torch

    # A meta tensor has no values; Keras' conversion gives it storage on its device.
    result = numerics.as_tensor(torch.empty((2, 3), device="meta"), "float32")
    expected = keras.ops.convert_to_tensor(torch.empty((2, 3), device="meta"), "float32")
    assert result.device == expected.device
    assert not result.is_meta and tuple(result.shape) == (2, 3)


def test_as_tensor_runs_natively_on_torch_only():
    assert ops.native_backends("as_tensor") == ("torch",)


def test_dtype_name_is_keras_name_of_the_dtype():
    for dtype in ["float32", "float16", "int32", "bool"]:
        tensor = keras.ops.zeros((2,), dtype=dtype)
        assert numerics.dtype_name(tensor) == dtype
        assert numerics.dtype_name(tensor) == dtype  # from the cache
    assert numerics.dtype_name(keras.KerasTensor((2,), dtype="float64")) == "float64"


def test_loss_name_scope_names_variables_except_on_torch():
    with scopes.loss_name_scope("outer_loss"):
        variable = keras.Variable(1.0, name="v")
    assert variable.path == ("v" if BACKEND == "torch" else "outer_loss/v")
