"""The gradient check of core's testing kit, against gradients known by hand."""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.testing.numeric import (
    assert_gradient_matches_central_differences,
    gradient_dtype,
)

TARGETS = np.array([[0.5, -1.0, 2.0], [0.0, 1.5, -0.25]])
POINT = np.array([[1.0, 0.0, -1.0], [2.0, 0.5, 0.25]])


def softplus_loss(values, dtype, scale=1.0):
    error = values - keras.ops.convert_to_tensor(TARGETS, dtype=dtype)
    return scale * keras.ops.sum(keras.ops.softplus(error))


def softplus_reference(values):
    return np.logaddexp(0.0, values - TARGETS)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_a_correct_gradient_passes_and_is_returned(compiled):
    gradient = assert_gradient_matches_central_differences(
        softplus_loss, softplus_reference, POINT, rtol=1e-7, float32_rtol=1e-5, compiled=compiled
    )
    assert gradient.dtype == np.float64
    np.testing.assert_allclose(gradient, 1.0 / (1.0 + np.exp(TARGETS - POINT)), rtol=1e-5)


def test_fn_receives_the_tensor_in_the_dtype_it_computes_in():
    seen = []

    def record(values, dtype):
        seen.append((keras.backend.standardize_dtype(values.dtype), dtype))
        return softplus_loss(values, dtype)

    assert_gradient_matches_central_differences(
        record, softplus_reference, POINT, rtol=1e-7, float32_rtol=1e-5
    )
    assert seen[-1] == (gradient_dtype(), gradient_dtype())
    assert_gradient_matches_central_differences(
        record, softplus_reference, POINT, rtol=1e-5, dtype="float32"
    )
    assert seen[-1] == ("float32", "float32")
    assert_gradient_matches_central_differences(
        record, softplus_reference, POINT, rtol=1e-7, dtype="float64"
    )
    assert seen[-1] == ("float64", "float64")


def test_float64_runs_on_every_backend_when_asked_with_float64_tolerances():
    # 1 + 1e-6 scales the gradient: outside rtol 1e-8, inside float32_rtol 1e-3,
    # which must not apply to a float64 gradient.
    with pytest.raises(AssertionError, match=r"backend gradient \(float64\)"):
        assert_gradient_matches_central_differences(
            lambda values, dtype: softplus_loss(values, dtype, scale=1.0 + 1e-6),
            softplus_reference,
            POINT,
            rtol=1e-8,
            float32_rtol=1e-3,
            dtype="float64",
        )


def test_float32_gradients_use_the_float32_tolerances():
    def off_by_a_thousandth(values, dtype):
        return softplus_loss(values, dtype, scale=1.001)

    assert_gradient_matches_central_differences(
        off_by_a_thousandth,
        softplus_reference,
        POINT,
        rtol=1e-9,
        float32_rtol=2e-3,
        dtype="float32",
    )
    with pytest.raises(AssertionError, match=r"backend gradient \(float32\)"):
        assert_gradient_matches_central_differences(
            off_by_a_thousandth, softplus_reference, POINT, rtol=1e-4, dtype="float32"
        )
    with pytest.raises(AssertionError):
        assert_gradient_matches_central_differences(
            off_by_a_thousandth,
            softplus_reference,
            POINT,
            rtol=1e-9,
            float32_rtol=1e-4,
            float32_atol=1e-6,
            dtype="float32",
        )


def test_a_gradient_the_backend_cannot_see_fails():
    # stop_gradient hides half of the function from autodiff, not from the reference.
    def half_hidden(values, dtype):
        return softplus_loss(values, dtype) + keras.ops.sum(keras.ops.stop_gradient(values) ** 2)

    with pytest.raises(AssertionError, match="central differences"):
        assert_gradient_matches_central_differences(
            half_hidden,
            lambda values: softplus_reference(values) + values**2,
            POINT,
            rtol=1e-3,
            atol=1e-3,
        )


def test_step_sets_the_difference_width():
    # A kink at 0 inside [-step, step] of the point 1e-3: steps of 1e-2 straddle
    # it and give the average slope 0.55, not the slope 1.
    point = np.array([1e-3])

    def relu_sum(values, dtype):
        return keras.ops.sum(keras.ops.relu(values))

    def reference(values):
        return np.maximum(values, 0.0)

    assert_gradient_matches_central_differences(relu_sum, reference, point, rtol=1e-6)
    with pytest.raises(AssertionError):
        assert_gradient_matches_central_differences(
            relu_sum, reference, point, rtol=1e-6, step=1e-2
        )
