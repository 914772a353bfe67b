"""The in-process conformance checks, one function per property of a loss.

Each check takes a :class:`LossCase`, raises ``AssertionError`` naming the case
and what differed, and returns a one-line note of what it verified.
"""

import copy
import inspect
import json
import pathlib
import warnings

import keras
import numpy as np

from dl_techniques.losses.core import registry
from dl_techniques.losses.core.gradients import input_gradient
from dl_techniques.losses.core.numerics import HALF_DTYPES
from dl_techniques.losses.core.testing._models import (
    WholeStructureLossModel,
    build_evaluation_model,
    offset_model,
)
from dl_techniques.losses.core.testing._reload_script import evaluate_loss, loss_type_name
from dl_techniques.losses.core.testing._support import (
    assert_close,
    fail,
    file_stem,
    is_floating,
    loss_value,
    to_numpy,
    to_tensors,
)
from dl_techniques.losses.core.testing.weighting import check_sample_weight

__all__ = [
    "check_config_roundtrip",
    "check_finite_value_and_gradient",
    "check_half_precision",
    "check_invalid_hyperparameters",
    "check_jit_fit_step",
    "check_keras_serialization",
    "check_sample_weight",
    "check_saved_model",
    "init_parameters",
]

_FIT_LEARNING_RATE = 1e-2


def check_config_roundtrip(case):
    """Checks that the config holds every constructor argument and rebuilds the loss.

    ``get_config()`` must have a key for every parameter of
    ``loss_class.__init__`` (``*args``/``**kwargs`` aside), and
    ``from_config(get_config())`` must give an equal config and the same value.
    """
    loss = case.make_loss()
    config = loss.get_config()
    parameters = init_parameters(case.loss_class)
    missing = [name for name in parameters if name not in config]
    if missing:
        fail(
            case,
            f"get_config() lacks the constructor argument(s) {missing}; it has "
            f"{sorted(config)}. Every __init__ argument must be in the config, "
            "or from_config() silently rebuilds a different loss.",
        )
    rebuilt = case.loss_class.from_config(config)
    rebuilt_config = rebuilt.get_config()
    differing = sorted(
        key
        for key in set(config) | set(rebuilt_config)
        if _plain(config.get(key)) != _plain(rebuilt_config.get(key))
    )
    if differing:
        details = ", ".join(
            f"{key}: {config.get(key)!r} -> {rebuilt_config.get(key)!r}" for key in differing
        )
        fail(case, f"from_config(get_config()) changed the config ({details}).")
    assert_close(
        case,
        loss_value(rebuilt, case.y_true, case.y_pred),
        loss_value(loss, case.y_true, case.y_pred),
        "the value of from_config(get_config()) differs from the original loss",
    )
    return f"config covers all {len(parameters)} constructor arguments and rebuilds the loss"


def check_keras_serialization(case):
    """Checks the Keras name and the ``serialize``/``deserialize`` round trip.

    ``keras.losses.serialize`` must give ``registered_name ==
    "dl_techniques>" + class name`` (the registry's qualified name for a loss
    that lost a name collision), the payload must survive JSON, and both
    ``keras.saving.deserialize_keras_object`` and ``keras.losses.deserialize``
    must rebuild the same class with the same value.
    """
    loss = case.make_loss()
    serialized = keras.losses.serialize(loss)
    expected_name = f"{registry.KERAS_PACKAGE}>{case.loss_class.__name__}"
    accepted = {
        expected_name,
        registry.keras_name_for(case.loss_class.__module__, case.loss_class.__qualname__),
    }
    registered_name = serialized.get("registered_name") if isinstance(serialized, dict) else None
    if registered_name not in accepted:
        fail(
            case,
            f"keras.losses.serialize gives registered_name {registered_name!r}, expected "
            f"{expected_name!r}. Decorate the class with "
            "dl_techniques.losses.core.serialization.register_serializable.",
        )
    try:
        payload = json.loads(json.dumps(serialized))
    except TypeError as error:
        fail(case, f"the serialized loss is not JSON-serializable: {error}")
    expected_value = loss_value(loss, case.y_true, case.y_pred)
    for label, deserialize in (
        ("keras.saving.deserialize_keras_object", keras.saving.deserialize_keras_object),
        ("keras.losses.deserialize", keras.losses.deserialize),
    ):
        restored = deserialize(copy.deepcopy(payload))
        if type(restored) is not case.loss_class:
            fail(
                case, f"{label} rebuilt {type(restored).__name__}, not {case.loss_class.__name__}."
            )
        assert_close(
            case,
            loss_value(restored, case.y_true, case.y_pred),
            expected_value,
            f"the value after {label} differs from the original loss",
        )
    return f"serializes as {registered_name!r} and deserializes to the same loss"


