"""The WGAN-GP critic loss: Wasserstein critic loss plus the gradient penalty.

Three ways to train a WGAN-GP with this package:

1. ``WGANGPModel`` with stock ``compile``/``fit``, on tensorflow, jax and torch.
2. A custom train step that adds ``compute_gradient_penalty`` to the critic
   loss of the plain scores; here on tensorflow, for a Keras ``critic`` of
   rank-2 samples:

   ```python
   import keras
   import tensorflow as tf
   from dl_techniques.losses.generative import compute_gradient_penalty, create_wgan_gp_losses

   critic_loss_fn, generator_loss_fn = create_wgan_gp_losses(lambda_gp=10.0)
   critic_optimizer = keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9)

   def train_critic_step(real_images, fake_images):
       # 1 marks the real samples, 0 the fake ones.
       y_true = tf.concat([tf.ones((len(real_images), 1)), tf.zeros((len(fake_images), 1))], 0)
       with tf.GradientTape() as tape:
           y_pred = critic(tf.concat([real_images, fake_images], 0), training=True)
           w_loss = critic_loss_fn(y_true, y_pred)  # mean D(fake) - mean D(real)
           gp = compute_gradient_penalty(critic, real_images, fake_images)
           total_critic_loss = w_loss + gp
       variables = critic.trainable_variables
       gradients = tape.gradient(total_critic_loss, variables)
       critic_optimizer.apply_gradients(zip(gradients, variables))
       return total_critic_loss
   ```

3. The same step handing the critic loss the gradients of the critic at the
   interpolates, as the dict ``{"scores", "interpolate_gradients"}``: the
   loss then adds the penalty itself. The gradients come from
   ``core.gradients.input_gradient(critic, interpolates)`` on any backend.
"""

from typing import Any

import keras

from dl_techniques.losses.core import shapes, validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.generative import _wasserstein
from dl_techniques.losses.generative.wasserstein_loss import WassersteinLoss

_PREDICTION_KEYS = ("interpolate_gradients", "scores")


