"""Metric-learning losses: triplet mining, contrastive pairs, ArcFace and CosFace margin heads.

```python
from dl_techniques.losses.metric_learning import TripletLoss

model.compile(optimizer="adam", loss=TripletLoss(margin=0.2, mining="batch_hard"))
```
"""

from dl_techniques.losses.metric_learning.arcface import ArcFace
from dl_techniques.losses.metric_learning.contrastive_pair_loss import ContrastivePairLoss
from dl_techniques.losses.metric_learning.cosface import CosFace
from dl_techniques.losses.metric_learning.sub_center_arcface import SubCenterArcFace
from dl_techniques.losses.metric_learning.triplet_loss import TripletLoss

# The entry points of pyproject.toml, written by tools/generate.py.
__all__ = ["ArcFace", "ContrastivePairLoss", "CosFace", "SubCenterArcFace", "TripletLoss"]
