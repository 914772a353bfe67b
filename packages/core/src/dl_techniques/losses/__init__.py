"""Keras 3 loss functions from every installed dl-techniques-losses family.

Every public object that an installed distribution declares in the entry-point
group ``dl_techniques.losses`` is an attribute of this package, imported on
first access:

```python
from dl_techniques.losses import MASELoss          # the forecasting family
from dl_techniques.losses.forecasting import MASELoss  # the same class
```

Importing this package also makes every installed loss resolvable by
``keras.saving.load_model`` under its registered name ``dl_techniques>Name``,
without importing the family modules until a model needs them, and gives every
``keras.losses.Loss`` the operators of the loss algebra
(:mod:`dl_techniques.losses.core.algebra`): ``0.7 * DiceLoss() + 0.3 * FocalLoss()``
is a Keras loss that saves and reloads with a model.
"""

import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)

from dl_techniques.losses.core import algebra as _algebra  # noqa: E402
from dl_techniques.losses.core import component_model as _component_model  # noqa: E402, F401
from dl_techniques.losses.core import deep_supervision as _deep_supervision  # noqa: E402, F401
from dl_techniques.losses.core import registry as _registry  # noqa: E402

_registry.install_keras_resolvers()
_algebra.install_operators()


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _registry.get_attribute(name)


def __dir__():
    return sorted(set(globals()) | set(_registry.names()))
