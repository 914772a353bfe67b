"""The WGAN-GP gradient penalty of a critic, on every Keras backend."""

import numbers
from collections.abc import Callable
from typing import Any

import keras

from dl_techniques.losses.core import shapes, validation
from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.generative import _wasserstein


def compute_gradient_penalty(
    critic: Callable[..., Any],
    real: Any,
    fake: Any,
    lambda_gp: float = 10.0,
    seed: int | keras.random.SeedGenerator | None = None,
) -> Any:
    """Returns the WGAN-GP gradient penalty of ``critic`` between real and fake samples.

    One ``alpha ~ U[0, 1]`` is drawn per sample; the critic's gradient with
    respect to its input is taken at the interpolates, and its norm over all
    non-batch axes is pulled towards 1:

    ```
    x_i     = real_i + alpha_i (fake_i - real_i)
    g_i     = d critic(x)_i / d x_i
    penalty = lambda_gp * mean_i (sqrt(sum g_i^2 + 1e-12) - 1)^2
    ```

    The gradient is taken with respect to the interpolates (not the
    weights) with double backpropagation: the penalty stays differentiable
    with respect to the critic's weights, so adding it to the critic loss
    trains the critic towards unit gradient norm. This works eagerly and
    inside compiled train steps on tensorflow, jax and torch
    (``core.gradients.input_gradient``), for samples of any rank: vectors
    ``(B, D)``, sequences ``(B, T, D)``, images ``(B, H, W, C)``.

    The critic must score each sample on its own (no batch normalisation in
    training mode), as Gulrajani et al. require. The gradient norm is
    computed in float32 for float16/bfloat16 gradients.

    Reference:
        Gulrajani, I., Ahmed, F., Arjovsky, M., Dumoulin, V., & Courville, A.
        (2017). Improved Training of Wasserstein GANs. NeurIPS 2017.
        https://arxiv.org/abs/1704.00028

    Args:
        critic: The critic, a Keras model or layer called as
            ``critic(x, training=True)``, or a plain callable ``critic(x)``.
        real: Floating tensor ``(B, ...)`` of real samples.
        fake: Floating tensor of generated samples, shaped like ``real``.
        lambda_gp: Finite number >= 0, the penalty coefficient. Defaults to
            10.0.
        seed: Where ``alpha`` comes from: ``None`` (Keras' global generator,
            not allowed inside ``jax.jit``), a ``keras.random.SeedGenerator``
            (fresh draws each call; use this in a train step), or an int
            (the same ``alpha`` every call, for reproducible checks).

    Returns:
        A scalar tensor, float32 for half-precision inputs.

    Raises:
        ValueError: For ``lambda_gp < 0``, a ``seed`` of another type, or
            ``real`` and ``fake`` of different or rank-0 shapes.

    Example:

    ```python
    critic = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    critic.set_weights([np.array([[0.6], [0.8]]), np.zeros(1)])  # ||w|| = 1
    real, fake = np.random.normal(size=(2, 8, 2)).astype("float32")
    compute_gradient_penalty(critic, real, fake, seed=0)  # 0.0: 1-Lipschitz
    ```
    """
    validation.check_non_negative("compute_gradient_penalty", "lambda_gp", lambda_gp)
    _check_seed(seed)
    real = keras.ops.convert_to_tensor(real)
    fake = keras.ops.cast(keras.ops.convert_to_tensor(fake), real.dtype)
    real_shape, fake_shape = shapes.static_shape(real), shapes.static_shape(fake)
    if len(real_shape) == 0 or not shapes.shapes_match(real_shape, fake_shape):
        raise ValueError(
            "compute_gradient_penalty: `real` and `fake` must have the same shape "
            f"(batch, ...); got real shape {real_shape} and fake shape {fake_shape}."
        )
    alpha_shape = (keras.ops.shape(real)[0],) + (1,) * (len(real_shape) - 1)
    alpha = keras.random.uniform(alpha_shape, dtype=real.dtype, seed=seed)
    interpolates = real + alpha * (fake - real)
    if isinstance(critic, keras.layers.Layer):

        def scores(values):
            return critic(values, training=True)

    else:
        scores = critic
    gradients = input_gradient(scores, interpolates)
    return _wasserstein.gradient_norm_penalty(gradients, lambda_gp)


def _check_seed(seed: Any) -> None:
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return
    raise ValueError(
        "compute_gradient_penalty: `seed` must be None, an int or a "
        f"keras.random.SeedGenerator; got seed={seed!r}."
    )
