"""Forecasting losses: Huber, MASE, sMAPE and the multi-quantile pinball loss.

```python
from dl_techniques.losses.forecasting import MASELoss, MQLoss

model.compile(optimizer="adam", loss=MQLoss(quantiles=(0.1, 0.5, 0.9)))
```
"""

from dl_techniques.losses.forecasting.huber import HuberLoss
from dl_techniques.losses.forecasting.mase import MASELoss
from dl_techniques.losses.forecasting.mq_loss import MQLoss
from dl_techniques.losses.forecasting.smape import SMAPELoss

# The entry points of pyproject.toml, written by tools/generate.py.
__all__ = ["HuberLoss", "MASELoss", "MQLoss", "SMAPELoss"]
