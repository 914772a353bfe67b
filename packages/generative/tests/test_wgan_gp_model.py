import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from dl_techniques.losses.generative.wgan_gp_model import WGANGPModel

REAL = np.array(
    [[1.0, 0.5], [0.0, 2.0], [-1.0, 1.0], [2.0, -0.5],
     [0.5, 0.5], [1.5, 1.0], [-0.5, -1.0], [0.0, 0.0],
     [1.0, -1.0], [2.0, 2.0], [-2.0, 0.5], [0.5, 1.5]],
    "float32",
)  # fmt: skip
LATENT = np.array([[1.0, -1.0], [0.5, 0.0], [-0.5, 1.0], [0.0, 2.0]], "float32")
CRITIC_WEIGHTS = [
    np.array([[0.5, -0.25, 0.1], [0.2, 0.4, -0.3]], "float32"),
    np.array([0.1, -0.1, 0.05], "float32"),
    np.array([[0.7], [-0.4], [0.9]], "float32"),
    np.array([0.2], "float32"),
]
GENERATOR_WEIGHTS = [
    np.array([[0.3, -0.2], [0.1, 0.6]], "float32"),
    np.array([0.5, -0.5], "float32"),
]
LAMBDA_GP, CRITIC_STEPS, CRITIC_LR, GENERATOR_LR, BATCH = 1.0, 2, 0.05, 0.1, 4

# The weights after 3 fit steps (batches of 4, 2 critic updates and 1
# generator update per step), computed once in float64 by
# `three_steps_in_numpy` below. Every backend must land on them.
EXPECTED_CRITIC = [
    [
        [0.573360665966, -0.289313009719, 0.189485367823],
        [0.341207420955, 0.327007869916, -0.132436668251],
    ],
    [0.1, -0.1, 0.05],
    [[0.801085574822], [-0.356731945116], [0.869625595738]],
    [0.2],
]
EXPECTED_GENERATOR = [
    [[0.351551336930, -0.206500828225], [0.203102651508, 0.586998373352]],
    [0.706205300036, -0.526003300981],
]


def three_steps_in_numpy():
    """The WGAN-GP updates of a linear 2-3-1 critic and a linear generator.

    Starts from the float32 arrays above, so the float64 result differs from
    the stored digits by float32 round-off of the inputs only.

    The critic is f(x) = (x W1 + b1) W2 + b2, so its input gradient is
    u = W1 W2 at every interpolate and the penalty is lambda (|u| - 1)^2
    whatever alpha is. Per critic update, with the mean gap
    m = mean(fake) - mean(real) and p = 2 lambda (|u| - 1) u / |u|:
    dL/dW1 = (m + p) W2^T, dL/dW2 = W1^T (m + p); b1 and b2 get no gradient.
    The generator G(z) = z A + c minimises -mean f(G(z)):
    dL/dA = -mean(z)^T u^T, dL/dc = -u. Plain SGD.
    """
    w1, b1, w2, b2 = (weight.astype("float64") for weight in CRITIC_WEIGHTS)
    a, c = (weight.astype("float64") for weight in GENERATOR_WEIGHTS)
    latent = LATENT.astype("float64")
    for start in range(0, len(REAL), BATCH):
        real = REAL[start : start + BATCH].astype("float64")
        for _ in range(CRITIC_STEPS):
            fake = latent @ a + c
            gap = (fake.mean(axis=0) - real.mean(axis=0))[:, None]
            u = w1 @ w2
            norm = np.sqrt(np.sum(u**2) + 1e-12)
            total = gap + 2 * LAMBDA_GP * (norm - 1) * u / norm
            w1, w2 = w1 - CRITIC_LR * total @ w2.T, w2 - CRITIC_LR * w1.T @ total
        u = w1 @ w2
        a = a + GENERATOR_LR * latent.mean(axis=0)[:, None] @ u.T
        c = c + GENERATOR_LR * u[:, 0]
    return [w1, b1, w2, b2], [a, c]


class FixedLatentWGANGP(WGANGPModel):
    """Draws the same latent codes every time, so every backend sees the same fakes."""

    def sample_latent(self, batch_size):
        return keras.ops.convert_to_tensor(LATENT)


def linear_models():
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    critic = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    generator.set_weights(GENERATOR_WEIGHTS)
    critic.set_weights(CRITIC_WEIGHTS)
    return generator, critic


def test_numpy_reference_gives_the_stored_expected_weights():
    critic, generator = three_steps_in_numpy()
    for actual, expected in zip(
        critic + generator, EXPECTED_CRITIC + EXPECTED_GENERATOR, strict=True
    ):
        np.testing.assert_allclose(actual, expected, rtol=1e-7, atol=1e-11)


