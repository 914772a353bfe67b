"""The non-saturating GAN loss of a critic and of a generator."""

from typing import Any

import keras

from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.generative._adversarial import GroupedCriticLoss


@register_serializable
class NonSaturatingGANLoss(GroupedCriticLoss):
    """Non-saturating GAN loss on critic logits, for the critic or the generator.

    The critic is the logistic classifier of the original GAN, scoring with
    logits ``D`` (``sigmoid(D)`` = probability of real); the generator
    maximises ``log sigmoid(D(G(z)))`` instead of minimising
    ``log(1 - sigmoid(D(G(z))))``, which saturates when the critic rejects
    its samples confidently:

    ```
    critic:     mean_{real} softplus(-D) + mean_{fake} softplus(D)
    generator:  mean_i softplus(-D_i)
    ```

    ``softplus(-D) = -log sigmoid(D)``, computed in a stable form for every
    finite logit. Each group mean is taken over that group's own samples; a
    group with no sample contributes 0. Labels as ``WassersteinLoss``: 1 marks
    a real sample, 0 or -1 a fake one; any other label raises ``ValueError``
    on the first eager call of an instance (every eager call with
    ``DL_LOSSES_VALIDATE=always``). The generator loss ignores `y_true`.

    ``sample_weight``: the critic loss weights inside each group mean, so an
    integer weight ``k`` equals repeating a sample ``k`` times; the generator
    loss is per sample and weighted and reduced by Keras.

    Reference:
        Goodfellow, I., et al. (2014). Generative Adversarial Nets.
        NeurIPS 2014. https://arxiv.org/abs/1406.2661 (Section 3, the
        non-saturating generator objective).

    Args:
        for_critic: Bool, the critic loss when True, the generator loss when
            False. Defaults to True.
        reduction: Keras reduction of the generator's per-sample values; the
            critic loss is one batch value already. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance; ``None`` gives
            ``"non_saturating_gan_loss"``.
        dtype: Dtype of the loss value; float16 and bfloat16 logits are
            computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    critic_loss = NonSaturatingGANLoss()
    critic_loss([1.0, 0.0], [[0.0], [0.0]])  # log 2 + log 2 = 1.3863
    NonSaturatingGANLoss(for_critic=False)([0.0], [[0.0]])  # log 2 = 0.6931
    ```
    """

    default_name = "non_saturating_gan_loss"

    def real_term(self, scores: Any) -> Any:
        return keras.ops.softplus(-scores)

    def fake_term(self, scores: Any) -> Any:
        return keras.ops.softplus(scores)

    def generator_term(self, scores: Any) -> Any:
        return keras.ops.softplus(-scores)
