"""The R1 gradient penalty of a critic on real samples, on every Keras backend."""

from collections.abc import Callable
from typing import Any

import keras

from dl_techniques.losses.core import numerics, shapes, validation
from dl_techniques.losses.core.gradients import input_gradient


def r1_penalty(critic: Callable[..., Any], real: Any, gamma: float = 10.0) -> Any:
    """Returns the R1 penalty: the critic's squared input-gradient norm on real data.

    ```
    g_i     = d critic(x)_i / d x_i      at the real samples x
    penalty = gamma / 2 * mean_i sum g_i^2
    ```

    The sum runs over every non-batch axis, so samples of any rank work:
    vectors ``(B, D)``, sequences ``(B, T, D)``, images ``(B, H, W, C)``.
    The gradient is taken with respect to the samples by double
    backpropagation (``core.gradients.input_gradient``), so the penalty is
    differentiable with respect to the critic's weights, eagerly and inside
    compiled train steps on tensorflow, jax and torch. Add it to the critic
    loss (``HingeGANLoss``, ``NonSaturatingGANLoss``) of the same step.

    The critic must score each sample on its own (no batch normalisation in
    training mode). Half-precision gradients are squared and averaged in
    float32.

    Reference:
        Mescheder, L., Geiger, A., & Nowozin, S. (2018). Which Training
        Methods for GANs do actually Converge? ICML 2018, eq. (9).
        https://arxiv.org/abs/1801.04406

    Args:
        critic: The critic, a Keras model or layer called as
            ``critic(x, training=True)``, or a plain callable ``critic(x)``.
        real: Floating tensor ``(B, ...)`` of real samples.
        gamma: Finite number >= 0, the penalty weight. Defaults to 10.0.

    Returns:
        A scalar tensor, float32 for half-precision inputs.

    Raises:
        ValueError: For ``gamma < 0`` or not a number, a rank-0 ``real``, or
            a non-floating ``real``.

    Example:

    ```python
    critic = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    critic.set_weights([np.array([[3.0], [4.0]]), np.zeros(1)])  # gradient (3, 4)
    real = np.random.normal(size=(8, 2)).astype("float32")
    r1_penalty(critic, real, gamma=2.0)  # 2 / 2 * (9 + 16) = 25.0
    ```
    """
    validation.check_non_negative("r1_penalty", "gamma", gamma)
    real = keras.ops.convert_to_tensor(real)
    rank = len(shapes.static_shape(real))
    if rank == 0:
        raise ValueError(
            "r1_penalty: `real` must have shape (batch, ...), one sample per row; got a "
            "scalar of shape ()."
        )
    score = critic
    if isinstance(critic, keras.layers.Layer):
        score = _TrainingCall(critic)
    gradients = numerics.upcast_half(input_gradient(score, real))
    squared = keras.ops.square(gradients)
    if rank > 1:
        squared = keras.ops.sum(squared, axis=tuple(range(1, rank)))
    return 0.5 * gamma * keras.ops.mean(squared)


class _TrainingCall:
    """A Keras layer called in training mode, as a plain function of its input."""

    def __init__(self, layer: keras.layers.Layer) -> None:
        self._layer = layer

    def __call__(self, values: Any) -> Any:
        return self._layer(values, training=True)
