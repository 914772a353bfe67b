"""The x axis of each kind of loss, with its default range and its reference curves."""

import dataclasses
from collections.abc import Callable

import numpy as np


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
