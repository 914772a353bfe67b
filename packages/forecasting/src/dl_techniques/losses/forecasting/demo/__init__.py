"""Demo: quantile and Gaussian forecasters on a synthetic seasonal series.

A small MLP reads 48 steps of history and forecasts the next 12 steps at the
quantiles 0.1, 0.5 and 0.9, trained with MQLoss. On held-out windows the demo
reports how often the truth falls inside the 10-90% interval (nominally 0.80)
and the MASE of the median forecast next to the MASE of the seasonal naive
forecast (repeat the last season), both scaled by the in-sample seasonal naive
error. A second MLP of the same size predicts a Gaussian per step, trained with
GaussianNLL; the demo reports its 10-90% coverage and its CRPS (CRPSLoss,
Gaussian form) next to the absolute error of the seasonal naive forecast,
which is the CRPS of that point forecast.
"""

import statistics

import keras
import numpy as np

from dl_techniques.losses.core.demo import DemoRow
from dl_techniques.losses.forecasting.crps_loss import CRPSLoss
from dl_techniques.losses.forecasting.gaussian_nll import GaussianNLL
from dl_techniques.losses.forecasting.mase import MASELoss
from dl_techniques.losses.forecasting.mq_loss import MQLoss

DEMO_NAME = "forecasting: MQLoss"
GAUSSIAN_DEMO_NAME = "forecasting: GaussianNLL"
PLOT_FILE = "forecasting_mqloss.png"
QUANTILES = (0.1, 0.5, 0.9)
PERIOD = 12
HISTORY = 48
HORIZON = 12
SERIES_LENGTH = 1200
TEST_FRACTION = 0.2
EPOCHS = 20
GAUSSIAN_EPOCHS = 8
BATCH_SIZE = 32
SEED = 7


def run_demo(output_dir, progress):
    """Trains the quantile forecaster and returns its summary rows.

    Args:
        output_dir: ``pathlib.Path`` where ``forecasting_mqloss.png`` is
            written when matplotlib is installed.
        progress: A ``dl_techniques.losses.core.demo.Progress``; one step
            is reported per epoch.

    Returns:
        A list of ``DemoRow``: interval coverage, the MASE of the median
        forecast and the MASE of the seasonal naive forecast; then the
        interval coverage and the CRPS of the Gaussian head.
    """
    keras.utils.set_random_seed(SEED)
    series = make_seasonal_series(SERIES_LENGTH, PERIOD, seed=SEED)
    histories, targets = make_windows(series, HISTORY, HORIZON)
    train_count, first_test = _split_windows(len(series))
    train = _normalise(histories[:train_count], targets[:train_count])
    test_histories, test_targets = histories[first_test:], targets[first_test:]

    progress.step(f"training on {train_count} windows")
    model = _trained_model(MQLoss(quantiles=QUANTILES), len(QUANTILES), train, progress, EPOCHS)

    test = _normalise(test_histories, test_targets)
    scaled_forecast = np.asarray(
        model.predict(test["inputs"], batch_size=256, verbose=0), dtype="float64"
    )
    forecast = scaled_forecast * test["scale"][:, None, None] + test["level"][:, None, None]
    lower, median, upper = (forecast[..., index] for index in range(len(QUANTILES)))

    coverage = float(np.mean((test_targets >= lower) & (test_targets <= upper)))
    mase = MASELoss(seasonality=PERIOD)
    naive_forecast = test_histories[:, -PERIOD:][:, np.arange(HORIZON) % PERIOD]
    history_and_target = {"target": test_targets, "insample": test_histories}
    median_mase = float(keras.ops.convert_to_numpy(mase(history_and_target, median)))
    naive_mase = float(keras.ops.convert_to_numpy(mase(history_and_target, naive_forecast)))

    plot_note = _save_plot(
        output_dir / PLOT_FILE, test_histories[0], test_targets[0], lower[0], median[0], upper[0]
    )
    progress.step(plot_note)
    naive_mae = float(np.mean(np.abs(test_targets - naive_forecast)))
    gaussian_rows = _gaussian_head_rows(train, test, test_targets, naive_mae, progress)
    return [
        DemoRow(DEMO_NAME, "10-90% interval coverage (held-out)", coverage, "nominal 0.80"),
        DemoRow(
            DEMO_NAME,
            "MASE of the median forecast",
            median_mase,
            f"seasonal naive {naive_mase:.3f}; {plot_note}",
        ),
        DemoRow(
            DEMO_NAME,
            "MASE of the seasonal naive forecast",
            naive_mase,
            "in-sample scale, seasonality 12",
        ),
        *gaussian_rows,
    ]


