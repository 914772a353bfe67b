"""The shared shape of GAN losses with one critic term per group and a generator term.

A critic loss of this kind is ``mean_{real} f(D) + mean_{fake} g(D)``, each
mean over its own group (weighted by ``sample_weight`` inside the group), and
the generator loss is one value ``h(D_i)`` per sample. Labels and score shapes
follow the Wasserstein losses: 1 marks a real sample, 0 or -1 a fake one.
"""

from typing import Any

from dl_techniques.losses.core import numerics, validation
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.generative import _wasserstein


class GroupedCriticLoss(BatchLoss):
    """A critic loss averaged per real/fake group, or a per-sample generator loss.

    Subclasses write the three terms as functions of ``(B,)`` scores and
    name their instances by default with :attr:`default_name`.
    """

    default_name = "gan_loss"

    def __init__(
        self,
        for_critic: bool = True,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        validation.check_bool(type(self).__name__, "for_critic", for_critic)
        name = self.default_name if name is None else name
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.for_critic = for_critic

    def real_term(self, scores: Any) -> Any:
        """Returns the critic's per-sample term on real samples."""
        raise NotImplementedError

    def fake_term(self, scores: Any) -> Any:
        """Returns the critic's per-sample term on fake samples."""
        raise NotImplementedError

    def generator_term(self, scores: Any) -> Any:
        """Returns the generator's per-sample loss on the scores of its samples."""
        raise NotImplementedError

    def is_per_sample(self) -> bool:
        return not self.for_critic

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        owner = type(self).__name__
        labels, scores = _wasserstein.scores_and_labels(owner, y_true, y_pred, self.compute_dtype)
        if not self.for_critic:
            return self.generator_term(scores)
        weights = _wasserstein.sample_weights(owner, sample_weight, scores)
        _wasserstein.check_labels(owner, labels)
        real_weights, fake_weights = _wasserstein.group_weights(labels, weights)
        real = numerics.weighted_mean(self.real_term(scores), real_weights)
        return real + numerics.weighted_mean(self.fake_term(scores), fake_weights)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "for_critic": self.for_critic,
        }
