"""input_gradient on the current Keras backend, against hand-derived gradients."""

import keras
import numpy as np
import pytest
from keras import ops

from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.testing.numeric import backend_gradient, compiled

BACKEND = keras.backend.backend()
RANKS = [2, 3, 4]


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _quadratic_critic(weights):
    return lambda x: ops.sum(weights * x**2, axis=-1)


@pytest.mark.parametrize("rank", RANKS)
def test_quadratic_critic_gradient_is_two_w_x(rank):
    shape = (2, 3, 4, 5)[:rank]
    x = _random(shape, seed=rank)
    w = _random(shape[-1:], seed=10 + rank)

    gradient = input_gradient(_quadratic_critic(ops.convert_to_tensor(w)), x)

    assert tuple(gradient.shape) == shape
    np.testing.assert_allclose(ops.convert_to_numpy(gradient), 2.0 * w * x, rtol=1e-6)


@pytest.mark.parametrize("rank", RANKS)
def test_linear_critic_gradient_is_its_weights_for_every_sample(rank):
    shape = (5, 2, 3, 2)[:rank]
    x = _random(shape, seed=rank)
    features = int(np.prod(shape[1:]))
    v = _random((features, 1), seed=20 + rank)
    v_tensor = ops.convert_to_tensor(v)

    def critic(inputs):
        return ops.matmul(ops.reshape(inputs, (shape[0], features)), v_tensor)

    gradient = ops.convert_to_numpy(input_gradient(critic, x))

    expected = np.broadcast_to(v.reshape(shape[1:]), shape)
    np.testing.assert_allclose(gradient, expected, rtol=1e-6)


@pytest.mark.parametrize("rank", RANKS)
def test_squared_norm_of_gradient_differentiates_to_eight_w_sum_x2(rank):
    # ||2 w x||^2 = 4 sum w_j^2 x_ij^2, so its w-gradient is 8 w_j sum_i x_ij^2.
    shape = (3, 2, 2, 4)[:rank]
    x = _random(shape, seed=30 + rank)
    w = _random(shape[-1:], seed=40 + rank)

    def squared_norm(weights):
        gradient = input_gradient(_quadratic_critic(weights), ops.convert_to_tensor(x))
        return ops.sum(gradient**2)

    expected = 8.0 * w * np.sum(x**2, axis=tuple(range(rank - 1)))
    np.testing.assert_allclose(backend_gradient(squared_norm, w), expected, rtol=1e-5)


def test_wgan_gp_penalty_of_linear_critic_differentiates_to_analytic_value():
    # For f(x) = x v every per-sample gradient is v, so the penalty is
    # (||v|| - 1)^2 with v-gradient 2 (||v|| - 1) v / ||v||.
    x = _random((6, 3), seed=1)
    v = _random((3, 1), seed=2)

    def penalty(weights):
        gradient = input_gradient(lambda inputs: ops.matmul(inputs, weights), x)
        norms = ops.sqrt(ops.sum(gradient**2, axis=-1))
        return ops.mean((norms - 1.0) ** 2)

    norm = np.linalg.norm(v)
    expected = 2.0 * (norm - 1.0) * v / norm
    np.testing.assert_allclose(backend_gradient(penalty, v), expected, rtol=1e-5)


def test_gradient_stays_connected_to_what_the_inputs_were_built_from():
    # x_hat = e real + (1 - e) fake; ||2 w x_hat||^2 has fake-gradient
    # 8 w^2 x_hat (1 - e).
    real = _random((4, 3), seed=3)
    fake = _random((4, 3), seed=4)
    mix = np.asarray([[0.2], [0.5], [0.9], [0.0]], dtype="float32")
    w = _random((3,), seed=5)
    w_tensor = ops.convert_to_tensor(w)

    def squared_norm(fake_samples):
        interpolated = ops.add(mix * real, ops.multiply(1.0 - mix, fake_samples))
        gradient = input_gradient(_quadratic_critic(w_tensor), interpolated)
        return ops.sum(gradient**2)

    interpolated = mix * real + (1.0 - mix) * fake
    expected = 8.0 * w**2 * interpolated * (1.0 - mix)
    np.testing.assert_allclose(backend_gradient(squared_norm, fake), expected, rtol=1e-5)


def test_input_gradient_inside_compiled_function():
    x = _random((4, 3), seed=6)
    w = _random((3,), seed=7)

    traced_gradient = compiled(
        lambda inputs, weights: input_gradient(_quadratic_critic(weights), inputs)
    )
    gradient = traced_gradient(ops.convert_to_tensor(x), ops.convert_to_tensor(w))

    np.testing.assert_allclose(ops.convert_to_numpy(gradient), 2.0 * w * x, rtol=1e-6)


