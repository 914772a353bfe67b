"""Reloads saved models in a fresh interpreter and evaluates their losses.

Run as ``python _reload_script.py RESULTS MANIFEST``. Before loading it imports
nothing but ``keras``, ``numpy`` and ``dl_techniques.losses``, as a user's
script would, so a loss reloads only if the registry makes its Keras name
resolvable. ``MANIFEST`` is a JSON list of ``{"model": path, "data": path}``;
``RESULTS`` receives one ``{"value", "loss_type"}`` or ``{"error"}`` per item.

The conformance kit also imports :func:`evaluate_loss` from here, so that both
sides of the comparison compute the loss the same way.
"""

import json
import pickle
import sys
import warnings

import keras


def evaluate_loss(model, x, y_true):
    """Returns the compiled loss of ``model`` on ``(x, y_true)`` as a float.

    A single-tensor prediction and target go through ``model.compute_loss``,
    the function Keras' train and test steps call, on the prediction in
    inference mode. When either is a structure, Keras would apply a single
    loss to every output separately, so the loss is called on the whole
    structures instead. TensorFlow and torch run it eagerly, which costs no
    traced step per model; eager jax compiles every operation for each new
    input shape, so there it runs as one ``jax.jit``, compiled once per model
    (the weights enter it as constants).
    """

    def compiled_loss(x, y_true):
        prediction = model(x, training=False)
        if keras.tree.is_nested(y_true) or keras.tree.is_nested(prediction):
            return model.loss(y_true, prediction)
        return model.compute_loss(x=x, y=y_true, y_pred=prediction, training=False)

    if keras.backend.backend() == "jax":
        import jax

        compiled_loss = jax.jit(compiled_loss)
    value = compiled_loss(x, y_true)
    return float(keras.ops.convert_to_numpy(keras.ops.cast(value, "float32")))


def loss_type_name(model):
    """Returns ``module.qualname`` of the compiled loss, or ``None``."""
    loss = getattr(model, "loss", None)
    if loss is None:
        return None
    return f"{type(loss).__module__}.{type(loss).__qualname__}"


def _reload(item):
    with open(item["data"], "rb") as stream:
        x, y_true = pickle.load(stream)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.saving.load_model(item["model"])
    loss_type = loss_type_name(model)
    if loss_type is None:
        notes = " ".join(str(warning.message) for warning in caught)
        return {"error": f"the reloaded model has no compiled loss. {notes}".strip()}
    return {"value": evaluate_loss(model, x, y_true), "loss_type": loss_type}


def main(results_path, manifest_path):
    import dl_techniques.losses  # noqa: F401  (makes installed losses resolvable)

    with open(manifest_path) as stream:
        manifest = json.load(stream)
    results = []
    for item in manifest:
        try:
            results.append(_reload(item))
        except Exception as error:
            results.append({"error": f"{type(error).__name__}: {error}"})
    with open(results_path, "w") as stream:
        json.dump(results, stream)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
