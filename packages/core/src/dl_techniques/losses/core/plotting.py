"""Value and gradient of a loss against one prediction, for ``dl-losses plot``.

A loss is drawn along the axis of its kind, next to a reference curve:

```
kind         x axis                                      reference
error        error e = y_pred - y_true in [-3, 3]        e^2 / 2 and |e|
probability  predicted probability p in [0.01, 0.99]     binary cross-entropy
logit        logit z in [-6, 6]                          binary cross-entropy of sigmoid(z)
similarity   cosine similarity s of the positive pair    cosine distance 1 - s
             in [-0.99, 0.99]
```

How a point becomes ``y_true`` and ``y_pred`` is the loss's layout
(:data:`LAYOUT_TYPES`), named by :data:`LAYOUTS` for first-party losses or by
a ``plot_layout`` class attribute for any plugin's. A probability layout of a
loss built with ``from_logits=True`` is drawn on the logit axis. A name with no
layout (boxes, images, tokens, distribution parameters) raises
:class:`PlotError`.

A per-sample loss is evaluated on one sample per point. A batch-level loss
(soft confusion matrix, calibration statistic, contrastive matrix) gets a
batch of :data:`BATCH_SIZE` samples per point, all with the same prediction
(the confusion-matrix losses: positives predict ``p``, negatives ``1 - p``),
and the plotted value is the mean of what it returns. The gradient is
``d loss / d x`` with every entry of ``y_pred`` the point sets moving with
``x``, computed by the current Keras backend
(:func:`dl_techniques.losses.core.gradients.input_gradient`).
"""

import dataclasses
import difflib
import inspect
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

from dl_techniques.losses.core import gradients, registry
from dl_techniques.losses.core.batch_loss import BatchLoss

BATCH_SIZE = 8
PLOTS_INSTALL = 'pip install "dl-techniques-losses-core[plots]"'


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


@dataclasses.dataclass(frozen=True)
class _Reference:
    name: str
    key: str
    value: Callable[[np.ndarray, float], np.ndarray]
    gradient: Callable[[np.ndarray, float], np.ndarray]


@dataclasses.dataclass(frozen=True)
class _Axis:
    symbol: str
    label: str
    x_range: tuple[float, float]
    references: tuple[_Reference, ...]


@dataclasses.dataclass(frozen=True)
class _Layout:
    kind: str
    inputs: str
    build: Callable[[Any, Any, float | None], tuple[Any, Any]]
    targets: tuple[float | None, ...] = (None,)
    of_true_class: bool = False
    whole_batch: bool = False


def _probability_bce(p: np.ndarray, y: float) -> np.ndarray:
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p))


def _probability_bce_gradient(p: np.ndarray, y: float) -> np.ndarray:
    return -y / p + (1.0 - y) / (1.0 - p)


def _logit_bce(z: np.ndarray, y: float) -> np.ndarray:
    return np.logaddexp(0.0, z) - y * z


def _logit_bce_gradient(z: np.ndarray, y: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z)) - y


_AXES = {
    "error": _Axis(
        "e",
        "error e = y_pred - y_true",
        (-3.0, 3.0),
        (
            _Reference("squared error e^2/2", "e^2/2", lambda e, y: e**2 / 2, lambda e, y: e),
            _Reference("absolute error |e|", "|e|", lambda e, y: abs(e), lambda e, y: np.sign(e)),
        ),
    ),
    "probability": _Axis(
        "p",
        "predicted probability p",
        (0.01, 0.99),
        (_Reference("binary cross-entropy", "bce", _probability_bce, _probability_bce_gradient),),
    ),
    "logit": _Axis(
        "z",
        "logit z",
        (-6.0, 6.0),
        (_Reference("binary cross-entropy", "bce", _logit_bce, _logit_bce_gradient),),
    ),
    "similarity": _Axis(
        "s",
        "cosine similarity s of the positive pair",
        (-0.99, 0.99),
        (_Reference("cosine distance 1 - s", "1-s", lambda s, y: 1 - s, lambda s, y: 0 * s - 1),),
    ),
}


