"""The small models the conformance checks compile a loss into."""

import keras

from dl_techniques.losses.core.testing._support import is_floating


def build_evaluation_model(case):
    """Returns ``(model, x)``: ``case.build_model``'s, or an identity model of ``y_pred``.

    The identity model uses built-in layers only, so it reloads anywhere.
    """
    if case.build_model is not None:
        return case.build_model(case)
    inputs = model_inputs(case)
    outputs = keras.tree.map_structure(lambda tensor: keras.layers.Identity()(tensor), inputs)
    return keras.Model(inputs, outputs), case.y_pred


class ZeroOffset(keras.layers.Layer):
    """Adds a trainable offset, zero at first, shaped like one sample."""

    def build(self, input_shape):
        self.offset = self.add_weight(
            shape=tuple(input_shape[1:]), initializer="zeros", name="offset"
        )

    def call(self, inputs):
        return keras.ops.add(inputs, self.offset)


class WholeStructureLossModel(keras.Model):
    """Applies the loss to the whole target and prediction structures.

    Keras' compile would apply a single loss to each output separately; a
    loss that takes a dict or tuple needs them whole.
    """

    def __init__(self, inner):
        super().__init__(name="whole_structure_loss_model")
        self.inner = inner

    def call(self, inputs, training=False):
        return self.inner(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.loss(y, y_pred, sample_weight)


def offset_model(case):
    """Returns a model adding a zero-initialised trainable offset to ``y_pred``.

    Each floating leaf gets its own offset; other leaves pass through.
    """

    def offset(tensor):
        if is_floating(tensor):
            return ZeroOffset()(tensor)
        return keras.layers.Identity()(tensor)

    inputs = model_inputs(case)
    return keras.Model(inputs, keras.tree.map_structure(offset, inputs))


def model_inputs(case):
    """Returns one ``keras.Input`` per leaf of ``y_pred``, in the same structure.

    Inputs of a structure are named by their path (``"low"``, ``"pair_0"``),
    which is how Keras matches dict inputs to their data.
    """
    inputs = [
        keras.Input(
            shape=leaf.shape[1:],
            dtype=str(leaf.dtype),
            name="_".join(str(key) for key in path) if path else None,
        )
        for path, leaf in keras.tree.flatten_with_path(case.y_pred)
    ]
    return keras.tree.pack_sequence_as(case.y_pred, inputs)
