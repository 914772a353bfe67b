"""A loss's value and gradient sampled along the axis of its kind: :func:`loss_curves`."""

import dataclasses
import difflib
import inspect
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from dl_techniques.losses.core import gradients, registry
from dl_techniques.losses.core.batch_loss import BatchLoss
from dl_techniques.losses.core.plotting._axes import _AXES
from dl_techniques.losses.core.plotting._layouts import (
    LAYOUT_TYPES,
    LAYOUTS,
    _Layout,
    _plots_logits,
    plottable_names,
)

BATCH_SIZE = 8


class PlotError(ValueError):
    """A loss cannot be plotted: no layout, a bad parameter, or inputs it rejects."""


@dataclasses.dataclass(frozen=True)
class Curve:
    """One line of the plot, sampled on the x grid.

    Attributes:
        name: Legend text, e.g. ``"F1Loss, y_true=1"``.
        key: Short column name for tables, e.g. ``"loss[y=1]"``.
        values: The value at each grid point.
        gradients: ``d value / d x`` at each grid point.
        target: The ``y_true`` the curve is drawn for, ``None`` for one curve.
        reference: Whether the curve is a reference for comparison.
    """

    name: str
    key: str
    values: np.ndarray
    gradients: np.ndarray
    target: float | None
    reference: bool


@dataclasses.dataclass(frozen=True)
class LossCurves:
    """A loss and its references along one axis.

    Attributes:
        name: The loss's public name.
        title: The loss and its parameters, e.g. ``"HuberLoss(delta=0.5)"``.
        kind: ``"error"``, ``"probability"``, ``"logit"`` or ``"similarity"``.
        x_symbol: The axis variable: ``e``, ``p``, ``z`` or ``s``.
        x_label: What the x axis is.
        inputs: How each point becomes ``y_true`` and ``y_pred``.
        x: The grid.
        curves: The loss's curves first, then the references.
    """

    name: str
    title: str
    kind: str
    x_symbol: str
    x_label: str
    inputs: str
    x: np.ndarray
    curves: tuple[Curve, ...]


def loss_curves(
    name: str,
    params: Mapping[str, Any] | None = None,
    points: int = 101,
    x_range: tuple[float, float] | None = None,
) -> LossCurves:
    """Samples a loss's value and gradient along the axis of its kind.

    Args:
        name: Public or qualified (``"dist:Name"``) name of an installed loss.
        params: Constructor arguments of the loss.
        points: Number of grid points, at least 2.
        x_range: ``(low, high)`` of the grid; the kind's default range when
            ``None``.

    Returns:
        The loss's curves (one per ``y_true`` of the kind) and the references.

    Raises:
        KeyError: No installed object has this name.
        PlotError: The object has no layout, rejects ``params`` or its inputs.

    Example:

    >>> curves = loss_curves("HuberLoss", {"delta": 1.0}, points=3)
    >>> curves.x, curves.curves[0].values, curves.curves[0].gradients
    (array([-3.,  0.,  3.]), array([2.5, 0. , 2.5]), array([-1.,  0.,  1.]))
    """
    params = dict(params or {})
    entry = registry.entry(name)
    obj = entry.load()
    layout = _layout_of(entry.name, obj)
    title = f"{entry.name}({', '.join(f'{key}={value!r}' for key, value in params.items())})"
    loss = _construct(entry.name, obj, params, title)
    kind = "logit" if layout.kind == "probability" and _plots_logits(loss) else layout.kind
    axis = _AXES[kind]
    low, high = axis.x_range if x_range is None else x_range
    if points < 2 or not low < high:
        raise PlotError(
            f"{title}: the grid needs at least 2 points and low < high; got points={points} "
            f"and range ({low}, {high})."
        )
    x = np.linspace(low, high, points)
    curves = []
    whole_batches = layout.whole_batch or _is_batch_level(loss)
    for target in layout.targets:
        values, slopes, whole_batches = _sample(title, loss, layout, x, target, whole_batches)
        curves.append(_curve(entry.name, "loss", values, slopes, target, False))
    for reference in axis.references:
        for target in layout.targets:
            label = 1.0 if target is None else target
            value, slope = reference.value(x, label), reference.gradient(x, label)
            curves.append(_curve(reference.name, reference.key, value, slope, target, True))
    x_label = axis.label + (" of the true class" if layout.of_true_class else "")
    logits = kind == "logit"
    evaluated_on = f"a batch of {BATCH_SIZE} samples" if whole_batches else "one sample"
    inputs = f"{evaluated_on} per point, " + layout.inputs.format(
        x=axis.symbol,
        complement="-z" if logits else "1 - p",
        pair="logits [0, z]" if logits else "[1 - p, p]",
    )
    return LossCurves(entry.name, title, kind, axis.symbol, x_label, inputs, x, tuple(curves))