def check_saved_model(case, tmp_dir):
    """Checks that a ``.keras`` file of a compiled model reloads the same loss.

    A tiny model whose output is ``y_pred`` is compiled with the loss, saved,
    reloaded in this process with ``keras.saving.load_model``, and evaluated.
    """
    model, x = build_evaluation_model(case)
    model.compile(optimizer="sgd", loss=case.make_loss())
    expected = evaluate_loss(model, x, case.y_true)
    path = pathlib.Path(tmp_dir) / f"{file_stem(case.case_id)}.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.saving.load_model(path)
    if not isinstance(getattr(loaded, "loss", None), case.loss_class):
        notes = " ".join(str(warning.message) for warning in caught)
        fail(
            case,
            f"the model reloaded from {path.name} is compiled with "
            f"{loss_type_name(loaded)}, not {case.loss_class.__name__}. {notes}".strip(),
        )
    assert_close(
        case,
        evaluate_loss(loaded, x, case.y_true),
        expected,
        "the reloaded model evaluates to a different loss",
    )
    return "a compiled model saved as .keras reloads with the same loss value"


def check_jit_fit_step(case):
    """Checks one ``fit`` step: finite loss, finite and changed weights.

    The model (``case.build_model``'s, or by default one that adds a trainable
    zero-initialised offset to its input) starts out predicting exactly
    ``y_pred``. A target or prediction that is a structure reaches the loss
    whole, as in a direct call. The model is compiled with
    ``jit_compile=True`` on tensorflow (XLA) and jax; on torch with
    ``jit_compile=False``, so torch runs the eager train step (``torch.compile``
    is not exercised). One epoch of one batch is fitted with plain SGD.
    """
    backend = keras.backend.backend()
    jit_compile = backend in ("tensorflow", "jax")
    if case.build_model is not None:
        inner, x = case.build_model(case)
    else:
        inner, x = offset_model(case), case.y_pred
    model = inner
    if keras.tree.is_nested(case.y_true) or keras.tree.is_nested(case.y_pred):
        model = WholeStructureLossModel(inner)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=_FIT_LEARNING_RATE),
        loss=case.make_loss(),
        jit_compile=jit_compile,
    )
    model(x)
    if not model.trainable_weights:
        fail(case, "the fit model has no trainable weights; build_model must give it some.")
    initial = [to_numpy(weight) for weight in model.trainable_weights]
    mode = f"jit_compile={jit_compile} on {backend}"
    try:
        history = model.fit(
            x, case.y_true, batch_size=case.batch_size, epochs=1, shuffle=False, verbose=0
        )
    except Exception as error:
        fail(case, f"fit ({mode}) raised {type(error).__name__}: {error}", cause=error)
    step_losses = np.asarray(history.history["loss"], dtype=np.float64)
    if not np.all(np.isfinite(step_losses)):
        fail(case, f"fit ({mode}) reported the loss {step_losses.tolist()}.")
    final = [to_numpy(weight) for weight in model.trainable_weights]
    if not all(np.all(np.isfinite(weight)) for weight in final):
        fail(case, f"fit ({mode}) left non-finite weights.")
    if all(np.array_equal(before, after) for before, after in zip(initial, final, strict=True)):
        fail(
            case,
            f"fit ({mode}) left every weight unchanged: the loss gives no gradient "
            "to the predictions (is y_pred at the optimum, or the gradient stopped?).",
        )
    return f"one fit step with {mode}: finite loss, weights finite and updated"


