"""Registration of library objects with Keras serialization."""

from typing import Any

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


def loss_instance(owner: str, argument: str, value: Any) -> Any:
    """Returns ``value`` as a ``keras.losses.Loss``, rebuilding a Keras config dict.

    Raises:
        ValueError: Naming ``owner`` and ``argument`` when ``value`` is not a loss.
    """
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if not isinstance(value, keras.losses.Loss):
        raise ValueError(
            f"{owner}: `{argument}` must be a keras.losses.Loss instance; got "
            f"{type(value).__name__} {value!r}."
        )
    return value