@register_serializable
class WassersteinGradientPenaltyLoss(BatchLoss):
    """WGAN-GP critic loss: the Wasserstein critic loss, plus the gradient penalty.

    `y_true` holds one label per critic score (1 real, 0 or -1 fake, as in
    ``WassersteinLoss``). `y_pred` takes two forms:

    (a) The dict ``{"scores": critic scores (B,) or (B, 1),
        "interpolate_gradients": gradients of the critic at the interpolates
        (B', ...)}``: the loss is the critic term plus the penalty, with
        ``||g_i|| = sqrt(sum g_i^2 + 1e-12)`` over the non-batch axes of each
        interpolate's gradient.
    (b) The critic scores alone, (B,) or (B, 1): the loss is the critic term
        only, and the caller adds ``compute_gradient_penalty(critic, real,
        fake)`` (two terms, the same objective).

    ```
    critic term = mean_{fake} D - mean_{real} D
    (a)  loss = critic term + lambda_gp * mean_i (||g_i|| - 1)^2
    (b)  loss = critic term
    ```

    In form (a) the gradients usually come from
    ``core.gradients.input_gradient(critic, interpolates)`` inside the train
    step. Their batch ``B'`` is the number of scores (one interpolate per
    scored sample) or half of it (the scores are the real and the fake
    samples of ``B'`` pairs, one interpolate per pair); any other batch
    raises ``ValueError`` on every call, traced or eager.

    ``sample_weight``: in form (b) it weights inside each group mean, as in
    ``WassersteinLoss``; in form (a) it is rejected with ``ValueError``: the
    penalty averages over interpolates, not over the scored samples, so no
    weighting of the scored samples is right for both terms.

    Labels other than 1, 0 and -1 raise ``ValueError`` on the first eager
    call of an instance (every eager call with ``DL_LOSSES_VALIDATE=always``).

    Reference:
        Gulrajani, I., Ahmed, F., Arjovsky, M., Dumoulin, V., & Courville, A.
        (2017). Improved Training of Wasserstein GANs. NeurIPS 2017.
        https://arxiv.org/abs/1704.00028

    Args:
        lambda_gp: Finite number >= 0, the penalty coefficient of form (a).
            Defaults to 10.0.
        reduction: Kept for Keras compatibility; the loss is one batch value.
            Defaults to ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to
            ``"wasserstein_gradient_penalty_loss"``.
        dtype: Dtype of the loss value; half-precision inputs are computed in
            float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = WassersteinGradientPenaltyLoss(lambda_gp=10.0)
    labels = [1.0, 0.0]
    y_pred = {
        "scores": [[3.0], [1.0]],                          # 1 - 3 = -2
        "interpolate_gradients": [[0.6, 0.8], [0.0, 2.0]],  # norms 1, 2
    }
    loss(labels, y_pred)             # -2 + 10 * (0 + 1) / 2 = 3.0
    loss(labels, [[3.0], [1.0]])     # the critic term alone: -2.0
    ```
    """

    def __init__(
        self,
        lambda_gp: float = 10.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "wasserstein_gradient_penalty_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_non_negative("WassersteinGradientPenaltyLoss", "lambda_gp", lambda_gp)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.lambda_gp = float(lambda_gp)

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        owner = "WassersteinGradientPenaltyLoss"
        if sample_weight is not None and isinstance(y_pred, dict):
            raise ValueError(
                f"{owner}: `sample_weight` is not supported with the dict y_pred, the penalty "
                "averages over interpolates rather than the scored samples; got sample_weight "
                f"of shape {shapes.static_shape(sample_weight)}."
            )
        scores, gradients = self._split(y_pred)
        if gradients is not None:
            _wasserstein.check_gradient_batch(owner, scores, gradients)
        labels, scores = _wasserstein.scores_and_labels(owner, y_true, scores, self.compute_dtype)
        _wasserstein.check_labels(owner, labels)
        weights = _wasserstein.sample_weights(owner, sample_weight, scores)
        value = _wasserstein.critic_objective(labels, scores, weights)
        if gradients is None:
            return value
        return value + _wasserstein.gradient_norm_penalty(gradients, self.lambda_gp)

    def _split(self, y_pred: Any) -> tuple[Any, Any]:
        """Returns ``(scores, gradients)``; the gradients are None for plain scores."""
        if not isinstance(y_pred, dict):
            return keras.ops.convert_to_tensor(y_pred), None
        if set(y_pred) != set(_PREDICTION_KEYS):
            raise ValueError(
                "WassersteinGradientPenaltyLoss: a dict `y_pred` must have exactly the keys "
                f"{list(_PREDICTION_KEYS)}; got keys {sorted(y_pred)}."
            )
        gradients = keras.ops.convert_to_tensor(y_pred["interpolate_gradients"])
        if len(gradients.shape) == 0:
            raise ValueError(
                "WassersteinGradientPenaltyLoss: `y_pred['interpolate_gradients']` must have "
                "shape (batch, ...), one gradient per interpolate; got shape ()."
            )
        return keras.ops.convert_to_tensor(y_pred["scores"]), gradients

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "lambda_gp": self.lambda_gp,
        }


def create_wgan_gp_losses(
    lambda_gp: float = 10.0,
) -> tuple[WassersteinGradientPenaltyLoss, WassersteinLoss]:
    """Returns ``(critic_loss, generator_loss)`` for WGAN-GP training.

    ```
    critic_loss    = WassersteinGradientPenaltyLoss(lambda_gp)
    generator_loss = WassersteinLoss(for_critic=False)   # -mean D(fake)
    ```

    The critic loss on plain critic scores is the Wasserstein term, to which
    the caller adds ``compute_gradient_penalty``; on the dict ``{"scores",
    "interpolate_gradients"}`` it adds the penalty itself (see
    ``WassersteinGradientPenaltyLoss``).

    Args:
        lambda_gp: Finite number >= 0, the penalty coefficient. Defaults to
            10.0.

    Returns:
        The critic loss and the generator loss.

    Example:

    ```python
    critic_loss, generator_loss = create_wgan_gp_losses(lambda_gp=10.0)
    critic_loss([1.0, 0.0], [[3.0], [1.0]])     # 1 - 3 = -2.0; add the penalty
    generator_loss([0.0, 0.0], [[1.0], [3.0]])  # -2.0
    ```
    """
    return WassersteinGradientPenaltyLoss(lambda_gp=lambda_gp), WassersteinLoss(for_critic=False)
