"""The classification family's entry for ``dl-losses demo``.

Two experiments on generated data:

1. Imbalanced detection (about 1 positive in 21): the same small network
   trained with binary cross-entropy, ``F1Loss`` and ``FBetaLoss(beta=2)``;
   held-out F1 and recall at the 0.5 threshold.
2. Calibration: a network on a small, noisy binary problem trained with
   binary cross-entropy and with ``CombinedCalibrationLoss``; held-out expected
   calibration error and Brier score, and a reliability diagram.
"""

import dataclasses

import keras
import numpy as np

from dl_techniques.losses.core.demo import DemoRow

_FEATURES = 8
_BINS = 10


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """How much data and training each experiment gets.

    Attributes:
        imbalanced_samples: Generated samples of the imbalanced experiment
            (two thirds train, one third held out).
        imbalanced_epochs: Training epochs per loss there.
        calibration_train_samples: Training samples of the calibration
            experiment.
        calibration_test_samples: Its held-out samples.
        calibration_epochs: Training epochs per loss there.
    """

    imbalanced_samples: int = 6000
    imbalanced_epochs: int = 30
    calibration_train_samples: int = 1000
    calibration_test_samples: int = 6000
    calibration_epochs: int = 50


def run_demo(output_dir, progress, settings=None):
    """Runs both experiments and returns their rows for the summary table.

    Args:
        output_dir: Folder for the reliability diagram.
        progress: The ``Progress`` display of ``dl-losses demo``.
        settings: A ``DemoSettings``; the defaults when None. Tests pass
            a tiny one.
    """
    settings = settings or DemoSettings()
    from dl_techniques.losses.classification.combined_calibration_loss import (
        CombinedCalibrationLoss,
    )
    from dl_techniques.losses.classification.f1_loss import F1Loss
    from dl_techniques.losses.classification.fbeta_loss import FBetaLoss

    rows = []
    train, test = _imbalanced_data(np.random.default_rng(0), count=settings.imbalanced_samples)
    progress.step(
        f"imbalanced set: {int(train[1].sum())} positives of {len(train[1])} training samples"
    )
    for label, loss in (
        ("binary cross-entropy", keras.losses.BinaryCrossentropy()),
        ("F1Loss", F1Loss()),
        ("FBetaLoss(beta=2)", FBetaLoss(beta=2.0)),
    ):
        progress.step(f"imbalanced: training with {label}")
        keras.utils.set_random_seed(1)
        model = _classifier(hidden=32)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
        model.fit(
            *train, batch_size=512, epochs=settings.imbalanced_epochs, verbose=0, shuffle=True
        )
        predicted = _predict(model, test[0]) >= 0.5
        f1, recall = _f1_and_recall(test[1], predicted)
        rows.append(
            DemoRow(
                f"classification: {label}", "held-out F1 (imbalanced 1:20)", f1, "higher is better"
            )
        )
        rows.append(
            DemoRow(
                f"classification: {label}",
                "held-out recall (imbalanced 1:20)",
                recall,
                "higher is better",
            )
        )

    train, test = _noisy_calibration_data(
        np.random.default_rng(1),
        train_count=settings.calibration_train_samples,
        test_count=settings.calibration_test_samples,
    )
    curves = {}
    for label, loss in (
        ("binary cross-entropy", keras.losses.BinaryCrossentropy()),
        ("CombinedCalibrationLoss", CombinedCalibrationLoss(alpha=0.5)),
    ):
        progress.step(f"calibration: training with {label}")
        keras.utils.set_random_seed(2)
        model = _classifier(hidden=64)
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss)
        model.fit(
            *train, batch_size=128, epochs=settings.calibration_epochs, verbose=0, shuffle=True
        )
        probabilities = _predict(model, test[0])
        ece, curve = _expected_calibration_error(test[1], probabilities)
        brier = float(np.mean((test[1] - probabilities) ** 2))
        curves[label] = curve
        rows.append(
            DemoRow(
                f"classification: {label}",
                "held-out expected calibration error",
                ece,
                "lower is better",
            )
        )
        rows.append(
            DemoRow(f"classification: {label}", "held-out Brier score", brier, "lower is better")
        )
    plot = _reliability_diagram(output_dir, curves)
    progress.step(f"plot {plot}" if plot else "matplotlib not installed: no plot")
    return rows


def _classifier(hidden):
    return keras.Sequential(
        [
            keras.Input((_FEATURES,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


def _predict(model, features):
    return np.asarray(model.predict(features, batch_size=4096, verbose=0), dtype="float64")[:, 0]


def _imbalanced_data(rng, count=6000, positive_rate=1 / 21):
    """Two overlapping Gaussian classes, one positive in about 21 samples."""
    labels = (rng.random(count) < positive_rate).astype("float32")
    shift = np.zeros(_FEATURES)
    shift[:3] = 1.0
    features = rng.normal(size=(count, _FEATURES)) + labels[:, None] * shift
    split = count * 2 // 3
    features = features.astype("float32")
    return (features[:split], labels[:split, None]), (features[split:], labels[split:])


def _noisy_calibration_data(rng, train_count=1000, test_count=6000):
    """Labels drawn from a known logistic probability, so a perfect model is calibrated."""
    count = train_count + test_count
    features = rng.normal(size=(count, _FEATURES)).astype("float32")
    weights = rng.normal(size=_FEATURES) / np.sqrt(_FEATURES) * 1.5
    probabilities = 1.0 / (1.0 + np.exp(-(features @ weights)))
    labels = (rng.random(count) < probabilities).astype("float32")
    return (
        (features[:train_count], labels[:train_count, None]),
        (features[train_count:], labels[train_count:]),
    )


def _f1_and_recall(labels, predicted):
    positives = labels > 0.5
    true_positives = float(np.sum(positives & predicted))
    recall = true_positives / max(float(np.sum(positives)), 1.0)
    precision = true_positives / max(float(np.sum(predicted)), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return f1, recall


def _expected_calibration_error(labels, probabilities):
    """ECE over ten equal-width bins of the predicted positive probability.

    ``sum_b (n_b / n) |mean_b(y) - mean_b(p)|``; also returns the per-bin
    (mean probability, observed frequency) pairs of the reliability diagram.
    """
    edges = np.linspace(0.0, 1.0, _BINS + 1)
    bins = np.clip(np.digitize(probabilities, edges[1:-1]), 0, _BINS - 1)
    error, curve = 0.0, []
    for index in range(_BINS):
        members = bins == index
        if not np.any(members):
            continue
        mean_probability = float(np.mean(probabilities[members]))
        frequency = float(np.mean(labels[members]))
        error += np.mean(members) * abs(frequency - mean_probability)
        curve.append((mean_probability, frequency))
    return float(error), curve


def _reliability_diagram(output_dir, curves):
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return None
    figure, axes = pyplot.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    for label, curve in curves.items():
        predicted, observed = zip(*curve, strict=True)
        axes.plot(predicted, observed, marker="o", label=label)
    axes.set_xlabel("mean predicted probability (bin)")
    axes.set_ylabel("observed frequency of the positive class")
    axes.set_title("Reliability diagram, held-out data")
    axes.legend(loc="upper left")
    path = output_dir / "classification_reliability.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path.name
