"""optimizer_step on the current Keras backend, against closed-form gradients in numpy."""

import keras
import numpy as np
import pytest
from keras import ops

from dl_techniques.losses.core.training import (
    StatelessState,
    finish_train_step,
    optimizer_step,
    split_train_step_args,
)

BACKEND = keras.backend.backend()
X = np.array([[1.0, -0.5, 2.0], [0.5, 1.5, -1.0], [-2.0, 0.0, 0.5], [1.0, 1.0, 1.0]], "float32")
Y = np.array([[0.5, -1.0], [2.0, 0.0], [-1.0, 1.5], [0.0, 0.5]], "float32")
W1 = np.array([[0.5, -0.25], [0.125, 0.75], [-0.5, 0.25]], "float32")
B1 = np.array([0.25, -0.5], "float32")
W2 = np.array([[1.0, 0.5], [-0.75, 0.25]], "float32")
B2 = np.array([0.125, 0.0], "float32")
FIRST_LR, SECOND_LR = 0.1, 0.05


def tensor(array):
    return ops.convert_to_tensor(array)


def dense(kernel, bias):
    layer = keras.layers.Dense(kernel.shape[1])
    layer.build((None, kernel.shape[0]))
    layer.set_weights([kernel, bias])
    return layer


def mse(predictions, targets):
    return ops.mean((predictions - tensor(targets)) ** 2)


def mse_gradients(inputs, kernel, bias, targets):
    """Loss and (d/dkernel, d/dbias) of mean((inputs kernel + bias - targets)^2), in float64."""
    inputs, kernel, bias, targets = (a.astype("float64") for a in (inputs, kernel, bias, targets))
    residual = inputs @ kernel + bias - targets
    slope = 2.0 * residual / residual.size
    return np.mean(residual**2), inputs.T @ slope, slope.sum(axis=0)


def two_layer_gradients(w1, b1, w2, b2):
    """Loss and (d/dW1, d/db1) of mean(((X W1 + b1) W2 + b2 - Y)^2), in float64."""
    hidden = X.astype("float64") @ w1 + b1
    loss, _, _ = mse_gradients(hidden, w2, b2, Y)
    residual = hidden @ w2 + b2 - Y
    slope = (2.0 * residual / residual.size) @ w2.T
    return loss, X.T @ slope, slope.sum(axis=0)


def numpy(tensor):
    return ops.convert_to_numpy(tensor)


