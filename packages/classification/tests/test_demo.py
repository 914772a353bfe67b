"""The classification entry of `dl-losses demo`."""

import numpy as np
import pytest

from dl_techniques.losses.classification import demo
from dl_techniques.losses.core.demo import Progress


def test_f1_and_recall_match_a_hand_count():
    labels = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    predicted = np.array([True, True, False, True, False, False])

    f1, recall = demo._f1_and_recall(labels, predicted)

    # TP = 2, FN = 1, FP = 1: precision 2/3, recall 2/3, F1 2/3.
    assert recall == pytest.approx(2 / 3)
    assert f1 == pytest.approx(2 / 3)


def test_expected_calibration_error_weights_bins_by_their_share():
    probabilities = np.array([0.05, 0.05, 0.95, 0.95, 0.55, 0.55, 0.55, 0.55])
    labels = np.array([0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0])

    error, curve = demo._expected_calibration_error(labels, probabilities)

    # bin 0: |0 - 0.05| * 2/8; bin 9: |0.5 - 0.95| * 2/8; bin 5: |1 - 0.55| * 4/8.
    assert error == pytest.approx(0.05 * 0.25 + 0.45 * 0.25 + 0.45 * 0.5)
    assert curve == [(0.05, 0.0), (0.55, 1.0), (0.95, 0.5)]


TINY_SETTINGS = demo.DemoSettings(
    imbalanced_samples=1200,
    imbalanced_epochs=3,
    calibration_train_samples=256,
    calibration_test_samples=1000,
    calibration_epochs=3,
)


def test_demo_reports_f1_recall_calibration_and_writes_the_diagram(tmp_path):
    rows = demo.run_demo(tmp_path, Progress(total=1), TINY_SETTINGS)

    metrics = {(row.demo.split(": ", 1)[1], row.metric): row.value for row in rows}
    for loss in ("binary cross-entropy", "F1Loss", "FBetaLoss(beta=2)"):
        assert 0.0 <= metrics[(loss, "held-out F1 (imbalanced 1:20)")] <= 1.0
        assert 0.0 <= metrics[(loss, "held-out recall (imbalanced 1:20)")] <= 1.0
    for loss in ("binary cross-entropy", "CombinedCalibrationLoss"):
        assert 0.0 <= metrics[(loss, "held-out expected calibration error")] <= 1.0
        assert 0.0 <= metrics[(loss, "held-out Brier score")] <= 1.0
    assert len(rows) == 10
    assert (tmp_path / "classification_reliability.png").stat().st_size > 0
