"""The parameter axis of probabilistic forecast heads, shared by their losses.

A probabilistic head predicts the raw parameters of a distribution for every
forecast element, stacked on the last axis of `y_pred`; `y_true` has the shape
of `y_pred` without that axis (or with a trailing 1 in its place). Positive
parameters are mapped from the raw values with ``softplus(raw) + 1e-6``.
"""

from typing import Any

import keras

from dl_techniques.losses.core import shapes, validation
from dl_techniques.losses.core.per_sample_loss import PerSampleLoss
from dl_techniques.losses.forecasting import _per_sample

SCALE_FLOOR = 1e-6
"""Added to ``softplus(raw)`` so that a scale or rate is never exactly 0."""


def positive(raw: Any) -> Any:
    """Maps raw head outputs to positive parameters: ``softplus(raw) + 1e-6``."""
    return keras.ops.softplus(raw) + SCALE_FLOOR


def target_with_parameter_axis(
    owner: str, y_true: Any, y_pred: Any, axis_name: str, size: int | None
) -> Any:
    """Checks the layout ``(B, ..., size)`` of `y_pred`; returns `y_true` as ``(B, ..., 1)``.

    Args:
        owner: The loss, named in error messages.
        y_true: Targets ``(B, ...)`` or ``(B, ..., 1)``.
        y_pred: Predictions ``(B, ..., size)``.
        axis_name: What the last axis of `y_pred` holds, for messages.
        size: Its required length, or None for any length.

    Raises:
        ValueError: When `y_pred` has fewer than two axes or a last axis of
            another length, or `y_true` does not match the other axes.
    """
    pred_shape = shapes.static_shape(y_pred)
    if len(pred_shape) < 2 or shapes.sizes_differ(pred_shape[-1], size):
        required = axis_name if size is None else f"{axis_name}={size}"
        raise ValueError(
            f"{owner}: `y_pred` must have shape (batch, ..., {axis_name}) with the "
            f"{required} on its last axis; got y_pred shape {pred_shape}."
        )
    true_shape = shapes.static_shape(y_true)
    if shapes.shapes_match(true_shape, pred_shape[:-1]):
        return keras.ops.expand_dims(y_true, axis=-1)
    if shapes.shapes_match(true_shape, pred_shape[:-1] + (1,)):
        return y_true
    raise ValueError(
        f"{owner}: `y_true` must have the shape of y_pred without its {axis_name} axis, "
        f"or with a trailing 1 instead of it; got y_true shape {true_shape} and y_pred "
        f"shape {pred_shape}."
    )


def check_non_negative_target(owner: str, y_true: Any) -> None:
    """Raises ``ValueError`` (on a due eager call) when `y_true` holds negative values."""
    validation.check_in_range(
        owner, "y_true", y_true, 0.0, float("inf"), hint="The distribution has support y >= 0."
    )


class DistributionHeadLoss(PerSampleLoss):
    """A negative log-likelihood of targets under a head's predicted distribution.

    Subclasses name the raw parameters on the last axis of `y_pred` in
    ``parameter_names`` and write :meth:`negative_log_likelihood`; this class
    checks the layout and returns the mean over the non-batch axes.
    """

    parameter_names: tuple[str, ...] = ()
    non_negative_target = False

    @validation.checks_values
    def call(self, y_true: Any, y_pred: Any) -> Any:
        owner = type(self).__name__
        y_true, y_pred = _per_sample.as_float_pair(y_true, y_pred)
        axis_name = "(" + ", ".join(self.parameter_names) + ")"
        y_true = target_with_parameter_axis(
            owner, y_true, y_pred, axis_name, len(self.parameter_names)
        )
        if self.non_negative_target:
            check_non_negative_target(owner, y_true)
        raw = [y_pred[..., index] for index in range(len(self.parameter_names))]
        per_element = self.negative_log_likelihood(y_true[..., 0], *raw)
        return _per_sample.mean_over_non_batch_axes(per_element)

    def negative_log_likelihood(self, y_true: Any, *raw_parameters: Any) -> Any:
        """Returns ``-log p(y_true)`` per element from the raw parameters."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dtype": self._dtype_policy.name}