def test_one_step_moves_only_the_given_variables_down_their_gradient():
    first, second = dense(W1, B1), dense(W2, B2)

    def loss_fn():
        residual = second(first(X)) - tensor(Y)
        return ops.mean(residual**2), ops.max(ops.abs(residual))

    loss, aux = optimizer_step(loss_fn, first.trainable_variables, keras.optimizers.SGD(FIRST_LR))

    expected_loss, d_w1, d_b1 = two_layer_gradients(W1, B1, W2, B2)
    residual = (X @ W1 + B1) @ W2 + B2 - Y
    np.testing.assert_allclose(numpy(loss), expected_loss, rtol=1e-6)
    np.testing.assert_allclose(numpy(aux), np.abs(residual).max(), rtol=1e-6)
    np.testing.assert_allclose(numpy(first.kernel), W1 - FIRST_LR * d_w1, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(numpy(first.bias), B1 - FIRST_LR * d_b1, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(numpy(second.kernel), W2)
    np.testing.assert_array_equal(numpy(second.bias), B2)


def test_a_variable_the_loss_ignores_gets_a_zero_gradient():
    layer = dense(W2, B2)
    unused = keras.Variable(np.ones((2,), "float32"), name="unused")
    optimizer = keras.optimizers.SGD(FIRST_LR)

    optimizer_step(lambda: (mse(layer(Y), Y), None), [layer.kernel, unused], optimizer)

    _, d_kernel, _ = mse_gradients(Y, W2, B2, Y)
    np.testing.assert_allclose(numpy(layer.kernel), W2 - FIRST_LR * d_kernel, rtol=1e-6)
    np.testing.assert_array_equal(numpy(unused), np.ones(2))
    np.testing.assert_array_equal(numpy(layer.bias), B2)


def test_variables_the_loss_assigns_keep_their_new_values():
    layer = dense(W1, B1)
    seeds, twin = keras.random.SeedGenerator(3), keras.random.SeedGenerator(3)

    def loss_fn():
        noise = keras.random.normal((4, 3), seed=seeds)
        return mse(layer(tensor(X) + 0.0 * noise), Y), None

    optimizer_step(loss_fn, layer.trainable_variables, keras.optimizers.SGD(FIRST_LR))

    twin.next()
    np.testing.assert_array_equal(numpy(seeds.state), numpy(twin.state))


def test_the_loss_is_scaled_for_a_loss_scale_optimizer_and_returned_unscaled():
    layer = dense(W1, B1)
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(FIRST_LR), initial_scale=1024.0
    )

    loss, _ = optimizer_step(lambda: (mse(layer(X), Y), None), layer.trainable_variables, optimizer)

    expected_loss, d_kernel, d_bias = mse_gradients(X, W1, B1, Y)
    np.testing.assert_allclose(numpy(loss), expected_loss, rtol=1e-6)
    np.testing.assert_allclose(numpy(layer.kernel), W1 - FIRST_LR * d_kernel, rtol=1e-5)
    np.testing.assert_allclose(numpy(layer.bias), B1 - FIRST_LR * d_bias, rtol=1e-5)


class _Optimizers(keras.optimizers.Optimizer):
    """Two optimizers seen by ``fit`` as one, so the jax trainer threads both."""

    def __init__(self, first, second, model):
        super().__init__(learning_rate=0.0)
        self.first, self.second, self._model = first, second, model

    @property
    def variables(self):
        return [*self.first.variables, *self.second.variables]

    def build(self, variables):
        self.first.build(self._model.first.trainable_variables)
        self.second.build(self._model.second.trainable_variables)
        self.built = True


class TwoOptimizerModel(keras.Model):
    """Steps ``first`` on its own loss, then ``second`` on the loss through both."""

    def __init__(self):
        super().__init__()
        self.first, self.second = dense(W1, B1), dense(W2, B2)
        self.first_loss = keras.metrics.Mean(name="first_loss")
        self.second_loss = keras.metrics.Mean(name="second_loss")
        self.built = True

    def call(self, inputs):
        return self.second(self.first(inputs))

    @property
    def metrics(self):
        return [self.first_loss, self.second_loss]

    def compile(self, first_optimizer, second_optimizer):
        self.first_optimizer, self.second_optimizer = first_optimizer, second_optimizer
        super().compile(optimizer=_Optimizers(first_optimizer, second_optimizer, self))

    def train_step(self, *args):
        state, (x, y) = split_train_step_args(self, args)
        first_loss, _ = optimizer_step(
            lambda: (mse(self.first(x), y), None),
            self.first.trainable_variables,
            self.first_optimizer,
            state,
        )
        second_loss, _ = optimizer_step(
            lambda: (mse(self(x), y), None),
            self.second.trainable_variables,
            self.second_optimizer,
            state,
        )

        def logs():
            self.first_loss.update_state(first_loss)
            self.second_loss.update_state(second_loss)
            return {metric.name: metric.result() for metric in self.metrics}

        return finish_train_step(state, logs)


def test_fit_steps_each_sub_model_with_its_own_optimizer_in_turn():
    model = TwoOptimizerModel()
    first_optimizer, second_optimizer = (
        keras.optimizers.SGD(FIRST_LR),
        keras.optimizers.SGD(SECOND_LR),
    )
    model.compile(first_optimizer, second_optimizer)

    history = model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)

    first_loss, d_w1, d_b1 = mse_gradients(X, W1, B1, Y)
    w1, b1 = W1 - FIRST_LR * d_w1, B1 - FIRST_LR * d_b1
    second_loss, d_w2, d_b2 = mse_gradients(X @ w1 + b1, W2, B2, Y)
    np.testing.assert_allclose(history.history["first_loss"], [first_loss], rtol=1e-6)
    np.testing.assert_allclose(history.history["second_loss"], [second_loss], rtol=1e-6)
    np.testing.assert_allclose(numpy(model.first.kernel), w1, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(numpy(model.first.bias), b1, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(numpy(model.second.kernel), W2 - SECOND_LR * d_w2, rtol=1e-6)
    np.testing.assert_allclose(numpy(model.second.bias), B2 - SECOND_LR * d_b2, rtol=1e-6)
    assert int(numpy(first_optimizer.iterations)) == 1
    assert int(numpy(second_optimizer.iterations)) == 1


def test_a_state_that_cannot_step_the_variables_raises():
    model = TwoOptimizerModel()
    model.compile(keras.optimizers.SGD(FIRST_LR), keras.optimizers.SGD(SECOND_LR))
    model.optimizer.build(model.trainable_variables)
    variables = (
        model.trainable_variables,
        model.non_trainable_variables,
        model.optimizer.variables,
        model.metrics_variables,
    )
    state = StatelessState(model, [[v.value for v in group] for group in variables])
    stranger = dense(W1, B1)
    # jax threads the state, but `stranger` is not in it; no other backend takes one.
    pattern = "not among" if BACKEND == "jax" else "stateless jax train step"
    with pytest.raises(ValueError, match=pattern):
        optimizer_step(
            lambda: (mse(stranger(X), Y), None),
            stranger.trainable_variables,
            keras.optimizers.SGD(FIRST_LR),
            state,
        )


def test_a_state_of_the_wrong_size_raises():
    model = TwoOptimizerModel()
    model.compile(keras.optimizers.SGD(FIRST_LR), keras.optimizers.SGD(SECOND_LR))
    with pytest.raises(ValueError, match="trainable variables"):
        StatelessState(model, ([], [], [], []))
    with pytest.raises(ValueError, match="4 sequences"):
        StatelessState(model, ([],))
