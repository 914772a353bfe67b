"""Registration of library objects with Keras serialization."""

import keras

from dl_techniques.losses.core import registry


def register_serializable(obj):
    """Registers a class or function with Keras as ``dl_techniques>Name``.

    Use it on every public loss, metric, layer and config of a family or a
    third-party plugin, so that a saved model names the object by a stable key
    that ``import dl_techniques.losses`` makes resolvable. An object that lost a
    name collision registers under its qualified name
    ``dl_techniques>distribution:Name`` instead.

    Example:

    ```python
    @register_serializable
    class AcmeLoss(keras.losses.Loss):
        ...
    ```
    """
    keras_name = registry.keras_name_for(obj.__module__, obj.__qualname__)
    package, _, name = keras_name.partition(">")
    return keras.saving.register_keras_serializable(package=package, name=name)(obj)
