"""Acme's Keras losses, published as a dl-techniques-losses plugin.

Import them from here or, once installed, from ``dl_techniques.losses``:

```python
from dl_techniques.losses import AcmeLogCoshLoss
```
"""

from acme_losses.log_cosh import AcmeLogCoshLoss

__all__ = ["AcmeLogCoshLoss"]