def check_finite_value_and_gradient(case):
    """Checks that the value and its gradient with respect to ``y_pred`` are finite."""
    loss = case.make_loss()
    y_true = to_tensors(case.y_true)
    y_pred = to_tensors(case.y_pred)
    value = to_numpy(loss(y_true, y_pred))
    if not np.all(np.isfinite(value)):
        fail(case, f"the loss value is {value.tolist()}, not finite.")
    leaves = keras.tree.flatten(y_pred)
    for index, leaf in enumerate(leaves):
        if not is_floating(leaf):
            continue

        def loss_of_leaf(values, index=index):
            replaced = list(leaves)
            replaced[index] = values
            return loss(y_true, keras.tree.pack_sequence_as(y_pred, replaced))

        gradient = to_numpy(input_gradient(loss_of_leaf, leaf))
        bad = int(np.sum(~np.isfinite(gradient)))
        if bad:
            where = f" (prediction leaf {index})" if len(leaves) > 1 else ""
            fail(
                case,
                f"the gradient with respect to y_pred{where} has {bad} non-finite "
                f"entries of {gradient.size}.",
            )
    return "finite value and finite gradient with respect to y_pred"


def check_half_precision(case):
    """Checks float16 and bfloat16 inputs: finite and close to the float32 value.

    ``keras.losses.Loss.__call__`` casts its inputs to the loss dtype, float32
    by default, which would hide the half-precision compute path that a loss
    with a ``"mixed_float16"`` dtype policy takes. So a loss that keeps Keras'
    ``__call__`` is checked through ``call`` directly, reduced by a plain mean;
    a loss with its own ``__call__`` through that.
    """
    loss = case.make_loss()
    reference = _compute_path_value(loss, to_tensors(case.y_true), to_tensors(case.y_pred))
    for dtype in HALF_DTYPES:
        value = _compute_path_value(
            loss, to_tensors(case.y_true, dtype), to_tensors(case.y_pred, dtype)
        )
        if not np.isfinite(value):
            fail(case, f"with {dtype} inputs the loss is {value}, not finite.")
        if abs(value - reference) > case.half_precision_rtol * abs(reference) + case.atol:
            fail(
                case,
                f"with {dtype} inputs the loss is {value:.6g}, float32 gives "
                f"{reference:.6g}: beyond half_precision_rtol={case.half_precision_rtol}. "
                "Compute in float32 (core.numerics.upcast_half).",
            )
    return "float16 and bfloat16 inputs give finite values close to float32"


def check_invalid_hyperparameters(case):
    """Checks that each ``invalid_kwargs`` entry raises ``ValueError`` naming the class."""
    name = case.loss_class.__name__
    for invalid in case.invalid_kwargs:
        arguments = {**case.init_kwargs, **invalid}
        try:
            case.loss_class(**arguments)
        except ValueError as error:
            if name not in str(error):
                fail(
                    case, f"{name}(**{invalid!r}) raised ValueError without naming {name}: {error}"
                )
            continue
        except Exception as error:
            fail(
                case,
                f"{name}(**{invalid!r}) raised {type(error).__name__}, not ValueError: {error}",
            )
        fail(
            case,
            f"{name}(**{invalid!r}) was accepted; an invalid hyper-parameter must raise "
            "ValueError.",
        )
    if not case.invalid_kwargs:
        return "the case declares no invalid hyper-parameters"
    return f"all {len(case.invalid_kwargs)} invalid configurations raise ValueError"


def init_parameters(loss_class):
    """Returns the names of the constructor parameters a config must hold."""
    parameters = list(inspect.signature(loss_class.__init__).parameters.values())[1:]
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [parameter.name for parameter in parameters if parameter.kind not in variadic]


def _compute_path_value(loss, y_true, y_pred):
    if type(loss).__call__ is keras.losses.Loss.__call__:
        output = loss.call(y_true, y_pred)
    else:
        output = loss(y_true, y_pred)
    return float(np.mean(to_numpy(output)))


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
