"""Loss algebra: weighted sums of Keras losses that are Keras losses themselves.

After ``import dl_techniques.losses`` every ``keras.losses.Loss`` (the
library's, Keras' own and any other subclass) supports

```
a * L1 + b * L2      L1 + L2      L1 - L2      L / n      -L
```

each returning a :class:`CompositeLoss`. Numbers must be finite reals; a sum
of composites is one flat composite of all their terms.
"""

import numbers
from collections.abc import Sequence
from typing import Any

import keras

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.serialization import loss_instance, register_serializable

Term = tuple[float, keras.losses.Loss]


@register_serializable
class CompositeLoss(keras.losses.Loss):
    """A weighted sum of losses, itself a Keras loss.

    ```
    loss(y_true, y_pred, sample_weight) = sum_k w_k L_k(y_true, y_pred, sample_weight)
    ```

    Every term computes, weights and reduces itself as it does alone: a
    per-sample loss applies ``sample_weight`` and its own reduction, a
    batch-level loss applies ``sample_weight`` inside its statistic (or
    rejects it). So the composite's value is exactly the weighted sum of the
    values its terms give on the same call. Usually built with the
    operators (see the module docstring) rather than by hand; a composite
    may hold composites.

    :meth:`components` returns each weighted term by name with the total, and
    :meth:`component_names` their names, the protocol that
    ``dl_techniques.losses.core.component_model.ComponentModel`` logs as
    metrics during ``fit``.

    Args:
        terms: ``(weight, loss)`` pairs: finite real weights and
            ``keras.losses.Loss`` instances (a loss's ``get_config`` dict as
            saved by Keras is accepted too).
        name: Name of the composite. Defaults to ``"composite_loss"``.

    Example:

    ```python
    loss = 0.7 * keras.losses.MeanAbsoluteError() + 0.3 * keras.losses.MeanSquaredError()
    loss([[0.0, 1.0]], [[1.0, 1.0]])  # 0.7 * 0.5 + 0.3 * 0.5 = 0.5
    ```
    """

    def __init__(self, terms: Sequence[Any], name: str = "composite_loss") -> None:
        parsed = [_parse_term(term) for term in terms]
        if not parsed:
            raise ValueError("CompositeLoss: `terms` must hold at least one (weight, loss) pair.")
        super().__init__(name=name, reduction=None)
        self.terms: list[Term] = parsed

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any | None = None) -> Any:
        return self.components(y_true, y_pred, sample_weight)["total"]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self(y_true, y_pred)

    def components(
        self, y_true: Any, y_pred: Any, sample_weight: Any | None = None
    ) -> dict[str, Any]:
        """Returns ``{name: w_k L_k, ..., "total": sum}``, one entry per term.

        Names are the terms' loss names (a nested composite is one term, its
        total), made unique with ``_2``, ``_3``, ...
        """
        values = {}
        with keras.name_scope(self.name):
            for name, (weight, loss) in zip(self._term_names(), self.terms, strict=True):
                values[name] = weight * loss(y_true, y_pred, sample_weight=sample_weight)
        total = None
        for value in values.values():
            total = value if total is None else total + value
        return {**values, "total": total}

    def component_names(self) -> list[str]:
        """The keys of :meth:`components`, in order, ``"total"`` last."""
        return [*self._term_names(), "total"]

    def _term_names(self) -> list[str]:
        names: list[str] = []
        for _, loss in self.terms:
            base = loss.name or type(loss).__name__
            name, count = base, 1
            while name in names or name == "total":
                count += 1
                name = f"{base}_{count}"
            names.append(name)
        return names

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "terms": [
                {"weight": weight, "loss": keras.saving.serialize_keras_object(loss)}
                for weight, loss in self.terms
            ],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "CompositeLoss":
        return cls(**config)


def _parse_term(term: Any) -> Term:
    if isinstance(term, dict) and set(term) == {"weight", "loss"}:
        weight, loss = term["weight"], term["loss"]
    elif isinstance(term, (tuple, list)) and len(term) == 2:
        weight, loss = term
    else:
        raise ValueError(f"CompositeLoss: each term must be a (weight, loss) pair; got {term!r}.")
    loss = loss_instance("CompositeLoss", "terms", loss)
    _check_weight(weight)
    return float(weight), loss


def _check_weight(weight: Any) -> None:
    if not validation.is_real_number(weight):
        raise ValueError(
            f"CompositeLoss: a loss weight must be a finite real number; got {weight!r}."
        )


def _terms_of(loss: keras.losses.Loss, factor: float = 1.0) -> list[Term]:
    if isinstance(loss, CompositeLoss):
        return [(factor * weight, term) for weight, term in loss.terms]
    return [(factor, loss)]


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _add(left: keras.losses.Loss, right: Any) -> Any:
    if not isinstance(right, keras.losses.Loss):
        return NotImplemented
    return CompositeLoss([*_terms_of(left), *_terms_of(right)])


def _radd(right: keras.losses.Loss, left: Any) -> Any:
    if _is_number(left) and left == 0:
        # The start of Python's sum() over losses.
        return CompositeLoss(_terms_of(right))
    if not isinstance(left, keras.losses.Loss):
        return NotImplemented
    return CompositeLoss([*_terms_of(left), *_terms_of(right)])


def _subtract(left: keras.losses.Loss, right: Any) -> Any:
    if not isinstance(right, keras.losses.Loss):
        return NotImplemented
    return CompositeLoss([*_terms_of(left), *_terms_of(right, -1.0)])


def _multiply(loss: keras.losses.Loss, factor: Any) -> Any:
    if not _is_number(factor):
        return NotImplemented
    _check_weight(factor)
    return CompositeLoss(_terms_of(loss, float(factor)))


def _divide(loss: keras.losses.Loss, divisor: Any) -> Any:
    if not _is_number(divisor):
        return NotImplemented
    _check_weight(divisor)
    if divisor == 0:
        raise ZeroDivisionError(f"CompositeLoss: cannot divide the loss {loss.name!r} by 0.")
    return CompositeLoss(_terms_of(loss, 1.0 / float(divisor)))


def _negate(loss: keras.losses.Loss) -> Any:
    return CompositeLoss(_terms_of(loss, -1.0))


_OPERATORS = {
    "__add__": _add,
    "__radd__": _radd,
    "__sub__": _subtract,
    "__mul__": _multiply,
    "__rmul__": _multiply,
    "__truediv__": _divide,
    "__neg__": _negate,
}


def install_operators() -> None:
    """Gives ``keras.losses.Loss`` the operators of the module docstring.

    An operator Keras defines itself is left alone. Called by
    ``import dl_techniques.losses``; calling it again changes nothing.
    """
    for attribute, function in _OPERATORS.items():
        if attribute not in vars(keras.losses.Loss):
            setattr(keras.losses.Loss, attribute, function)