def _gaussian_head_rows(train, test, test_targets, naive_mae, progress):
    """Trains the GaussianNLL head; returns its held-out coverage and CRPS rows."""
    model = _trained_model(GaussianNLL(), 2, train, progress, GAUSSIAN_EPOCHS)
    head = np.asarray(model.predict(test["inputs"], batch_size=256, verbose=0), dtype="float64")
    scale, level = test["scale"][:, None], test["level"][:, None]
    mu = head[..., 0] * scale + level
    sigma = (np.logaddexp(0.0, head[..., 1]) + 1e-6) * scale
    z_90 = statistics.NormalDist().inv_cdf(0.9)
    inside = np.abs(test_targets - mu) <= z_90 * sigma
    # The CRPS scales with the data: the normalised window's CRPS times its scale.
    per_window = CRPSLoss(form="gaussian", reduction=None)(test["targets"], head.astype("float32"))
    crps = float(np.mean(keras.ops.convert_to_numpy(per_window) * test["scale"]))
    return [
        DemoRow(
            GAUSSIAN_DEMO_NAME,
            "10-90% interval coverage (held-out)",
            float(np.mean(inside)),
            "nominal 0.80",
        ),
        DemoRow(
            GAUSSIAN_DEMO_NAME,
            "CRPS of the Gaussian forecast (held-out)",
            crps,
            f"seasonal naive MAE {naive_mae:.3f} (the CRPS of a point forecast)",
        ),
    ]


def make_seasonal_series(length, period, seed):
    """Returns a trend plus two harmonics of ``period`` plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    steps = np.arange(length, dtype="float64")
    angle = 2.0 * np.pi * steps / period
    return (
        10.0
        + 0.02 * steps
        + 3.0 * np.sin(angle)
        + 1.5 * np.cos(2.0 * angle + 0.5)
        + rng.normal(scale=0.5, size=length)
    )


def make_windows(series, history, horizon):
    """Returns every ``(history, horizon)`` window pair, stride 1."""
    count = len(series) - history - horizon + 1
    starts = np.arange(count)[:, None]
    histories = series[starts + np.arange(history)]
    targets = series[starts + history + np.arange(horizon)]
    return histories, targets


def _split_windows(series_length):
    """Returns ``(train_count, first_test)``: window indices of the two sets.

    Training windows end before the test region starts; test windows forecast
    only steps inside it (their histories may reach back into training data).
    """
    test_start = int(series_length * (1.0 - TEST_FRACTION))
    return test_start - HISTORY - HORIZON + 1, test_start - HISTORY


def _normalise(histories, targets):
    """Centres each window on its last season's mean and scales by its spread.

    The network then learns the seasonal shape and the trend step rather than
    the level, which keeps held-out windows (higher, by the trend) in range.
    """
    level = histories[:, -PERIOD:].mean(axis=1)
    scale = histories.std(axis=1) + 1e-6
    return {
        "inputs": ((histories - level[:, None]) / scale[:, None]).astype("float32"),
        "targets": ((targets - level[:, None]) / scale[:, None]).astype("float32"),
        "level": level,
        "scale": scale,
    }


def _trained_model(loss, outputs_per_step, train, progress, epochs):
    """An MLP with ``outputs_per_step`` outputs per forecast step, fitted with ``loss``."""
    model = keras.Sequential(
        [
            keras.Input(shape=(HISTORY,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(HORIZON * outputs_per_step),
            keras.layers.Reshape((HORIZON, outputs_per_step)),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3), loss=loss)
    model.fit(
        train["inputs"],
        train["targets"],
        epochs=epochs,
        batch_size=BATCH_SIZE,
        shuffle=True,
        verbose=0,
        callbacks=[_EpochProgress(progress, epochs, type(loss).__name__)],
    )
    return model


class _EpochProgress(keras.callbacks.Callback):
    def __init__(self, progress, epochs, loss_name):
        super().__init__()
        self._progress = progress
        self._epochs = epochs
        self._loss_name = loss_name

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss", float("nan"))
        self._progress.step(f"epoch {epoch + 1}/{self._epochs}, {self._loss_name} {loss:.4f}")


def _save_plot(path, history, target, lower, median, upper):
    """Plots one held-out window; returns a note saying whether it was written."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return "matplotlib not installed, plot skipped"
    # A bare Figure with the Agg canvas leaves pyplot's global state alone.
    figure = Figure(figsize=(8, 3.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    past = np.arange(-len(history), 0)
    future = np.arange(len(target))
    axes.plot(past, history, color="0.4", label="history")
    axes.plot(future, target, color="black", label="truth")
    axes.plot(future, median, color="tab:blue", label="median forecast")
    axes.fill_between(future, lower, upper, color="tab:blue", alpha=0.25, label="10-90% interval")
    axes.axvline(-0.5, color="0.7", linestyle=":")
    axes.set_xlabel("step relative to forecast origin")
    axes.set_title("MQLoss quantile forecast on a held-out window")
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return f"plot {path.name}"
