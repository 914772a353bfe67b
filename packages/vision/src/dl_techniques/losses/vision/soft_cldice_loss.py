"""Soft clDice of Shit et al. (2021): topology-aware overlap of thin structures."""

from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops, shapes, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.vision import _soft_skeleton

# MONAI's constant in the denominator of the harmonic mean.
_HARMONIC_SMOOTH = 1e-4


@register_serializable
class SoftCLDiceLoss(PerSampleLoss):
    """One minus the harmonic mean of topology precision and sensitivity.

    With ``P`` the predicted probabilities and ``Y`` the one-hot labels of an
    image ``(*spatial, C)``, ``skel`` the soft skeleton (``iterations`` soft
    erosions, each adding what a soft opening removes), ``s = smooth`` and
    the sums over the pixels and kept classes of the image:

    ```
    Tprec = (sum skel(P) Y + s) / (sum skel(P) + s)
    Tsens = (sum skel(Y) P + s) / (sum skel(Y) + s)
    loss  = 1 - 2 Tprec Tsens / (Tprec + Tsens + 1e-4)
    ```

    Soft erosion is ``-maxpool(-x)`` over 3x1 and 1x3 windows (3x1x1, 1x3x1,
    1x1x3 in 3-D), the minimum of those; soft dilation a 3x3 (3x3x3) max
    pool, as in the authors' ``soft_skel``. This is MONAI's
    ``SoftclDiceLoss(iter_=iterations, smooth_nr=smooth, smooth_dr=smooth,
    softmax=True, to_onehot_y=True, reduction="none")`` (the 1e-4 is its
    ``smooth``). The paper trains with ``(1 - alpha) soft Dice + alpha
    clDice``: ``SoftDiceCLDiceLoss``, or with the loss algebra of
    ``dl_techniques.losses`` ``0.5 * create_segmentation_loss_function("dice",
    config) + 0.5 * SoftCLDiceLoss()``.

    `y_pred` is ``(B, H, W, C)`` or ``(B, H, W, D, C)``: logits with
    ``from_logits=True`` (softmax over the channels, a sigmoid when ``C``
    is 1), probabilities otherwise. `y_true` is one-hot (the shape of
    `y_pred`) or class ids ``(B, H, W[, D][, 1])``. With
    ``include_background=False`` channel 0 is left out (when ``C > 1``).
    The loss is per image: ``call`` returns ``(B,)``.

    Reference:
        Shit, S., Paetzold, J. C., Sekuboyina, A., Ezhov, I., Unger, A.,
        Zhylka, A., Pluim, J. P. W., Bauer, U., & Menze, B. H. (2021).
        clDice -- a Novel Topology-Preserving Loss Function for Tubular
        Structure Segmentation. CVPR.

    Args:
        iterations: Int >= 0, the soft erosions of the skeleton. Defaults to 3.
        smooth: Positive number added to the numerators and denominators.
            Defaults to 1.0.
        from_logits: Whether `y_pred` holds logits. Defaults to True.
        include_background: Whether channel 0 counts. Defaults to False.
        reduction: Keras reduction of the per-image values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"soft_cldice_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = SoftCLDiceLoss(from_logits=False, smooth=1e-3)
    vessel = [[[0], [1], [0]], [[0], [1], [0]], [[0], [1], [0]]]  # a vertical line
    probabilities = [[[[1.0 - v, float(v)] for (v,) in row] for row in vessel]]
    loss([vessel], probabilities)  # ~0: a perfect prediction
    ```
    """

    def __init__(
        self,
        iterations: int = 3,
        smooth: float = 1.0,
        from_logits: bool = True,
        include_background: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "soft_cldice_loss",
        dtype: Any = None,
    ) -> None:
        owner = type(self).__name__
        if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
            raise ValueError(
                f"{owner}: `iterations` must be an integer >= 0; got iterations={iterations!r}."
            )
        validation.check_positive(owner, "smooth", smooth)
        validation.check_bool(owner, "from_logits", from_logits)
        validation.check_bool(owner, "include_background", include_background)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.iterations = iterations
        self.smooth = float(smooth)
        self.from_logits = from_logits
        self.include_background = include_background

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        probabilities, labels = self._maps(y_true, y_pred)
        return self._cldice(probabilities, labels)

    def _cldice(self, probabilities, labels):
        """The clDice loss per image ``(B,)`` of prepared maps ``(B, *spatial, kept classes)``."""
        axes = tuple(range(1, len(probabilities.shape)))
        predicted_skeleton = _soft_skeleton.soft_skeleton(probabilities, self.iterations)
        true_skeleton = _soft_skeleton.soft_skeleton(labels, self.iterations)
        precision = (keras.ops.sum(predicted_skeleton * labels, axis=axes) + self.smooth) / (
            keras.ops.sum(predicted_skeleton, axis=axes) + self.smooth
        )
        sensitivity = (keras.ops.sum(true_skeleton * probabilities, axis=axes) + self.smooth) / (
            keras.ops.sum(true_skeleton, axis=axes) + self.smooth
        )
        harmonic = 2.0 * precision * sensitivity / (precision + sensitivity + _HARMONIC_SMOOTH)
        return 1.0 - harmonic

    def _maps(self, y_true, y_pred):
        """Probabilities and one-hot labels ``(B, *spatial, kept classes)``."""
        owner = type(self).__name__
        y_pred = numerics.upcast_half(y_pred)
        pred_shape, true_shape = shapes.static_shape(y_pred), shapes.static_shape(y_true)
        if len(pred_shape) not in (4, 5):
            raise ValueError(
                f"{owner}: `y_pred` must have shape (batch, height, width[, depth], classes); "
                f"got y_pred shape {pred_shape}."
            )
        classes = pred_shape[-1]
        if classes is None:
            raise ValueError(f"{owner}: the class axis of `y_pred` must have a static size.")
        if true_shape[-1:] == (classes,) and len(true_shape) == len(pred_shape) and classes > 1:
            labels = numerics.as_float(y_true, y_pred)
            validation.check_binary(owner, "y_true", labels)
        else:
            ids = y_true
            if len(true_shape) == len(pred_shape):
                ids = keras.ops.squeeze(ids, axis=-1)
            ids = numerics.as_float(ids, y_pred)
            validation.check_integers(owner, "y_true", ids, 0, max(classes, 2))
            labels = (
                keras.ops.expand_dims(ids, -1)
                if classes == 1
                else keras.ops.one_hot(keras.ops.cast(ids, "int32"), classes, dtype=y_pred.dtype)
            )
        shapes.check_same_shape(owner, labels, y_pred)
        if self.from_logits:
            if classes == 1:
                probabilities = keras.ops.sigmoid(y_pred)
            else:
                probabilities = ops.softmax(y_pred, axis=-1)
        else:
            validation.check_probabilities(owner, "y_pred", y_pred)
            probabilities = y_pred
        if not self.include_background and classes > 1:
            probabilities, labels = probabilities[..., 1:], labels[..., 1:]
        return probabilities, labels

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "iterations": self.iterations,
            "smooth": self.smooth,
            "from_logits": self.from_logits,
            "include_background": self.include_background,
        }
