"""The torch kernels with their own backward pass differentiate that pass correctly.

``input_gradient`` (gradient penalties) differentiates a gradient again, with
``create_graph=True``. A kernel whose backward pass reads a value it saved from
the forward pass must then recompute that value from the inputs, or the
second derivative misses its terms. Each kernel's Hessian-vector product is
compared with that of its ``keras.ops`` reference, whose second derivative
autodiff takes through every operation.
"""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import ops

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="the native kernels with their own backward pass are torch's",
)

RNG = np.random.default_rng(9)


def hessian_vector_product(function, point, direction):
    """``d/dx <d f / dx, u>`` by two reverse passes, the first with create_graph."""
    import torch

    x = torch.tensor(point, requires_grad=True)
    (gradient,) = torch.autograd.grad(function(x), x, create_graph=True)
    (product,) = torch.autograd.grad((gradient * torch.tensor(direction)).sum(), x)
    return product.numpy()


def assert_same_second_derivative(native, reference, point):
    direction = RNG.normal(size=point.shape).astype("float32")
    np.testing.assert_allclose(
        hessian_vector_product(native, point, direction),
        hessian_vector_product(reference, point, direction),
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("axis", [None, 0])
def test_soft_confusion_counts(from_logits, axis):
    import torch

    labels = torch.tensor((RNG.uniform(size=(6, 3)) > 0.5).astype("float32"))
    predictions = RNG.uniform(0.2, 0.8, size=(6, 3)).astype("float32")

    def scalar(function):
        def value(x):
            tp, fn, fp, tn = function(labels, x, 5.0, from_logits, None, axis)
            return (2.0 * tp - 0.3 * fn + fp * fp + tn * tp).sum()

        return value

    assert_same_second_derivative(
        scalar(ops.soft_confusion_counts), scalar(ops.soft_confusion_counts_reference), predictions
    )


@pytest.mark.parametrize("trained", ["rows", "columns"])
def test_blockwise_softplus_sums(trained):
    import torch

    rows = RNG.normal(size=(5, 3)).astype("float32")
    columns = RNG.normal(size=(7, 3)).astype("float32")
    weights = torch.tensor(RNG.uniform(0.5, 2.0, size=5).astype("float32"))

    def scalar(function):
        def value(x):
            first, second = (
                (x, torch.tensor(columns)) if trained == "rows" else (torch.tensor(rows), x)
            )
            return (function(first, second, 4.0, -2.0, 3) ** 2 * weights).sum()

        return value

    point = rows if trained == "rows" else columns
    assert_same_second_derivative(
        scalar(ops.blockwise_softplus_sums), scalar(ops.blockwise_softplus_sums_reference), point
    )


@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean"])
def test_pairwise_distances(distance):
    import torch

    embeddings = RNG.normal(size=(5, 3)).astype("float32")
    weights = torch.tensor(RNG.normal(size=(5, 5)).astype("float32"))

    def scalar(function):
        return lambda x: (function(x, distance) ** 2 * weights).sum()

    assert_same_second_derivative(
        scalar(ops.pairwise_distances), scalar(ops.pairwise_distances_reference), embeddings
    )


def test_overlap_sums():
    import torch

    labels = torch.tensor(RNG.uniform(size=(2, 4, 4, 3)).astype("float32"))
    predictions = RNG.uniform(size=(2, 4, 4, 3)).astype("float32")

    def scalar(function):
        def value(x):
            intersection, predicted, actual = function(labels, x, None, (1, 2))
            return (intersection * predicted / (actual + predicted)).sum()

        return value

    assert_same_second_derivative(
        scalar(ops.overlap_sums), scalar(ops.overlap_sums_reference), predictions
    )


def test_lovasz_absolute_errors():
    import torch

    labels = torch.tensor((RNG.uniform(size=(2, 6, 3)) > 0.5).astype("float32"))
    predictions = RNG.uniform(size=(2, 6, 3)).astype("float32")

    def scalar(function):
        return lambda x: (function(labels, x, None) ** 2).sum()

    assert_same_second_derivative(
        scalar(ops.lovasz_absolute_errors),
        scalar(ops.lovasz_absolute_errors_reference),
        predictions,
    )
