"""The PNG of a loss's curves, value and gradient side by side, drawn with matplotlib."""

import pathlib

import numpy as np

from dl_techniques.losses.core.plotting._sampling import LossCurves

PLOTS_INSTALL = 'pip install "dl-techniques-losses-core[plots]"'


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
