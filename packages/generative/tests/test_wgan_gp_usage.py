"""The WGAN-GP critic loss as users write it: plain scores plus the penalty, or the dict.

The critic here is linear, ``D(x) = x w + b``: its input gradient is ``w`` at
every interpolate, so the penalty is ``lambda (||w|| - 1)^2`` whatever alpha
is drawn, and the whole critic step has a closed form to check against.
"""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.testing.numeric import compiled
from dl_techniques.losses.generative import (
    WassersteinGradientPenaltyLoss,
    compute_gradient_penalty,
    create_wgan_gp_losses,
)

BACKEND = keras.backend.backend()
KERNEL = np.array([[0.5], [-1.0], [2.0]], "float32")  # ||w|| = sqrt(5.25)
BIAS = np.array([0.3], "float32")
REAL_IMAGES = np.array(
    [[1.0, 0.0, 2.0], [0.5, -1.0, 1.0], [-0.5, 2.0, 0.0], [1.5, 1.0, -1.0]], "float32"
)
FAKE_IMAGES = np.array(
    [[0.0, 0.5, -1.0], [2.0, 1.0, 0.5], [-1.0, -0.5, 0.0], [0.5, 0.0, 1.5]], "float32"
)
LAMBDA_GP, LEARNING_RATE = 10.0, 0.01


def linear_critic():
    critic = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    critic.set_weights([KERNEL, BIAS])
    return critic


def expected_step():
    """Loss and SGD-updated kernel of one critic step, from the formulas in float64.

    loss = mean(fake) w - mean(real) w + lambda (||w|| - 1)^2, so
    dloss/dw = mean(fake) - mean(real) + 2 lambda (||w|| - 1) w / ||w||,
    and the bias cancels between the two group means (no gradient).
    """
    w = KERNEL[:, 0].astype("float64")
    gap = FAKE_IMAGES.astype("float64").mean(axis=0) - REAL_IMAGES.astype("float64").mean(axis=0)
    norm = np.sqrt(np.sum(w**2))
    loss = gap @ w + LAMBDA_GP * (norm - 1.0) ** 2
    gradient = gap + 2.0 * LAMBDA_GP * (norm - 1.0) * w / norm
    return loss, (w - LEARNING_RATE * gradient)[:, None]


def labels_and_inputs():
    y_true = np.concatenate([np.ones((4, 1)), np.zeros((4, 1))]).astype("float32")
    return y_true, np.concatenate([REAL_IMAGES, FAKE_IMAGES])


def _critic_step(critic, optimizer):
    """One critic step written as the seed's snippet, on the backend's own autodiff.

    On tensorflow the snippet runs as written inside a ``GradientTape``; jax
    and torch take the same three loss lines through ``jax.value_and_grad``
    and ``backward``. Returns the total critic loss.
    """
    y_true, inputs = labels_and_inputs()
    real_images, fake_images = REAL_IMAGES, FAKE_IMAGES
    variables = critic.trainable_variables
    critic_loss_fn, generator_loss_fn = create_wgan_gp_losses(lambda_gp=10.0)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        real_images, fake_images = tf.constant(REAL_IMAGES), tf.constant(FAKE_IMAGES)
        with tf.GradientTape() as tape:
            y_pred = critic(tf.concat([real_images, fake_images], 0), training=True)
            w_loss = critic_loss_fn(y_true, y_pred)
            gp = compute_gradient_penalty(critic, real_images, fake_images)
            total_critic_loss = w_loss + gp
        gradients = tape.gradient(total_critic_loss, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return total_critic_loss
    if BACKEND == "jax":
        import jax

        def total(values):
            def stateless_critic(x):
                return critic.stateless_call(values, [], x, training=True)[0]

            y_pred = stateless_critic(inputs)
            w_loss = critic_loss_fn(y_true, y_pred)
            gp = compute_gradient_penalty(stateless_critic, real_images, fake_images)
            return w_loss + gp

        total_critic_loss, gradients = jax.value_and_grad(total)([v.value for v in variables])
    else:
        y_pred = critic(inputs, training=True)
        w_loss = critic_loss_fn(y_true, y_pred)
        gp = compute_gradient_penalty(critic, real_images, fake_images)
        total_critic_loss = w_loss + gp
        total_critic_loss.backward()
        gradients = [v.value.grad for v in variables]
    optimizer.apply(gradients, variables)
    return total_critic_loss


def test_seed_snippet_critic_step_matches_the_closed_form():
    critic = linear_critic()
    value = _critic_step(critic, keras.optimizers.SGD(LEARNING_RATE))
    loss, kernel = expected_step()
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(value)), loss, rtol=1e-5)
    np.testing.assert_allclose(critic.get_weights()[0], kernel, rtol=1e-5)
    np.testing.assert_allclose(critic.get_weights()[1], BIAS, atol=1e-6)


def test_dict_form_with_one_interpolate_per_pair_adds_the_penalty():
    # Scores of 4 real and 4 fake samples, gradients at the 4 interpolates.
    y_true, inputs = labels_and_inputs()
    scores = inputs @ KERNEL + BIAS
    gradients = np.repeat(KERNEL.T, 4, axis=0)
    value = WassersteinGradientPenaltyLoss(lambda_gp=LAMBDA_GP)(
        y_true, {"scores": scores, "interpolate_gradients": gradients}
    )
    np.testing.assert_allclose(
        float(keras.ops.convert_to_numpy(value)), expected_step()[0], rtol=1e-5
    )


MISMATCH = r"WassersteinGradientPenaltyLoss.*interpolate_gradients.*\(8, 1\).*\(7, 3, 2\)"


def _mismatched_batches():
    rng = np.random.default_rng(0)
    labels = np.array([1.0, 0.0] * 4, "float32")
    scores = rng.normal(size=(8, 1)).astype("float32")
    gradients = rng.normal(size=(7, 3, 2)).astype("float32")
    return labels, scores, gradients


def test_gradient_batch_that_fits_no_score_count_raises_on_eager_calls():
    labels, scores, gradients = _mismatched_batches()
    with pytest.raises(ValueError, match=MISMATCH):
        WassersteinGradientPenaltyLoss()(
            labels, {"scores": scores, "interpolate_gradients": gradients}
        )


def test_gradient_batch_that_fits_no_score_count_raises_when_traced():
    labels, scores, gradients = _mismatched_batches()
    loss = WassersteinGradientPenaltyLoss()

    def critic_loss(labels, scores, gradients):
        return loss(labels, {"scores": scores, "interpolate_gradients": gradients})

    tensors = [keras.ops.convert_to_tensor(array) for array in (labels, scores, gradients)]
    with pytest.raises(ValueError, match=MISMATCH):
        compiled(critic_loss, jit_compile=False, trace_torch=True, fullgraph=False)(*tensors)
