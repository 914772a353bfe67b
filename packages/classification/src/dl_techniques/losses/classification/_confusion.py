"""The soft confusion matrix shared by AnyLoss and the metric losses built on it."""

import math
from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops, shapes, validation
from dl_techniques.losses.core.batch_loss import BatchLoss

EPSILON = 1e-5
"""Added to every denominator of a metric (and inside the square roots of the
geometric mean and MCC), as in the AnyLoss paper; nowhere else."""

AVERAGES = ("micro", "macro")


class SoftConfusionMatrixLoss(BatchLoss):
    """Base of the AnyLoss family: ``1 - metric(TP, FN, FP, TN)`` on a batch.

    Predictions ``p`` (probabilities, or logits passed through a sigmoid
    first when ``from_logits=True``) are pushed towards 0 or 1 by the
    amplifier ``A(p) = sigmoid(L (p - 0.5))`` and the confusion matrix is
    built from ``yhat = A(p)`` as weighted batch sums:

    ```
    TP = sum w y yhat          FN = sum w y - TP
    FP = sum w (1 - y) yhat    TN = sum w (1 - y) - FP
    N  = sum w = TP + FN + FP + TN
    ```

    the paper's ``FP = sum w yhat - TP`` and ``TN = N - sum w y - sum w yhat
    + TP`` rearranged so that no difference involves N. FN and TN are
    clamped at 0, which only removes rounding error.

    Subclasses define ``metric(tp, fn, fp, tn)``. The loss is one scalar per
    batch, so ``sample_weight`` is applied inside the sums (an integer weight
    ``k`` on a row equals repeating the row ``k`` times) and ``reduction`` has
    no effect.

    Labels other than 0 and 1, and probabilities outside [0, 1] with
    ``from_logits=False``, raise a ``ValueError`` on the first eager call of
    an instance (``dl_techniques.losses.core.validation``).
    """

    def __init__(
        self,
        amplifying_scale: float = 73.0,
        from_logits: bool = False,
        average: str = "micro",
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any | None = None,
    ) -> None:
        loss_name = type(self).__name__
        validation.check_positive(loss_name, "amplifying_scale", amplifying_scale)
        validation.check_bool(loss_name, "from_logits", from_logits)
        validation.check_choice(loss_name, "average", average, AVERAGES)
        try:
            super().__init__(name=name, reduction=reduction, dtype=dtype)
        except ValueError as error:
            raise ValueError(f"{loss_name}: {error}") from error
        self.amplifying_scale = float(amplifying_scale)
        self.from_logits = from_logits
        self.average = average

    def metric(self, tp: Any, fn: Any, fp: Any, tn: Any) -> Any:
        """Returns the metric, elementwise over tensors of shape () or (C,)."""
        raise NotImplementedError

    def batch_value(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> Any:
        tp, fn, fp, tn = self.soft_confusion_matrix(y_true, y_pred, sample_weight)
        metric = self.metric(tp, fn, fp, tn)
        if self.average == "micro":
            return 1.0 - metric
        return 1.0 - keras.ops.mean(metric)

    def soft_confusion_matrix(
        self, y_true: Any, y_pred: Any, sample_weight: Any | None = None
    ) -> tuple[Any, Any, Any, Any]:
        """Returns the weighted soft ``(TP, FN, FP, TN)``.

        Each has shape () with ``average="micro"`` (sums over every cell) and
        ``(C,)`` with ``average="macro"`` (sums over the batch, per column).
        Computed in the loss dtype, or float32 for a half-precision loss dtype.
        """
        y_true, y_pred, weights = self._prepare(y_true, y_pred, sample_weight)
        return ops.soft_confusion_counts(
            y_true,
            y_pred,
            self.amplifying_scale,
            from_logits=self.from_logits,
            weights=weights,
            axis=None if self.average == "micro" else 0,
        )

    def _prepare(self, y_true: Any, y_pred: Any, sample_weight: Any | None) -> tuple:
        loss_name = type(self).__name__
        # A direct call of soft_confusion_matrix passes raw inputs; through
        # __call__ these casts find the compute dtype already.
        y_pred = numerics.as_tensor(y_pred, self.compute_dtype)
        y_true = numerics.as_tensor(y_true, self.compute_dtype)
        y_true, y_pred = shapes.squeeze_trailing_unit_axis(y_true, y_pred)
        pred_shape = shapes.static_shape(y_pred)
        if len(pred_shape) not in (1, 2):
            raise ValueError(
                f"{loss_name}: `y_pred` must have shape (batch,), (batch, 1) or "
                f"(batch, labels); got shape {pred_shape}."
            )
        shapes.check_same_shape(loss_name, y_true, y_pred)
        _check_hard_labels(loss_name, y_true)
        if not self.from_logits:
            validation.check_probabilities(loss_name, "y_pred", y_pred)
        if len(pred_shape) == 1:
            y_true = keras.ops.expand_dims(y_true, axis=-1)
            y_pred = keras.ops.expand_dims(y_pred, axis=-1)
        weights = None
        if sample_weight is not None:
            weights = _as_cell_weights(loss_name, sample_weight, y_pred, self.compute_dtype)
        return y_true, y_pred, weights

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "amplifying_scale": self.amplifying_scale,
            "from_logits": self.from_logits,
            "average": self.average,
        }


def safe_ratio(numerator: Any, denominator: Any) -> Any:
    """``numerator / (denominator + EPSILON)``, the ratio every metric uses."""
    return numerator / (denominator + EPSILON)


def _as_cell_weights(loss_name: str, sample_weight: Any, y_pred: Any, compute_dtype: str) -> Any:
    weights = keras.ops.cast(keras.ops.convert_to_tensor(sample_weight), compute_dtype)
    weight_shape, pred_shape = shapes.static_shape(weights), shapes.static_shape(y_pred)
    if len(weight_shape) == 1:
        weights = keras.ops.expand_dims(weights, axis=-1)
    accepted = len(weight_shape) == 0 or (
        len(weight_shape) in (1, 2)
        and shapes.shapes_match(weight_shape[:1], pred_shape[:1])
        and (len(weight_shape) == 1 or weight_shape[1] in (1, None, pred_shape[1]))
    )
    if not accepted:
        raise ValueError(
            f"{loss_name}: `sample_weight` must be a scalar or have shape (batch,), "
            f"(batch, 1) or the shape of y_pred; got sample_weight shape "
            f"{weight_shape} for y_pred shape {pred_shape}."
        )
    return keras.ops.broadcast_to(weights, keras.ops.shape(y_pred))


def _check_hard_labels(loss_name: str, y_true: Any) -> None:
    """Raises ``ValueError`` unless every label is exactly 0 or 1.

    Unlike ``validation.check_binary`` a NaN label is rejected too: the soft
    confusion matrix sums labels over the whole batch, so one NaN label would
    turn the loss of every sample into NaN with no hint of its cause.
    Follows the first-eager-call rule of ``validation.values_due``.
    """
    if not validation.values_due(y_true):
        return
    invalid = keras.ops.logical_and(
        keras.ops.not_equal(y_true, 0.0), keras.ops.not_equal(y_true, 1.0)
    )
    count = int(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.cast(invalid, "int32"))))
    if count:
        true_shape = shapes.static_shape(y_true)
        raise ValueError(
            f"{loss_name}: `y_true` must hold hard labels 0 or 1; {count} of "
            f"{math.prod(keras.ops.shape(y_true))} entries of y_true (shape {true_shape}) are "
            "other values."
        )
