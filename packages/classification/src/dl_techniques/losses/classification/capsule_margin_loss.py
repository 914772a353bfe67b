"""Margin loss on the lengths of capsule vectors."""

import math
from typing import Any

import keras

from dl_techniques.losses.core import numerics, shapes, validation
from dl_techniques.losses.core.serialization import register_serializable

_NAME = "CapsuleMarginLoss"

# Added under the square root of a capsule's squared norm: the gradient of
# sqrt(x) is infinite at x = 0, i.e. at an all-zero capsule. 1e-7 is Keras'
# default epsilon; it lengthens a capsule of length 0.1 by 5e-6 relative.
_LENGTH_EPSILON = 1e-7


@register_serializable
class CapsuleMarginLoss(keras.losses.Loss):
    """Margin loss of Capsule Networks on the lengths of the class capsules.

    A class capsule's length ``|v_k|`` is read as the probability that class
    ``k`` is present. Present classes (``T_k = 1``) are pushed above
    ``m+``, absent ones below ``m-``; absent classes are down-weighted by
    ``lambda`` so that early training does not shrink every capsule:

    ```
    |v_k|   = sqrt(sum_d v_kd^2 + 1e-7)                 (capsule vectors)
    loss    = sum_k  T_k max(0, m+ - |v_k|)^2
                   + lambda (1 - T_k) max(0, |v_k| - m-)^2
    ```

    This is the sum over classes of Sabour et al.'s equation (4). The official
    TensorFlow implementation (``models/research/capsules``) halves both terms
    and averages over the ``K`` classes rather than summing, so its value is
    this loss divided by ``2 K``; with ``m+ = 0.9``, ``m- = 0.1`` its
    "margin 0.4 around 0.5" is the same pair of margins.

    ``T`` may be multi-hot (several present classes, as in MultiMNIST).

    Shapes: ``y_true`` ``(B, K)`` with entries in {0, 1}; ``y_pred`` either
    the capsule lengths ``(B, K)`` or the capsule vectors ``(B, K, D)``.
    The loss has one value per sample.

    Values: targets other than 0 and 1, and negative capsule lengths, raise
    a ``ValueError`` on the first eager call of an instance (every eager
    call with ``DL_LOSSES_VALIDATE=always``; never under ``jit``). Lengths
    above 1 (an unsquashed capsule) are accepted: both hinges are flat there.

    Reference:
        Sabour, S., Frosst, N., & Hinton, G. E. (2017). Dynamic Routing
        Between Capsules. NeurIPS. https://arxiv.org/abs/1710.09829

    Args:
        positive_margin: ``m+`` in (0, 1): the length a present class's
            capsule should exceed. Defaults to 0.9.
        negative_margin: ``m-`` in (0, 1) and below ``m+``: the length an
            absent class's capsule should stay under. Defaults to 0.1.
        downweight: ``lambda`` in (0, 1], the weight of the absent-class
            term. Defaults to 0.5.
        reduction: Keras reduction of the per-sample values. Defaults to
            ``"sum_over_batch_size"``.
        name: Name of the loss instance. Defaults to ``"capsule_margin_loss"``.
        dtype: Dtype of the loss computations; float16 and bfloat16 inputs
            are computed in float32. Defaults to ``keras.backend.floatx()``.

    Example:

    ```python
    loss = CapsuleMarginLoss()
    # Class 0 present with length 0.7: (0.9 - 0.7)^2 = 0.04;
    # class 1 absent with length 0.3: 0.5 * (0.3 - 0.1)^2 = 0.02 -> 0.06
    loss([[1.0, 0.0]], [[0.7, 0.3]])
    ```
    """

    def __init__(
        self,
        positive_margin: float = 0.9,
        negative_margin: float = 0.1,
        downweight: float = 0.5,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = "capsule_margin_loss",
        dtype: Any | None = None,
    ) -> None:
        self.positive_margin = _open_unit_interval("positive_margin", positive_margin)
        self.negative_margin = _open_unit_interval("negative_margin", negative_margin)
        if self.positive_margin <= self.negative_margin:
            raise ValueError(
                f"{_NAME}: `positive_margin` must be greater than `negative_margin`; got "
                f"positive_margin={positive_margin!r} and negative_margin={negative_margin!r}."
            )
        if not validation.is_real_number(downweight) or not 0.0 < downweight <= 1.0:
            raise ValueError(
                f"{_NAME}: `downweight` must be a number in (0, 1]; got downweight={downweight!r}."
            )
        self.downweight = float(downweight)
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = numerics.upcast_half(y_pred)
        y_true = numerics.as_float(keras.ops.convert_to_tensor(y_true), y_pred)
        true_shape, pred_shape = shapes.static_shape(y_true), shapes.static_shape(y_pred)
        if len(pred_shape) not in (2, 3):
            raise ValueError(
                f"{_NAME}: `y_pred` must be capsule lengths (batch, num_classes) or capsule "
                f"vectors (batch, num_classes, capsule_dim); got y_pred shape {pred_shape}."
            )
        if not shapes.shapes_match(true_shape, pred_shape[:2]):
            raise ValueError(
                f"{_NAME}: `y_true` must have shape (batch, num_classes) matching y_pred's "
                f"first two axes; got y_true shape {true_shape} and y_pred shape {pred_shape}."
            )
        validation.check_binary(_NAME, "y_true", y_true)
        if len(pred_shape) == 2:
            # Lengths above 1 (an unsquashed capsule) are accepted: both hinges
            # are flat there. A negative length is no length at all.
            validation.check_in_range(
                _NAME,
                "y_pred",
                y_pred,
                0.0,
                math.inf,
                hint="A capsule length is a norm, never negative; lengths above 1 are accepted.",
            )

        if len(pred_shape) == 3:
            lengths = keras.ops.sqrt(
                keras.ops.sum(keras.ops.square(y_pred), axis=-1) + _LENGTH_EPSILON
            )
        else:
            lengths = y_pred
        present_cost = keras.ops.square(keras.ops.relu(self.positive_margin - lengths))
        absent_cost = keras.ops.square(keras.ops.relu(lengths - self.negative_margin))
        per_class = y_true * present_cost + self.downweight * (1.0 - y_true) * absent_cost
        return keras.ops.sum(per_class, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "positive_margin": self.positive_margin,
            "negative_margin": self.negative_margin,
            "downweight": self.downweight,
        }


def _open_unit_interval(argument: str, value: Any) -> float:
    # Core's check_interval is closed; a margin of 0 or 1 is degenerate.
    if not validation.is_real_number(value) or not 0.0 < value < 1.0:
        raise ValueError(
            f"{_NAME}: `{argument}` must be a number in the open interval (0, 1); "
            f"got {argument}={value!r}."
        )
    return float(value)
