"""AnyLoss: any confusion-matrix metric turned into a differentiable loss."""

import contextlib
import importlib
import types
from collections.abc import Callable
from typing import Any

import keras

from dl_techniques.losses.classification._confusion import SoftConfusionMatrixLoss
from dl_techniques.losses.core.serialization import register_serializable

_LIBRARY_PREFIX = "dl_techniques.losses."


@register_serializable
class AnyLoss(SoftConfusionMatrixLoss):
    """Turns any metric of the confusion matrix into a loss (AnyLoss framework).

    Predictions are pushed towards 0 or 1 by the approximation function and
    the confusion matrix is counted softly over the batch:

    ```
    yhat = A(p) = sigmoid(L (p - 0.5))          L = amplifying_scale
    TP = sum w y yhat          FN = sum w y - TP
    FP = sum w yhat - TP       TN = N - sum w y - sum w yhat + TP,   N = sum w
    loss = 1 - metric_fn(TP, FN, FP, TN)
    ```

    ``p`` are probabilities, or ``sigmoid(logits)`` with ``from_logits=True``;
    ``y`` must be hard labels 0 or 1. ``w`` is the ``sample_weight`` (1 when
    none is given): the loss is one scalar per batch and weights every sum,
    so an integer weight ``k`` on a row equals repeating the row ``k`` times.

    Shapes: binary ``(B,)`` or ``(B, 1)``, or multi-label ``(B, C)``.
    ``average="micro"`` pools every cell into one confusion matrix;
    ``average="macro"`` builds one per column, applies ``metric_fn`` to each
    and takes the mean. ``sample_weight`` is a scalar, ``(B,)``, ``(B, 1)``
    or ``(B, C)`` (per cell).

    ``metric_fn(tp, fn, fp, tn)`` receives tensors of shape () (micro) or
    ``(C,)`` (macro) and must work elementwise with ``keras.ops``, returning
    a tensor of the same shape; a metric in [0, 1] gives a loss in [0, 1].
    To save and reload a model compiled with this loss, ``metric_fn`` must be
    registered with ``keras.saving.register_keras_serializable``;
    ``get_config`` (and so ``model.save``) raises ``ValueError`` for a lambda
    or an unregistered function, which could not be rebuilt on load.

    Labels are checked to be 0 or 1 (a NaN label is rejected too) and, with
    ``from_logits=False``, predictions to lie in [0, 1] (a NaN prediction is
    not rejected: it gives a NaN loss). These value checks run on the first
    eager call of an instance only (on every eager call with the environment
    variable ``DL_LOSSES_VALIDATE=always``), so an eager training loop does
    not synchronise the device every step; when the inputs are traced
    (inside ``jax.jit``, ``tf.function``, ``torch.compile``, so in a compiled
    ``fit``) there is no value to inspect and only the static shapes are
    checked. ``reduction`` has no effect: every Keras
    reduction of the single batch value is that value. A Keras mask on
    ``y_pred`` is not applied; exclude cells with ``sample_weight``.

    Reference:
        Han, D., Moniz, N., & Chawla, N. V. (2024). AnyLoss: Transforming
        Classification Metrics into Loss Functions. KDD 2024.
        https://arxiv.org/abs/2405.14745

    Args:
        metric_fn: Callable ``(tp, fn, fp, tn) -> metric``, higher is better.
        amplifying_scale: Number > 0; the slope ``L`` of the approximation
            function. Defaults to 73.0.
        from_logits: Bool; apply a sigmoid to ``y_pred`` first. Defaults to
            False.
        average: ``"micro"`` or ``"macro"``, for multi-label inputs. Defaults
            to ``"micro"``.
        reduction: Accepted for Keras compatibility; no effect.
        name: Name of the loss instance. Defaults to ``"any_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 are
            computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    @keras.saving.register_keras_serializable(package="my_project")
    def jaccard_index(tp, fn, fp, tn):
        return tp / (tp + fn + fp + 1e-5)

    loss = AnyLoss(jaccard_index, average="macro")
    loss([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]])  # ~0: perfect and confident
    ```
    """

    def __init__(
        self,
        metric_fn: Callable[..., Any],
        amplifying_scale: float = 73.0,
        from_logits: bool = False,
        average: str = "micro",
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "any_loss",
        dtype: Any | None = None,
    ) -> None:
        if not callable(metric_fn):
            raise ValueError(
                f"AnyLoss: `metric_fn` must be a callable (tp, fn, fp, tn) -> metric; "
                f"got metric_fn={metric_fn!r}."
            )
        super().__init__(
            amplifying_scale=amplifying_scale,
            from_logits=from_logits,
            average=average,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        self.metric_fn = metric_fn

    def metric(self, tp: Any, fn: Any, fp: Any, tn: Any) -> Any:
        value = keras.ops.convert_to_tensor(self.metric_fn(tp, fn, fp, tn))
        if tuple(value.shape) != tuple(tp.shape):
            raise ValueError(
                f"AnyLoss: `metric_fn` must return one value per confusion matrix, "
                f"shape {tuple(tp.shape)} with average={self.average!r}; it returned "
                f"shape {tuple(value.shape)}."
            )
        return value

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "metric_fn": _serialize_metric_fn(self.metric_fn)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "AnyLoss":
        config = dict(config)
        if isinstance(config.get("metric_fn"), dict):
            config["metric_fn"] = _deserialize_metric_fn(config["metric_fn"])
        return cls(**config)


def _serialize_metric_fn(metric_fn):
    # Keras would serialize an unregistered function by its bare name and a
    # lambda by its bytecode; neither reloads, so refuse them at save time.
    if isinstance(metric_fn, types.LambdaType) and metric_fn.__name__ == "<lambda>":
        raise ValueError(
            "AnyLoss: `metric_fn` is a lambda, which cannot be saved. Define a named "
            "function and register it with "
            "@keras.saving.register_keras_serializable(package=...)."
        )
    registrable = metric_fn if isinstance(metric_fn, types.FunctionType) else type(metric_fn)
    registered_name = keras.saving.get_registered_name(registrable)
    if keras.saving.get_registered_object(registered_name) is not registrable:
        raise ValueError(
            f"AnyLoss: `metric_fn` {metric_fn!r} is not registered for Keras "
            "serialization, so a saved model could not rebuild it. Register it with "
            "@keras.saving.register_keras_serializable(package=...)."
        )
    if not isinstance(metric_fn, types.FunctionType) and not (
        hasattr(metric_fn, "get_config") and hasattr(type(metric_fn), "from_config")
    ):
        raise ValueError(
            f"AnyLoss: `metric_fn` {metric_fn!r} is a callable object without "
            "`get_config` and `from_config`, so a saved model could not rebuild it."
        )
    serialized = keras.saving.serialize_keras_object(metric_fn)
    if isinstance(metric_fn, types.FunctionType):
        # Keras records a function's module as "builtins"; the real one lets
        # the error on load say what to import.
        serialized = {**serialized, "module": metric_fn.__module__}
    return serialized


def _deserialize_metric_fn(serialized):
    registered_name = serialized.get("config")
    if serialized.get("class_name") != "function":
        registered_name = serialized.get("registered_name")
    module = serialized.get("module") or ""
    if keras.saving.get_registered_object(registered_name) is None:
        # A library module registers its functions when imported; importing
        # one named in a file is what the entry-point registry does anyway.
        # Modules outside the library are never imported from a file.
        if module.startswith(_LIBRARY_PREFIX):
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
    if keras.saving.get_registered_object(registered_name) is None:
        raise ValueError(
            f"AnyLoss: cannot rebuild `metric_fn` {registered_name!r}: it is not registered "
            f"in this process. Import the module that defines and registers it "
            f"({module!r}) before loading the model."
        )
    return keras.saving.deserialize_keras_object(serialized)