def test_three_fit_steps_land_on_the_reference_weights():
    generator, critic = linear_models()
    gan = FixedLatentWGANGP(
        generator, critic, latent_dim=2, critic_steps=CRITIC_STEPS, lambda_gp=LAMBDA_GP, seed=0
    )
    gan.compile(
        critic_optimizer=keras.optimizers.SGD(CRITIC_LR),
        generator_optimizer=keras.optimizers.SGD(GENERATOR_LR),
    )
    history = gan.fit(REAL, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert sorted(history.history) == ["critic_loss", "generator_loss", "gradient_penalty"]
    for actual, expected in zip(critic.get_weights(), EXPECTED_CRITIC, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    for actual, expected in zip(generator.get_weights(), EXPECTED_GENERATOR, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_saved_model_reloads_config_weights_and_compile_state(tmp_path):
    generator, critic = linear_models()
    gan = WGANGPModel(generator, critic, latent_dim=2, critic_steps=3, lambda_gp=2.5, seed=7)
    gan.compile(
        critic_optimizer=keras.optimizers.Adam(1e-3), generator_optimizer=keras.optimizers.SGD(0.1)
    )
    gan.fit(REAL, batch_size=BATCH, epochs=1, verbose=0)
    path = tmp_path / "wgan_gp.keras"
    gan.save(path)
    loaded = keras.saving.load_model(path)
    assert keras.saving.get_registered_name(WGANGPModel) == "dl_techniques>WGANGPModel"
    assert type(loaded) is WGANGPModel
    assert (loaded.latent_dim, loaded.critic_steps, loaded.lambda_gp, loaded.seed) == (2, 3, 2.5, 7)
    for actual, expected in zip(loaded.get_weights(), gan.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)
    assert isinstance(loaded.critic_optimizer, keras.optimizers.Adam)
    assert isinstance(loaded.generator_optimizer, keras.optimizers.SGD)


@pytest.mark.parametrize(
    ("arguments", "pattern"),
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"critic_steps": 1.5}, "critic_steps"),
        ({"lambda_gp": -1.0}, "lambda_gp"),
        ({"seed": "0"}, "seed"),
    ],
)
def test_invalid_arguments_raise(arguments, pattern):
    generator, critic = linear_models()
    with pytest.raises(ValueError, match=f"WGANGPModel.*{pattern}"):
        WGANGPModel(generator, critic, **{"latent_dim": 2, **arguments})


def test_compile_rejects_a_loss_and_a_shared_optimizer():
    gan = WGANGPModel(*linear_models(), latent_dim=2)
    with pytest.raises(ValueError, match="WGANGPModel.*loss"):
        gan.compile(loss="mse")
    shared = keras.optimizers.SGD(0.1)
    with pytest.raises(ValueError, match="WGANGPModel.*same instance"):
        gan.compile(critic_optimizer=shared, generator_optimizer=shared)


CUSTOM_STEP_CHECK = r"""
import re
import textwrap

import keras
import numpy as np
from dl_techniques.losses.generative import wasserstein_gradient_penalty_loss as module

code = re.search(r"```python\n(.*?)```", module.__doc__, re.DOTALL).group(1)
critic = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
critic.set_weights([np.array([[1.0], [2.0]], "float32"), np.array([0.5], "float32")])
namespace = {"critic": critic}
exec(textwrap.dedent(code), namespace)
namespace["critic_optimizer"] = keras.optimizers.SGD(0.01)
real = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "float32")
fake = np.array([[2.0, 1.0], [0.0, -1.0], [1.0, 3.0]], "float32")
total = float(namespace["train_critic_step"](real, fake))
print(total, *critic.get_weights()[0][:, 0], *critic.get_weights()[1])
"""


def test_documented_tensorflow_custom_train_step_trains_the_critic_with_the_penalty():
    # Runs the module docstring's tensorflow train step as written, in a
    # tensorflow process whatever backend this suite runs on.
    environment = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CUSTOM_STEP_CHECK)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    total, w0, w1, bias = (float(value) for value in result.stdout.split()[-4:])
    # f(x) = x . w + b with w = (1, 2): mean real (2/3, 2/3), mean fake (1, 1),
    # so mean fake score - mean real score = (1/3, 1/3) . w = 1 (the bias
    # cancels); the penalty is 10 (sqrt(5) - 1)^2 at every interpolate.
    norm = np.sqrt(5.0)
    np.testing.assert_allclose(total, 1.0 + 10.0 * (norm - 1.0) ** 2, rtol=1e-5)
    gradient = np.array([1.0, 1.0]) / 3.0 + 20.0 * (norm - 1.0) * np.array([1.0, 2.0]) / norm
    np.testing.assert_allclose([w0, w1], np.array([1.0, 2.0]) - 0.01 * gradient, rtol=1e-5)
    np.testing.assert_allclose(bias, 0.5, rtol=1e-6)
