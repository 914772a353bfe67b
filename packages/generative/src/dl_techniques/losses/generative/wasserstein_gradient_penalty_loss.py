"""The WGAN-GP critic loss: Wasserstein critic loss plus the gradient penalty.

Three ways to train a WGAN-GP with this package:

1. ``WGANGPModel`` with stock ``compile``/``fit``, on tensorflow, jax and torch.
2. A custom train step that hands the critic loss the gradients at the
   interpolates, so the loss applies the penalty; here on tensorflow, for a
   Keras ``critic`` of rank-2 samples:

   ```python
   import keras
   import tensorflow as tf
   from dl_techniques.losses.generative.wasserstein_gradient_penalty_loss import (
       create_wgan_gp_losses,
   )

   critic_loss, generator_loss = create_wgan_gp_losses(lambda_gp=10.0)
   critic_optimizer = keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9)
   seed_generator = keras.random.SeedGenerator(0)

   @tf.function
   def train_critic_step(real_batch, fake_batch):
       alpha = keras.random.uniform((tf.shape(real_batch)[0], 1), seed=seed_generator)
       interpolates = real_batch + alpha * (fake_batch - real_batch)
       with tf.GradientTape() as tape:
           scores = critic(tf.concat([real_batch, fake_batch], 0), training=True)
           labels = tf.concat(
               [tf.ones_like(scores[: tf.shape(real_batch)[0]]),
                tf.zeros_like(scores[tf.shape(real_batch)[0]:])], 0)
           with tf.GradientTape() as inner_tape:
               inner_tape.watch(interpolates)
               interpolate_scores = critic(interpolates, training=True)
           gradients = inner_tape.gradient(interpolate_scores, interpolates)
           total_loss = critic_loss(
               labels, {"scores": scores, "interpolate_gradients": gradients})
       variables = critic.trainable_variables
       critic_optimizer.apply_gradients(zip(tape.gradient(total_loss, variables), variables))
       return total_loss
   ```

   ``WassersteinLoss`` on plain scores plus ``compute_gradient_penalty(critic,
   real_batch, fake_batch)`` is the same objective written as two terms.
3. The critic loss on the dict ``{"scores", "interpolate_gradients"}``, which
   adds the penalty itself (see ``WassersteinGradientPenaltyLoss``).
"""

import keras

from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.generative import _wasserstein
from dl_techniques.losses.generative.wasserstein_loss import WassersteinLoss

_PREDICTION_KEYS = ("interpolate_gradients", "scores")


@register_serializable
class WassersteinGradientPenaltyLoss(keras.losses.Loss):
    """WGAN-GP critic loss: the Wasserstein critic loss plus the gradient penalty.

    `y_pred` is a dict ``{"scores": critic scores (B,) or (B, 1),
    "interpolate_gradients": gradients of the critic at the interpolates
    (B', ...)}``, `y_true` one label per score (1 real, 0 or -1 fake, as in
    ``WassersteinLoss``). With ``||g_i|| = sqrt(sum g_i^2 + 1e-12)`` over the
    non-batch axes of each interpolate's gradient:

    ```
    loss = mean_{fake} D - mean_{real} D + lambda_gp * mean_i (||g_i|| - 1)^2
    ```

    The gradients usually come from ``core.gradients.input_gradient(critic,
    interpolates)`` inside the train step; their batch ``B'`` need not equal
    the number of scores (real and fake scores, one interpolate per pair).
    A plain tensor ``y_pred`` raises ``ValueError``: without the gradients
    the penalty could not be applied (use ``WassersteinLoss`` for the
    Wasserstein term alone).

    ``sample_weight`` is rejected with ``ValueError``: the penalty averages
    over interpolates, not over the scored samples, so no weighting of the
    scored samples is right for both terms.

    Reference:
        Gulrajani, I., Ahmed, F., Arjovsky, M., Dumoulin, V., & Courville, A.
        (2017). Improved Training of Wasserstein GANs. NeurIPS 2017.
        https://arxiv.org/abs/1704.00028

    Args:
        lambda_gp: Finite number >= 0, the penalty coefficient. Defaults to
            10.0.
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
    loss(labels, y_pred)  # -2 + 10 * (0 + 1) / 2 = 3.0
    ```
    """

    def __init__(
        self,
        lambda_gp=10.0,
        reduction="sum_over_batch_size",
        name="wasserstein_gradient_penalty_loss",
        dtype=None,
    ):
        _wasserstein.check_lambda_gp("WassersteinGradientPenaltyLoss", lambda_gp)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.lambda_gp = float(lambda_gp)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                "WassersteinGradientPenaltyLoss: `sample_weight` is not supported, the "
                "penalty averages over interpolates rather than the scored samples; got "
                f"sample_weight of shape {tuple(keras.ops.convert_to_tensor(sample_weight).shape)}."
            )
        with keras.name_scope(self.name):
            return keras.ops.cast(self.call(y_true, y_pred), self.dtype)

    def call(self, y_true, y_pred):
        owner = "WassersteinGradientPenaltyLoss"
        scores, gradients = self._split(y_pred)
        labels, scores = _wasserstein.scores_and_labels(owner, y_true, scores)
        _wasserstein.check_labels(owner, labels)
        value = _wasserstein.critic_objective(labels, scores, keras.ops.ones_like(scores))
        return value + _wasserstein.gradient_norm_penalty(gradients, self.lambda_gp)

    def _split(self, y_pred):
        if not isinstance(y_pred, dict):
            shape = tuple(keras.ops.shape(keras.ops.convert_to_tensor(y_pred)))
            raise ValueError(
                "WassersteinGradientPenaltyLoss: `y_pred` must be the dict "
                f"{{'scores', 'interpolate_gradients'}} so that the penalty is applied; got "
                f"a tensor of shape {shape}. For the "
                "Wasserstein term alone use WassersteinLoss."
            )
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

    def get_config(self):
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "lambda_gp": self.lambda_gp,
        }


def create_wgan_gp_losses(lambda_gp=10.0):
    """Returns ``(critic_loss, generator_loss)`` for WGAN-GP training.

    ```
    critic_loss    = WassersteinGradientPenaltyLoss(lambda_gp)
    generator_loss = WassersteinLoss(for_critic=False)   # -mean D(fake)
    ```

    Args:
        lambda_gp: Finite number >= 0, the penalty coefficient. Defaults to
            10.0.

    Returns:
        The critic loss and the generator loss.

    Example:

    ```python
    critic_loss, generator_loss = create_wgan_gp_losses(lambda_gp=10.0)
    generator_loss([0.0, 0.0], [[1.0], [3.0]])  # -2.0
    ```
    """
    return WassersteinGradientPenaltyLoss(lambda_gp=lambda_gp), WassersteinLoss(for_critic=False)
