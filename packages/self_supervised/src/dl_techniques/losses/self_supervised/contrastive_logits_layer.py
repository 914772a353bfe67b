"""The learnable logit scale (and SigLIP bias) of a contrastive model."""

import math
from typing import Any

import keras

from dl_techniques.losses.core import ops, validation
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.self_supervised import _contrastive


@register_serializable
class ContrastiveLogitsLayer(keras.layers.Layer):
    """Scores every image against every text with a learnable scale and bias.

    CLIP and SigLIP learn the logit scale as ``exp(t')`` and SigLIP also a
    bias ``b``. A loss must not own trainable variables (the optimizer would
    never see them, and JAX's stateless ``fit`` would drop their updates),
    so this layer holds them as weights of the model. Called on
    ``(image_embeddings, text_embeddings)`` of shape ``(B, D)``, it
    L2-normalises both and returns the ``(B, B)`` logits

    ```
    logits = exp(t') * I T^T (+ b),    t' <= log(max_scale)
    ```

    to be trained with ``CLIPContrastiveLoss(temperature=None)`` or
    ``SigLIPContrastiveLoss(temperature=None, bias=None)``. As open_clip
    clamps ``logit_scale`` to ``ln 100``, ``t'`` is clipped to
    ``log(max_scale)`` after every optimizer step (a weight constraint), so
    the scale never exceeds ``max_scale`` while training.

    The logits of one replica's batch are those of its local samples only:
    for ``tf.distribute`` or torch DDP training against the global batch,
    feed the losses the embeddings form with a fixed temperature instead.

    Reference:
        Radford, A., et al. (2021). Learning Transferable Visual Models From
        Natural Language Supervision. ICML. Zhai, X., et al. (2023). Sigmoid
        Loss for Language Image Pre-Training. ICCV.

    Args:
        initial_scale: Positive float, the scale ``exp(t')`` at the start;
            at most ``max_scale``. CLIP starts at ``1 / 0.07``, SigLIP at 10.
            Defaults to ``1 / 0.07``.
        max_scale: Positive float, the largest scale. Defaults to 100.0.
        use_bias: Whether to learn the bias ``b`` (SigLIP). Defaults to False.
        initial_bias: Float, the bias at the start, used when ``use_bias``.
            SigLIP starts at -10. Defaults to -10.0.
        **kwargs: Standard ``keras.layers.Layer`` arguments (``name``,
            ``dtype``, ``trainable``).

    Example:

    ```python
    image = keras.Input((32,))
    text = keras.Input((32,))
    logits = ContrastiveLogitsLayer(initial_scale=10.0, use_bias=True)((image, text))
    model = keras.Model([image, text], logits)
    model.compile("adam", loss=SigLIPContrastiveLoss(temperature=None, bias=None))
    ```
    """

    def __init__(
        self,
        initial_scale: float = 1.0 / 0.07,
        max_scale: float = 100.0,
        use_bias: bool = False,
        initial_bias: float = -10.0,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        validation.check_positive(owner, "max_scale", max_scale)
        if not (validation.is_real_number(initial_scale) and 0 < initial_scale <= max_scale):
            raise ValueError(
                "ContrastiveLogitsLayer: `initial_scale` must be a finite number in "
                f"(0, max_scale={max_scale!r}]; got initial_scale={initial_scale!r}."
            )
        validation.check_bool(owner, "use_bias", use_bias)
        if not validation.is_real_number(initial_bias):
            raise ValueError(
                "ContrastiveLogitsLayer: `initial_bias` must be a finite number; "
                f"got initial_bias={initial_bias!r}."
            )
        super().__init__(**kwargs)
        self.initial_scale = float(initial_scale)
        self.max_scale = float(max_scale)
        self.use_bias = use_bias
        self.initial_bias = float(initial_bias)
        self.log_scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.initial_scale)),
            constraint=_AtMost(math.log(self.max_scale)),
            name="log_scale",
        )
        self.bias = None
        if use_bias:
            self.bias = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(self.initial_bias),
                name="bias",
            )

    @property
    def scale(self) -> Any:
        """The current scale ``exp(t')``, a scalar tensor."""
        return keras.ops.exp(self.log_scale)

    def call(self, inputs: tuple[Any, Any]) -> Any:
        image, text = inputs
        _contrastive.check_embedding_shapes(type(self).__name__, image, text)
        similarities = keras.ops.matmul(
            ops.l2_normalize(image),
            keras.ops.transpose(ops.l2_normalize(text)),
        )
        logits = keras.ops.exp(self.log_scale) * similarities
        if self.bias is not None:
            logits = logits + self.bias
        return logits

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, int | None]:
        image_shape, text_shape = input_shape
        return (image_shape[0], text_shape[0])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "initial_scale": self.initial_scale,
            "max_scale": self.max_scale,
            "use_bias": self.use_bias,
            "initial_bias": self.initial_bias,
        }


class _AtMost(keras.constraints.Constraint):
    # Rebuilt from `max_scale` with the layer, so it needs no config of its own.
    def __init__(self, limit):
        self.limit = limit

    def __call__(self, weight):
        return keras.ops.minimum(weight, self.limit)
