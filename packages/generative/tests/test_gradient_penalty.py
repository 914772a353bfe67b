import keras
import numpy as np
import pytest

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import (
    as_numpy,
    assert_gradient_matches_central_differences,
    central_differences,
)
from dl_techniques.losses.generative.gradient_penalty import compute_gradient_penalty

SAMPLE_SHAPES = [(5,), (3, 4), (2, 3, 2)]
"""One sample of rank 1, 2 and 3: inputs of rank 2, 3 and 4."""


def linear_critic(weights):
    """A Keras critic ``x -> sum(w * x) + 0.3`` over all non-batch axes."""
    critic = keras.Sequential(
        [keras.Input(weights.shape), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    critic.set_weights([weights.reshape(-1, 1), np.array([0.3], "float32")])
    return critic


def tanh_critic_numpy(samples, hidden_weights, output_weights):
    """``f(x) = tanh(flatten(x) W) v`` per sample, in float64."""
    flat = samples.reshape(len(samples), -1)
    return (np.tanh(flat @ hidden_weights) @ output_weights)[:, 0]


def penalty_by_finite_differences(samples, hidden_weights, output_weights, lambda_gp, step=1e-6):
    """WGAN-GP penalty at ``samples`` with input gradients from central differences."""
    # Each sample's score depends on its own row only, so the gradient of the
    # summed scores holds every per-sample input gradient.
    gradients = central_differences(
        lambda flat: tanh_critic_numpy(flat, hidden_weights, output_weights),
        samples.reshape(len(samples), -1),
        step=step,
    )
    norms = np.sqrt(np.sum(gradients**2, axis=1) + 1e-12)
    return lambda_gp * np.mean((norms - 1.0) ** 2)


def tanh_critic(hidden_weights, output_weights):
    def critic(samples):
        flat = keras.ops.reshape(samples, (keras.ops.shape(samples)[0], -1))
        hidden = keras.ops.tanh(keras.ops.matmul(flat, hidden_weights))
        return keras.ops.matmul(hidden, output_weights)

    return critic


@pytest.mark.parametrize("sample_shape", SAMPLE_SHAPES)
def test_linear_critic_penalty_is_analytic_for_any_input_rank(sample_shape):
    # The input gradient of x -> sum(w * x) + b is w everywhere, whatever alpha.
    rng = np.random.default_rng(len(sample_shape))
    weights = rng.normal(size=sample_shape).astype("float32")
    real = rng.normal(size=(6, *sample_shape)).astype("float32")
    fake = rng.normal(size=(6, *sample_shape)).astype("float32")
    penalty = compute_gradient_penalty(linear_critic(weights), real, fake, lambda_gp=4.0, seed=3)
    expected = 4.0 * (np.linalg.norm(weights.astype("float64")) - 1.0) ** 2
    np.testing.assert_allclose(as_numpy(penalty), expected, rtol=1e-5)


@pytest.mark.parametrize("sample_shape", SAMPLE_SHAPES)
def test_penalty_is_zero_for_a_unit_norm_linear_critic(sample_shape):
    rng = np.random.default_rng(10 + len(sample_shape))
    weights = rng.normal(size=sample_shape)
    weights = (weights / np.linalg.norm(weights)).astype("float32")
    real = rng.normal(size=(5, *sample_shape)).astype("float32")
    fake = rng.normal(scale=3.0, size=(5, *sample_shape)).astype("float32")
    penalty = compute_gradient_penalty(linear_critic(weights), real, fake, lambda_gp=10.0)
    np.testing.assert_allclose(as_numpy(penalty), 0.0, atol=1e-9)


@pytest.mark.parametrize("sample_shape", [(4,), (2, 3, 2)])
def test_nonlinear_critic_penalty_matches_finite_differences(sample_shape):
    # With real == fake every interpolate is the real sample, so the value
    # does not depend on alpha and the numpy reference sees the same points.
    rng = np.random.default_rng(20 + len(sample_shape))
    features = int(np.prod(sample_shape))
    hidden_weights = rng.normal(size=(features, 6)).astype("float32")
    output_weights = rng.normal(size=(6, 1)).astype("float32")
    samples = rng.normal(scale=0.5, size=(5, *sample_shape)).astype("float32")
    penalty = compute_gradient_penalty(
        tanh_critic(hidden_weights, output_weights), samples, samples, lambda_gp=2.0, seed=1
    )
    expected = penalty_by_finite_differences(
        samples.astype("float64"), hidden_weights, output_weights, 2.0
    )
    np.testing.assert_allclose(as_numpy(penalty), expected, rtol=1e-4)


def test_each_sample_draws_its_own_alpha():
    # Critic x -> |x|^2 / 2 (gradient x) and x -> |x|^2 (gradient 2x) with
    # real = 0, fake = unit vectors: the penalties are mean (alpha - 1)^2 and
    # mean (2 alpha - 1)^2, both 1/3 in expectation for alpha ~ U[0, 1] per
    # sample. One alpha a for the whole batch cannot give both: (1 - a)^2 =
    # 1/3 forces a = 0.42 and (2a - 1)^2 = 0.02.
    real = np.zeros((2000, 3), "float32")
    fake = np.tile(np.array([[0.6, 0.0, 0.8]], "float32"), (2000, 1))
    for scale in (0.5, 1.0):
        penalty = compute_gradient_penalty(
            lambda x, scale=scale: scale * keras.ops.sum(x * x, axis=1),
            real,
            fake,
            lambda_gp=1.0,
            seed=5,
        )
        np.testing.assert_allclose(as_numpy(penalty), 1.0 / 3.0, atol=0.04)


def test_penalty_gradient_reaches_the_critic_weights_by_double_backprop():
    # For x -> x . w the penalty is lambda (|w| - 1)^2 with gradient
    # 2 lambda (|w| - 1) w / |w| with respect to w.
    rng = np.random.default_rng(30)
    weights = np.array([[1.0], [2.0], [-2.0]], "float32")  # |w| = 3
    real = rng.normal(size=(4, 3)).astype("float32")
    fake = rng.normal(size=(4, 3)).astype("float32")

    def penalty_of_weights(kernel):
        return compute_gradient_penalty(
            lambda x: keras.ops.matmul(x, kernel), real, fake, lambda_gp=1.5, seed=2
        )

    gradient = input_gradient(penalty_of_weights, keras.ops.convert_to_tensor(weights))
    np.testing.assert_allclose(as_numpy(gradient), 2 * 1.5 * (3.0 - 1.0) * weights / 3.0, rtol=1e-5)


def test_penalty_gradient_with_respect_to_nonlinear_critic_weights_matches_finite_differences():
    rng = np.random.default_rng(31)
    hidden_weights = rng.normal(size=(3, 4)).astype("float32")
    output_weights = rng.normal(size=(4, 1)).astype("float32")
    samples = rng.normal(scale=0.5, size=(5, 3)).astype("float32")

    def penalty_of_output_weights(weights):
        return compute_gradient_penalty(
            tanh_critic(hidden_weights, weights), samples, samples, lambda_gp=2.0, seed=0
        )

    hidden64 = hidden_weights.astype("float64")
    # Central differences of a penalty that is itself built from central differences.
    assert_gradient_matches_central_differences(
        lambda weights, dtype: penalty_of_output_weights(weights),
        lambda weights: penalty_by_finite_differences(samples, hidden64, weights, 2.0, 1e-6),
        output_weights,
        rtol=2e-3,
        atol=1e-4,
        dtype="float32",
        step=1e-5,
    )


def test_int_seed_repeats_and_seed_generator_draws_afresh():
    real = np.zeros((16, 2), "float32")
    fake = np.ones((16, 2), "float32")

    def critic(x):
        return keras.ops.sum(x * x, axis=1)

    first = as_numpy(compute_gradient_penalty(critic, real, fake, seed=4))
    assert as_numpy(compute_gradient_penalty(critic, real, fake, seed=4)) == first
    generator = keras.random.SeedGenerator(4)
    draws = [
        as_numpy(compute_gradient_penalty(critic, real, fake, seed=generator)) for _ in range(2)
    ]
    assert draws[0] != draws[1]


@pytest.mark.parametrize("lambda_gp", [-1.0, float("nan"), True])
def test_invalid_lambda_gp_raises(lambda_gp):
    with pytest.raises(ValueError, match="compute_gradient_penalty.*lambda_gp"):
        compute_gradient_penalty(
            lambda x: x, np.zeros((2, 1)), np.zeros((2, 1)), lambda_gp=lambda_gp
        )


def test_mismatched_real_and_fake_shapes_raise():
    with pytest.raises(ValueError, match=r"compute_gradient_penalty.*\(4, 3\).*\(4, 2\)"):
        compute_gradient_penalty(
            lambda x: x, np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32")
        )


def test_seed_of_another_type_raises():
    with pytest.raises(ValueError, match="compute_gradient_penalty.*seed"):
        compute_gradient_penalty(lambda x: x, np.zeros((2, 1)), np.zeros((2, 1)), seed="one")
