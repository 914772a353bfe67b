"""The hinge GAN loss of a critic and of a generator."""

from typing import Any

import keras

from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.generative._adversarial import GroupedCriticLoss


@register_serializable
class HingeGANLoss(GroupedCriticLoss):
    """Hinge GAN loss, for the critic (discriminator) or for the generator.

    The critic pushes real scores above +1 and fake scores below -1; only
    scores inside the margin contribute. The generator raises the critic's
    score of its samples. With critic scores ``D`` and the real/fake split
    given by `y_true`:

    ```
    critic:     mean_{real} relu(1 - D) + mean_{fake} relu(1 + D)
    generator:  - mean_i D_i
    ```

    Each group mean is taken over that group's own samples; a group with no
    sample contributes 0. Labels as ``WassersteinLoss``: 1 marks a real
    sample, 0 or -1 a fake one; any other label raises ``ValueError`` on the
    first eager call of an instance (every eager call with
    ``DL_LOSSES_VALIDATE=always``); compiled calls read no values. The
    generator loss ignores `y_true`.

    ``sample_weight``: the critic loss weights inside each group mean
    (``sum w f(D) / sum w`` per group), so an integer weight ``k`` equals
    repeating a sample ``k`` times; the generator loss is per sample and
    weighted and reduced by Keras.

    Reference:
        Lim, J. H., & Ye, J. C. (2017). Geometric GAN.
        https://arxiv.org/abs/1705.02894 ; the form used by Miyato et al.
        (2018), Spectral Normalization for Generative Adversarial Networks,
        ICLR 2018, https://arxiv.org/abs/1802.05957

    Args:
        for_critic: Bool, the critic loss when True, the generator loss when
            False. Defaults to True.
        reduction: Keras reduction of the generator's per-sample values; the
            critic loss is one batch value already. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance; ``None`` gives ``"hinge_gan_loss"``.
        dtype: Dtype of the loss value; float16 and bfloat16 scores are
            computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    critic_loss = HingeGANLoss()
    labels = [1.0, 1.0, 0.0]              # two real samples, one fake
    scores = [[0.5], [2.0], [-0.5]]
    critic_loss(labels, scores)           # (0.5 + 0) / 2 + 0.5 = 0.75
    HingeGANLoss(for_critic=False)([0.0, 0.0], [[1.0], [3.0]])  # -2.0
    ```
    """

    default_name = "hinge_gan_loss"

    def real_term(self, scores: Any) -> Any:
        return keras.ops.relu(1.0 - scores)

    def fake_term(self, scores: Any) -> Any:
        return keras.ops.relu(1.0 + scores)

    def generator_term(self, scores: Any) -> Any:
        return -scores
