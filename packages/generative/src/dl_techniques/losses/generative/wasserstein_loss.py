"""The Wasserstein GAN loss of a critic and of a generator."""

import keras

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.generative import _wasserstein


@register_serializable
class WassersteinLoss(keras.losses.Loss):
    """Wasserstein GAN loss, for the critic or for the generator.

    The critic estimates the Wasserstein-1 distance between the real and the
    generated distributions by the Kantorovich-Rubinstein dual; the generator
    lowers it. With critic scores ``D`` and the real/fake split given by
    `y_true`:

    ```
    critic:     mean_{fake} D - mean_{real} D
    generator:  - mean_i D_i
    ```

    Each group mean is taken over that group's own samples, so a batch with
    more fake than real samples (or the other way round) still estimates the
    same distance. A group with no sample contributes 0.

    Labels: 1 marks a real sample; 0 or -1 marks a fake one, so both the 1/0
    and the +1/-1 conventions work. Any other label raises ``ValueError`` on
    the first eager call of an instance (every eager call with
    ``DL_LOSSES_VALIDATE=always``); inside ``tf.function``, ``jax.jit`` or
    ``torch.compile`` the values cannot be read and are not checked. The
    generator loss ignores `y_true`.

    ``sample_weight``: the critic loss is batch-level and weights inside each
    group mean (``sum w D / sum w`` per group), so an integer weight ``k``
    equals repeating a sample ``k`` times; the generator loss is per sample,
    one value ``-D_i`` per sample, weighted and reduced by Keras.

    Reference:
        Arjovsky, M., Chintala, S., & Bottou, L. (2017). Wasserstein
        Generative Adversarial Networks. ICML 2017.
        https://arxiv.org/abs/1701.07875

    Args:
        for_critic: Bool, the critic loss when True, the generator loss when
            False. Defaults to True.
        reduction: Keras reduction of the generator's per-sample values; the
            critic loss is one batch value already. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"wasserstein_loss"``.
        dtype: Dtype of the loss value; float16 and bfloat16 scores are
            computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    critic_loss = WassersteinLoss()
    labels = [1.0, 1.0, 0.0]             # two real samples, one fake
    scores = [[2.0], [4.0], [1.0]]       # mean real 3, mean fake 1
    critic_loss(labels, scores)          # 1 - 3 = -2.0
    critic_loss([1.0, 1.0, -1.0], scores)  # same with +1/-1 labels
    WassersteinLoss(for_critic=False)([0.0, 0.0], [[1.0], [3.0]])  # -2.0
    ```
    """

    def __init__(
        self,
        for_critic=True,
        reduction="sum_over_batch_size",
        name="wasserstein_loss",
        dtype=None,
    ):
        _wasserstein.check_bool("WassersteinLoss", "for_critic", for_critic)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.for_critic = for_critic

    @validation.checks_values
    def __call__(self, y_true, y_pred, sample_weight=None):
        if not self.for_critic:
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        with keras.name_scope(self.name):
            y_pred = keras.ops.convert_to_tensor(y_pred, dtype=self.dtype)
            labels, scores = _wasserstein.scores_and_labels("WassersteinLoss", y_true, y_pred)
            weights = _wasserstein.sample_weights("WassersteinLoss", sample_weight, scores)
            _wasserstein.check_labels("WassersteinLoss", labels)
            value = _wasserstein.critic_objective(labels, scores, weights)
            return keras.ops.cast(value, self.dtype)

    @validation.checks_values
    def call(self, y_true, y_pred):
        if self.for_critic:
            return self(y_true, y_pred)
        scores = _wasserstein.scores_and_labels("WassersteinLoss", y_true, y_pred)[1]
        return -scores

    def get_config(self):
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "for_critic": self.for_critic,
        }