def _curve(
    name: str,
    key: str,
    values: np.ndarray,
    slopes: np.ndarray,
    target: float | None,
    reference: bool,
) -> Curve:
    if target is not None:
        name, key = f"{name}, y_true={target:g}", f"{key}[y={target:g}]"
    return Curve(name, key, values, slopes, target, reference)


def _layout_of(name: str, obj: Any) -> _Layout:
    if not (inspect.isclass(obj) and issubclass(obj, keras.losses.Loss)):
        raise PlotError(f"{name} is not a loss class; `dl-losses plot` draws losses.")
    key = getattr(obj, "plot_layout", None) or LAYOUTS.get(name)
    if key is None:
        plottable = ", ".join(plottable_names()) or "none installed"
        raise PlotError(
            f"{name} cannot be plotted against a single prediction: its inputs are not an "
            "error, a probability, a logit or a cosine similarity (boxes, images, tokens or "
            "distribution parameters). A loss class opts in with a `plot_layout` attribute "
            f"naming one of {sorted(LAYOUT_TYPES)}. Plottable: {plottable}."
        )
    if key not in LAYOUT_TYPES:
        raise PlotError(f"{name}: plot_layout {key!r} is not one of {sorted(LAYOUT_TYPES)}.")
    return LAYOUT_TYPES[key]


def _construct(name: str, cls: Any, params: dict[str, Any], title: str) -> Any:
    parameters = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = [key for key in params if key not in parameters]
    if unknown and not takes_any:
        close = difflib.get_close_matches(unknown[0], list(parameters), n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise PlotError(
            f"{name} has no parameter {unknown[0]!r}.{hint} Its parameters: "
            f"{', '.join(parameters)}."
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as error:
        raise PlotError(f"{title}: {error}") from error


def _sample(
    title: str,
    loss: Any,
    layout: _Layout,
    x: np.ndarray,
    target: float | None,
    whole_batches: bool,
) -> tuple[np.ndarray, np.ndarray, bool]:
    def per_sample(points: Any) -> Any:
        y_true, y_pred = layout.build(loss, points, target)
        return loss.call(keras.tree.map_structure(keras.ops.convert_to_tensor, y_true), y_pred)

    def per_batch(points: Any) -> Any:
        values = []
        for index in range(len(x)):
            batch = keras.ops.repeat(points[index : index + 1], BATCH_SIZE)
            y_true, y_pred = layout.build(loss, batch, target)
            values.append(keras.ops.mean(loss(y_true, y_pred)))
        return keras.ops.stack(values)

    grid = keras.ops.convert_to_tensor(x, dtype="float32")
    try:
        if not whole_batches:
            values = per_sample(grid)
            whole_batches = tuple(values.shape) != (len(x),)
        if whole_batches:
            values = per_batch(grid)
        slopes = gradients.input_gradient(per_batch if whole_batches else per_sample, grid)
    except (TypeError, ValueError) as error:
        raise PlotError(
            f"{title} rejects the inputs of its plot ({layout.inputs}): {error}"
        ) from error
    return _numpy(values), _numpy(slopes), whole_batches


def _is_batch_level(loss: Any) -> bool:
    return isinstance(loss, BatchLoss) and not loss.is_per_sample()


def _numpy(tensor: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.stop_gradient(tensor)), "float64")
