"""Soft Dice plus soft clDice, the training loss of Shit et al. (2021) for thin structures."""

from typing import Any

import keras

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.vision.soft_cldice_loss import SoftCLDiceLoss


@register_serializable
class SoftDiceCLDiceLoss(SoftCLDiceLoss):
    """``(1 - alpha)`` soft Dice plus ``alpha`` soft clDice, per image.

    With ``P`` the predicted probabilities and ``Y`` the one-hot labels of an
    image ``(*spatial, C)``, ``K`` the kept classes, ``s = smooth`` and the
    Dice sums over the pixels of one class:

    ```
    dice   = mean_{c in K} 1 - (2 sum P_c Y_c + s) / (sum P_c + sum Y_c + s)
    clDice = SoftCLDiceLoss(iterations, smooth)                (see that class)
    loss   = (1 - alpha) dice + alpha clDice
    ```

    This is MONAI's ``SoftDiceclDiceLoss(iter_=iterations, alpha=alpha,
    smooth_nr=smooth, smooth_dr=smooth, softmax=True, to_onehot_y=True)``:
    its Dice term is ``DiceLoss`` per image and class, averaged over the
    classes (and, by Keras' default reduction, over the images, as MONAI's
    ``reduction="mean"``). The authors' ``soft_dice_cldice`` pools its Dice
    over the batch and the foreground classes instead; MONAI's per-image form
    gives one value per image, so ``sample_weight`` weighs images. The same
    number, with the same Dice, comes from the loss algebra:
    ``(1 - alpha) * create_segmentation_loss_function("dice", config) +
    alpha * SoftCLDiceLoss(...)`` with ``config.per_image=True``,
    ``config.smooth=smooth`` (and class weight 0 on the background when
    ``include_background=False``).

    Shapes and label forms are those of ``SoftCLDiceLoss``: `y_pred`
    ``(B, H, W, C)`` or ``(B, H, W, D, C)`` (logits with
    ``from_logits=True``: a softmax over the channels, a sigmoid when ``C`` is
    1), `y_true` one-hot or class ids ``(B, H, W[, D][, 1])``; with
    ``include_background=False`` channel 0 is left out of both terms (when
    ``C > 1``). ``call`` returns ``(B,)``.

    Reference:
        Shit, S., Paetzold, J. C., Sekuboyina, A., Ezhov, I., Unger, A.,
        Zhylka, A., Pluim, J. P. W., Bauer, U., & Menze, B. H. (2021).
        clDice -- a Novel Topology-Preserving Loss Function for Tubular
        Structure Segmentation. CVPR.

    Args:
        alpha: Number in [0, 1], the weight of clDice. Defaults to 0.5.
        iterations: Int >= 0, the soft erosions of the skeleton. Defaults to 3.
        smooth: Positive number added to the numerators and denominators of
            Dice, topology precision and sensitivity. Defaults to 1.0.
        from_logits: Whether `y_pred` holds logits. Defaults to True.
        include_background: Whether channel 0 counts. Defaults to False.
        reduction: Keras reduction of the per-image values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to
            ``"soft_dice_cldice_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = SoftDiceCLDiceLoss(alpha=0.5, from_logits=False, smooth=1e-3)
    vessel = [[[0], [1], [0]], [[0], [1], [0]], [[0], [1], [0]]]  # a vertical line
    probabilities = [[[[1.0 - v, float(v)] for (v,) in row] for row in vessel]]
    loss([vessel], probabilities)  # ~0: a perfect prediction
    ```
    """

    def __init__(
        self,
        alpha: float = 0.5,
        iterations: int = 3,
        smooth: float = 1.0,
        from_logits: bool = True,
        include_background: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "soft_dice_cldice_loss",
        dtype: Any = None,
    ) -> None:
        validation.check_interval(type(self).__name__, "alpha", alpha, 0.0, 1.0)
        super().__init__(
            iterations=iterations,
            smooth=smooth,
            from_logits=from_logits,
            include_background=include_background,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        self.alpha = float(alpha)

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        probabilities, labels = self._maps(y_true, y_pred)
        spatial = tuple(range(1, len(probabilities.shape) - 1))
        overlap = keras.ops.sum(probabilities * labels, axis=spatial)
        total = keras.ops.sum(probabilities + labels, axis=spatial)
        dice = 1.0 - (2.0 * overlap + self.smooth) / (total + self.smooth)
        dice = keras.ops.mean(dice, axis=-1)
        return (1.0 - self.alpha) * dice + self.alpha * self._cldice(probabilities, labels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}
