"""Hyper-parameter and shape checks shared by the DINO and iBOT losses."""

import math
import numbers


def check_dimension(owner, argument, value):
    """Raises ``ValueError`` unless ``value`` is an integer >= 1."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"{owner}: `{argument}` must be an integer >= 1; got {argument}={value!r}."
        )


def check_momentum(owner, value):
    """Raises ``ValueError`` unless ``value`` is a number in ``[0, 1]``."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{owner}: `center_momentum` must be a number in [0, 1]; got center_momentum={value!r}."
        )


def check_positive(owner, argument, value):
    """Raises ``ValueError`` unless ``value`` is a finite number > 0."""
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"{owner}: `{argument}` must be a finite number > 0; got {argument}={value!r}."
        )


def static_shape(tensor):
    """Returns the static shape of ``tensor`` as a tuple (``None`` where unknown)."""
    return tuple(tensor.shape)
