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

The layouts and their input builders are in ``_layouts``, the axes and their
reference curves in ``_axes``, the sampling of a loss along its axis in
``_sampling``, and the matplotlib figure in ``_figure``.
"""

from dl_techniques.losses.core.plotting._figure import PLOTS_INSTALL, save_plot
from dl_techniques.losses.core.plotting._layouts import LAYOUT_TYPES, LAYOUTS, plottable_names
from dl_techniques.losses.core.plotting._sampling import (
    BATCH_SIZE,
    Curve,
    LossCurves,
    PlotError,
    loss_curves,
)

__all__ = [
    "BATCH_SIZE",
    "Curve",
    "LAYOUTS",
    "LAYOUT_TYPES",
    "LossCurves",
    "PLOTS_INSTALL",
    "PlotError",
    "loss_curves",
    "plottable_names",
    "save_plot",
]
