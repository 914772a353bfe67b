"""The Wasserstein GAN loss of a critic and of a generator."""

from typing import Any

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.generative import _wasserstein


@register_serializable
class WassersteinLoss(BatchLoss):
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
        for_critic: bool = True,
        reduction: str | None = "sum_over_batch_size",
        name: str = "wasserstein_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_bool("WassersteinLoss", "for_critic", for_critic)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.for_critic = for_critic

    def is_per_sample(self) -> bool:
        return not self.for_critic

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        owner = "WassersteinLoss"
        labels, scores = _wasserstein.scores_and_labels(owner, y_true, y_pred, self.compute_dtype)
        if not self.for_critic:
            return -scores
        weights = _wasserstein.sample_weights(owner, sample_weight, scores)
        _wasserstein.check_labels(owner, labels)
        return _wasserstein.critic_objective(labels, scores, weights)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "for_critic": self.for_critic,
        }