def test_double_backprop_inside_compiled_function():
    x = _random((4, 3), seed=8)
    w = _random((3,), seed=9)

    def squared_norm(weights):
        gradient = input_gradient(_quadratic_critic(weights), ops.convert_to_tensor(x))
        return ops.sum(gradient**2)

    expected = 8.0 * w * np.sum(x**2, axis=0)
    gradient = backend_gradient(squared_norm, w, compiled=True)
    np.testing.assert_allclose(gradient, expected, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_input_keeps_its_dtype(dtype):
    x = np.asarray([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], dtype="float32")
    w = np.asarray([1.0, 2.0, -0.5], dtype="float32")
    half_x = ops.cast(x, dtype)

    gradient = input_gradient(_quadratic_critic(ops.cast(w, dtype)), half_x)

    assert keras.backend.standardize_dtype(gradient.dtype) == dtype
    # These values are exact in both half formats.
    np.testing.assert_array_equal(ops.convert_to_numpy(ops.cast(gradient, "float32")), 2.0 * w * x)


def test_output_that_ignores_inputs_gives_zero_gradient():
    x = _random((3, 2), seed=10)
    constant = ops.convert_to_tensor(_random((3,), seed=11))

    gradient = input_gradient(lambda inputs: constant, x)

    np.testing.assert_array_equal(ops.convert_to_numpy(gradient), np.zeros((3, 2)))


def test_integer_output_raises_value_error():
    x = _random((3, 2), seed=12)

    with pytest.raises(ValueError, match=r"input_gradient: the output of fn .*int32"):
        input_gradient(lambda inputs: ops.cast(inputs, "int32"), x)


def test_integer_inputs_raise_value_error():
    with pytest.raises(ValueError, match=r"input_gradient: inputs .*int32.*\(2, 2\)"):
        input_gradient(lambda inputs: inputs, np.ones((2, 2), dtype="int32"))


class PenalisedLinearCritic(keras.Model):
    """A linear critic trained on MSE plus a WGAN-GP penalty on its input gradient."""

    def __init__(self, penalty_weight, **kwargs):
        super().__init__(**kwargs)
        self.critic = keras.layers.Dense(1)
        self.penalty_weight = penalty_weight

    def build(self, input_shape):
        self.critic.build(input_shape)

    def call(self, inputs):
        return self.critic(inputs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        data_loss = super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
        gradient = input_gradient(self.critic, x)
        norms = ops.sqrt(ops.sum(gradient**2, axis=-1))
        return data_loss + self.penalty_weight * ops.mean((norms - 1.0) ** 2)


def _linear_critic_problem():
    x = _random((6, 3), seed=13)
    y = _random((6, 1), seed=14)
    v = _random((3, 1), seed=15)
    b = np.asarray([0.3], dtype="float32")
    return x, y, v, b


def _penalised_model(v, b, penalty_weight, learning_rate):
    model = PenalisedLinearCritic(penalty_weight)
    model.build((None, 3))
    model.critic.set_weights([v, b])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
        loss="mse",
        # Keras' torch jit_compile means torch.compile, which cannot run double backward.
        jit_compile=BACKEND != "torch",
    )
    return model


def test_fit_with_gradient_penalty_takes_the_analytic_sgd_step():
    x, y, v, b = _linear_critic_problem()
    penalty_weight, learning_rate = 0.5, 0.1
    model = _penalised_model(v, b, penalty_weight, learning_rate)

    history = model.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)

    residual = x @ v + b - y
    norm = np.linalg.norm(v)
    expected_loss = np.mean(residual**2) + penalty_weight * (norm - 1.0) ** 2
    v_gradient = 2.0 * x.T @ residual / len(x) + penalty_weight * 2.0 * (norm - 1.0) * v / norm
    b_gradient = 2.0 * np.mean(residual, axis=0)
    new_v, new_b = model.critic.get_weights()
    assert np.all(np.isfinite(new_v)) and np.all(np.isfinite(new_b))
    np.testing.assert_allclose(float(history.history["loss"][0]), expected_loss, rtol=1e-5)
    np.testing.assert_allclose(new_v, v - learning_rate * v_gradient, atol=1e-6)
    np.testing.assert_allclose(new_b, b - learning_rate * b_gradient, atol=1e-6)


def test_evaluate_includes_the_gradient_penalty():
    x, y, v, b = _linear_critic_problem()
    model = _penalised_model(v, b, penalty_weight=2.0, learning_rate=0.1)

    loss = model.evaluate(x, y, batch_size=6, verbose=0)

    expected = np.mean((x @ v + b - y) ** 2) + 2.0 * (np.linalg.norm(v) - 1.0) ** 2
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
