"""What a conformance case declares, and what a check reports."""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

SAMPLE_WEIGHT_MODES = ("per_sample", "batch", "rejected")


@dataclasses.dataclass
class LossCase:
    """One loss configuration and the inputs the conformance checks run it on.

    Every leaf of ``y_true`` and ``y_pred`` has the batch as its first axis.
    Floating leaves are stored as float32 so that every backend sees the same
    numbers.

    Attributes:
        loss_class: The ``keras.losses.Loss`` subclass under test.
        init_kwargs: Constructor arguments; prefer non-default values, so that
            a ``get_config`` that drops or mis-reports one changes the value.
        y_true: Targets, a numpy array or a dict of arrays.
        y_pred: Predictions, a numpy array (or a dict/tuple of arrays for
            losses whose prediction is a structure). Choose values where the
            loss and its gradient are non-zero.
        invalid_kwargs: Dicts of constructor arguments, each merged into
            ``init_kwargs``, that must make the constructor raise a
            ``ValueError`` whose message names the class.
        sample_weight: How the loss treats ``sample_weight``:
            ``"per_sample"``: ``call`` returns one value per sample, shape
            ``(batch,)``, and Keras applies the weights and the reduction;
            ``"batch"``: the loss is batch-level and weights inside, so an
            integer weight ``k`` on a row equals repeating the row ``k`` times
            (weight 0 equals dropping it); ``"rejected"``: passing any
            ``sample_weight`` raises ``ValueError``.
        case_id: Name of the case in reports; the class name by default.
        rtol: Relative tolerance of float32 value comparisons.
        atol: Absolute tolerance of value comparisons.
        half_precision_rtol: Relative tolerance between the float16/bfloat16
            value and the float32 value.
        build_model: Optional ``callable(case) -> (model, x)`` returning an
            uncompiled Keras model with trainable weights whose ``model(x)``
            reproduces ``y_pred``, for predictions a plain identity model
            cannot produce. For the fresh-process check the model must reload
            with nothing but ``keras`` and ``dl_techniques.losses`` imported,
            so build it from built-in Keras layers.
    """

    loss_class: type
    init_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    y_true: Any = None
    y_pred: Any = None
    invalid_kwargs: Sequence[Mapping[str, Any]] = ()
    sample_weight: str = "per_sample"
    case_id: str | None = None
    rtol: float = 1e-5
    atol: float = 1e-6
    half_precision_rtol: float = 5e-2
    build_model: Callable[["LossCase"], tuple[Any, Any]] | None = None

    def __post_init__(self):
        name = getattr(self.loss_class, "__name__", repr(self.loss_class))
        if not isinstance(self.loss_class, type):
            raise ValueError(f"LossCase: loss_class must be a class, got {self.loss_class!r}.")
        if self.y_true is None or self.y_pred is None:
            raise ValueError(
                f"LossCase for {name}: y_true and y_pred are required "
                "(pass zeros for a y_true the loss ignores)."
            )
        if self.sample_weight not in SAMPLE_WEIGHT_MODES:
            raise ValueError(
                f"LossCase for {name}: sample_weight must be one of "
                f"{SAMPLE_WEIGHT_MODES}, got {self.sample_weight!r}."
            )
        self.init_kwargs = dict(self.init_kwargs)
        self.invalid_kwargs = tuple(dict(kwargs) for kwargs in self.invalid_kwargs)
        self.y_true = keras.tree.map_structure(_as_case_array, self.y_true)
        self.y_pred = keras.tree.map_structure(_as_case_array, self.y_pred)
        if self.case_id is None:
            self.case_id = name

    def make_loss(self):
        """Returns a new loss built from ``init_kwargs``."""
        return self.loss_class(**self.init_kwargs)

    @property
    def batch_size(self):
        """The length of the first axis of the predictions."""
        return int(np.shape(keras.tree.flatten(self.y_pred)[0])[0])


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one case.

    Attributes:
        check: The check's name, e.g. ``"config_roundtrip"``.
        case_id: The case's ``case_id``.
        passed: Whether the check passed.
        message: What was verified when it passed; why it failed otherwise,
            the first line being a one-line summary.
    """

    check: str
    case_id: str
    passed: bool
    message: str


def _as_case_array(leaf):
    if isinstance(leaf, (np.ndarray, list, float, int)):
        array = np.asarray(leaf)
        if np.issubdtype(array.dtype, np.floating):
            return array.astype(np.float32)
        return array
    return leaf