def _column(predictions: Any) -> Any:
    return keras.ops.reshape(predictions, (-1, 1))


def _rows(count: int, *values: float) -> np.ndarray:
    return np.tile(np.array(values, "float32"), (count, 1))


def _plots_logits(loss: Any) -> bool:
    return bool(getattr(loss, "from_logits", False))


def _error_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    return np.ones((predictions.shape[0], 1), "float32"), 1.0 + _column(predictions)


def _quantile_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    rows = predictions.shape[0]
    quantile_count = len(loss.quantiles)
    y_pred = keras.ops.tile(
        keras.ops.reshape(1.0 + predictions, (-1, 1, 1)), (1, 1, quantile_count)
    )
    return np.ones((rows, 1), "float32"), y_pred


def _insample_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    rows, season = predictions.shape[0], loss.seasonality
    history = _rows(rows, *(np.arange(2 * season) // season))
    y_true = {"target": np.ones((rows, 2), "float32"), "insample": history}
    return y_true, keras.ops.tile(1.0 + _column(predictions), (1, 2))


def _binary_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    return np.full((predictions.shape[0], 1), target, "float32"), _column(predictions)


def _balanced_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    labels = (np.arange(predictions.shape[0]) % 2 == 0).astype("float32")
    complement = -predictions if _plots_logits(loss) else 1.0 - predictions
    y_pred = keras.ops.where(labels == 1.0, predictions, complement)
    return labels.reshape(-1, 1), _column(y_pred)


def _pair_prediction(loss: Any, predictions: Any) -> Any:
    first = keras.ops.zeros_like(predictions) if _plots_logits(loss) else 1.0 - predictions
    return keras.ops.stack([first, predictions], axis=1)


def _one_hot_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    label = 1.0 if target is None else target
    return _rows(predictions.shape[0], 1.0 - label, label), _pair_prediction(loss, predictions)


def _sparse_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    labels = np.full((predictions.shape[0],), int(1.0 if target is None else target), "int32")
    return labels, _pair_prediction(loss, predictions)


def _cosine_pair_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    features = keras.ops.stack([predictions, keras.ops.sqrt(1.0 - predictions**2)], axis=1)
    return _rows(predictions.shape[0], 1.0, 0.0), features


def _similarity_matrix_inputs(loss: Any, predictions: Any, target: float | None) -> tuple[Any, Any]:
    rows = predictions.shape[0]
    return np.zeros((rows,), "float32"), keras.ops.diag(predictions)


_BOTH_LABELS = (1.0, 0.0)
LAYOUT_TYPES: dict[str, _Layout] = {
    "error": _Layout("error", "target 1, prediction 1 + e", _error_inputs),
    "error_quantiles": _Layout("error", "target 1, quantiles all 1 + e", _quantile_inputs),
    "error_insample": _Layout(
        "error", "2 steps of target 1 predicted 1 + e, in-sample scale 1", _insample_inputs
    ),
    "binary": _Layout("probability", "label y_true, prediction {x}", _binary_inputs, _BOTH_LABELS),
    "binary_balanced": _Layout(
        "probability",
        "half the samples labelled 1 predicting {x}, half labelled 0 predicting {complement}",
        _balanced_inputs,
        of_true_class=True,
        whole_batch=True,
    ),
    "one_hot_pair": _Layout(
        "probability", "2 classes, one-hot y_true, prediction {pair}", _one_hot_inputs, _BOTH_LABELS
    ),
    "sparse_pair": _Layout(
        "logit", "2 classes, label y_true, logits [0, z]", _sparse_inputs, _BOTH_LABELS
    ),
    "cosine_pair": _Layout(
        "similarity", "target [1, 0], prediction [s, sqrt(1 - s^2)]", _cosine_pair_inputs
    ),
    "similarity_matrix": _Layout(
        "similarity",
        "similarity matrix with s on the diagonal (positives), 0 elsewhere (negatives)",
        _similarity_matrix_inputs,
        whole_batch=True,
    ),
}
"""The layouts a loss can declare: how a point on the axis becomes its inputs."""

LAYOUTS: dict[str, str] = {
    "HuberLoss": "error",
    "SMAPELoss": "error",
    "MASELoss": "error_insample",
    "MQLoss": "error_quantiles",
    "AccuracyLoss": "binary_balanced",
    "PrecisionLoss": "binary_balanced",
    "RecallLoss": "binary_balanced",
    "SpecificityLoss": "binary_balanced",
    "F1Loss": "binary_balanced",
    "FBetaLoss": "binary_balanced",
    "BalancedAccuracyLoss": "binary_balanced",
    "GeometricMeanLoss": "binary_balanced",
    "MCCLoss": "binary_balanced",
    "BrierScoreLoss": "binary",
    "SpiegelhalterZLoss": "binary",
    "CombinedCalibrationLoss": "binary",
    "CapsuleMarginLoss": "binary",
    "FocalUncertaintyLoss": "one_hot_pair",
    "DecoupledInformationLoss": "one_hot_pair",
    "GoodhartAwareLoss": "one_hot_pair",
    "StableMaxCrossEntropy": "sparse_pair",
    "FeatureAlignmentLoss": "cosine_pair",
    "CLIPContrastiveLoss": "similarity_matrix",
    "SigLIPContrastiveLoss": "similarity_matrix",
}
"""First-party losses by public name, with the key of their layout in :data:`LAYOUT_TYPES`."""


def plottable_names() -> list[str]:
    """Returns the installed names of :data:`LAYOUTS`, without importing them."""
    return [name for name in registry.names() if name in LAYOUTS]


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


def save_plot(curves: LossCurves, path: str | pathlib.Path) -> pathlib.Path:
    """Writes a PNG of two panels, value and gradient, and returns its path.

    Needs matplotlib, the ``plots`` extra of ``dl-techniques-losses-core``.

    Raises:
        ImportError: matplotlib is not installed; the message names the extra.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            f"writing a plot needs matplotlib: {PLOTS_INSTALL} (or print the sampled "
            "points with --table)."
        ) from error
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    panels = dict(zip(("values", "gradients"), figure.subplots(1, 2), strict=True))
    colors: dict[float | None, str] = {}
    for index, curve in enumerate(curves.curves):
        single = curve.target is None
        color = f"C{index}" if single else colors.setdefault(curve.target, f"C{len(colors)}")
        for attribute, axes in panels.items():
            axes.plot(
                curves.x,
                getattr(curve, attribute),
                color=color,
                linestyle="--" if curve.reference else "-",
                linewidth=1.2 if curve.reference else 2.0,
                label=curve.name,
            )
    own = [curve for curve in curves.curves if not curve.reference]
    for attribute, axes in panels.items():
        axes.set_ylim(*_limits(np.concatenate([getattr(curve, attribute) for curve in own])))
        axes.axhline(0.0, color="0.6", linewidth=0.6)
        axes.set_xlabel(curves.x_label)
        axes.grid(alpha=0.3)
    panels["values"].set(title="value", ylabel="loss")
    panels["gradients"].set(title="gradient", ylabel=f"d loss / d {curves.x_symbol}")
    panels["values"].legend(fontsize="small")
    figure.suptitle(f"{curves.title}\n{curves.inputs}", fontsize="medium")
    path = pathlib.Path(path)
    figure.savefig(path, dpi=100)
    return path


def _limits(values: np.ndarray) -> tuple[float, float]:
    """Returns y limits that frame the loss's own curves; references may leave the frame."""
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    margin = 0.1 * (high - low) or 0.5 * max(abs(high), 1.0)
    return low - margin, high + margin
