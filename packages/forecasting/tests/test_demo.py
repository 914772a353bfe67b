import io
import math

from dl_techniques.losses.core.demo import DemoRow, Progress
from dl_techniques.losses.forecasting.demo import GAUSSIAN_DEMO_NAME, PLOT_FILE, run_demo


def test_demo_rows_coverage_plot_and_median_beats_seasonal_naive(tmp_path):
    stream = io.StringIO()
    rows = run_demo(tmp_path, Progress(stream=stream))

    by_metric = {row.metric: row for row in rows if row.demo != GAUSSIAN_DEMO_NAME}
    assert all(isinstance(row, DemoRow) and math.isfinite(row.value) for row in rows)
    coverage = by_metric["10-90% interval coverage (held-out)"]
    assert 0.0 <= coverage.value <= 1.0
    assert coverage.reference == "nominal 0.80"
    # A trained quantile forecaster covers far more than a collapsed interval would.
    assert coverage.value > 0.5
    median = by_metric["MASE of the median forecast"].value
    naive = by_metric["MASE of the seasonal naive forecast"].value
    assert median < naive
    assert (tmp_path / PLOT_FILE).stat().st_size > 0
    gaussian = {row.metric: row for row in rows if row.demo == GAUSSIAN_DEMO_NAME}
    assert gaussian["10-90% interval coverage (held-out)"].value > 0.5
    # A calibrated Gaussian scores a lower CRPS than the naive point forecast's absolute error.
    naive_mae = float(gaussian["CRPS of the Gaussian forecast (held-out)"].reference.split()[3])
    assert 0.0 < gaussian["CRPS of the Gaussian forecast (held-out)"].value < naive_mae
    assert "epoch 1/" in stream.getvalue()
