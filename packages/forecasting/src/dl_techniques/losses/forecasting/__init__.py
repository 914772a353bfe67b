"""Forecasting losses: point errors, quantile and CRPS scores, likelihoods of probabilistic heads.

```python
from dl_techniques.losses.forecasting import MASELoss, MQLoss

model.compile(optimizer="adam", loss=MQLoss(quantiles=(0.1, 0.5, 0.9)))
```
"""

from dl_techniques.losses.forecasting.crps_loss import CRPSLoss
from dl_techniques.losses.forecasting.gaussian_nll import GaussianNLL
from dl_techniques.losses.forecasting.huber import HuberLoss
from dl_techniques.losses.forecasting.mase import MASELoss
from dl_techniques.losses.forecasting.mq_loss import MQLoss
from dl_techniques.losses.forecasting.negative_binomial_nll import NegativeBinomialNLL
from dl_techniques.losses.forecasting.poisson_nll import PoissonNLL
from dl_techniques.losses.forecasting.smape import SMAPELoss
from dl_techniques.losses.forecasting.student_t_nll import StudentTNLL
from dl_techniques.losses.forecasting.tweedie_loss import TweedieLoss

# The entry points of pyproject.toml, written by tools/generate.py.
__all__ = [
    "CRPSLoss",
    "GaussianNLL",
    "HuberLoss",
    "MASELoss",
    "MQLoss",
    "NegativeBinomialNLL",
    "PoissonNLL",
    "SMAPELoss",
    "StudentTNLL",
    "TweedieLoss",
]
