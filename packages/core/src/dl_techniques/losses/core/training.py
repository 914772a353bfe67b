"""Optimizer steps for custom train steps, on every Keras backend.

A model trained with several optimizers (a GAN's generator and critic, say)
writes its own ``train_step``, and updating one sub-model there means taking
gradients, which Keras has no op for: tensorflow records a
``tf.GradientTape``, torch runs autograd, and Keras' jax trainer calls the
step statelessly under ``jax.jit``, threading every variable's value through
it. :func:`optimizer_step` is the one helper that hides those mechanics, so
that such a ``train_step`` is written once with ``keras.ops``:

```python
def train_step(self, *args):
    state, data = split_train_step_args(self, args)
    for _ in range(self.critic_steps):
        critic_loss, _ = optimizer_step(
            lambda: (self.critic_loss(data), None),
            self.critic.trainable_variables, self.critic_optimizer, state,
        )
    generator_loss, _ = optimizer_step(
        lambda: (self.generator_loss(data), None),
        self.generator.trainable_variables, self.generator_optimizer, state,
    )
    return finish_train_step(state, lambda: self.update_metrics(critic_loss, generator_loss))
```

On jax, ``state`` is a :class:`StatelessState` holding the values Keras'
trainer passes in; everywhere else it is ``None`` and the variables are
updated in place. Keras' jax trainer threads only ``model.optimizer.variables``,
so a model with several optimizers compiles with one optimizer whose
``variables`` lists each optimizer's variables.
"""

from collections.abc import Callable, Sequence
from typing import Any

import keras

LossFn = Callable[[], tuple[Any, Any]]


class StatelessState:
    """A model's variable values inside Keras' stateless (jax) train step.

    Keras' jax trainer calls ``train_step(state, data)`` with ``state`` the
    values of ``model.trainable_variables``, ``model.non_trainable_variables``,
    ``model.optimizer.variables`` and ``model.metrics_variables``, and expects
    their new values back. This holds those values, in those four lists, while
    :func:`optimizer_step` and :func:`finish_train_step` update them.

    Args:
        model: The model being trained.
        state: The four sequences of values, in the order above.

    Attributes:
        trainable: The values of ``model.trainable_variables``.
        non_trainable: The values of ``model.non_trainable_variables``.
        optimizer: The values of ``model.optimizer.variables``.
        metrics: The values of ``model.metrics_variables``.

    Raises:
        ValueError: If ``state`` does not hold four sequences matching the
            model's variables.
    """

    def __init__(self, model: keras.Model, state: Sequence[Sequence[Any]]) -> None:
        optimizer = getattr(model, "optimizer", None)
        self._variables = (
            list(model.trainable_variables),
            list(model.non_trainable_variables),
            list(optimizer.variables) if optimizer is not None else [],
            list(model.metrics_variables),
        )
        if len(state) != len(self._variables):
            raise ValueError(
                f"StatelessState: `state` must hold {len(self._variables)} sequences of values "
                f"(trainable, non-trainable, optimizer, metrics); got {len(state)}."
            )
        self.trainable, self.non_trainable, self.optimizer, self.metrics = (
            list(values) for values in state
        )
        for name, variables, values in zip(
            ("trainable", "non-trainable", "optimizer", "metrics"),
            self._variables,
            self._groups(),
            strict=True,
        ):
            if len(values) != len(variables):
                raise ValueError(
                    f"StatelessState: {model.name!r} has {len(variables)} {name} variables but "
                    f"`state` holds {len(values)} values for them."
                )

    @property
    def values(self) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        """The current values, in the order Keras' jax trainer expects back."""
        return self._groups()

    def _groups(self) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        return self.trainable, self.non_trainable, self.optimizer, self.metrics

    def _positions(self, group: int, variables: Sequence[keras.Variable], what: str) -> list[int]:
        positions = {id(variable): index for index, variable in enumerate(self._variables[group])}
        missing = [variable.path for variable in variables if id(variable) not in positions]
        if missing:
            raise ValueError(
                f"optimizer_step: {what} {missing} are not among the model's variables that "
                "Keras' jax trainer threads through the train step."
            )
        return [positions[id(variable)] for variable in variables]

    def _mapping(self, trainable: list[Any] | None = None) -> list[tuple[keras.Variable, Any]]:
        groups = self._groups()
        if trainable is not None:
            groups = (trainable, *groups[1:])
        return [
            pair
            for variables, values in zip(self._variables, groups, strict=True)
            for pair in zip(variables, values, strict=True)
        ]

    def _collect(self, scope: keras.StatelessScope, first_group: int) -> None:
        for group in range(first_group, len(self._variables)):
            values = self._groups()[group]
            values[:] = [
                _current(scope, variable, value)
                for variable, value in zip(self._variables[group], values, strict=True)
            ]


def split_train_step_args(
    model: keras.Model, args: Sequence[Any]
) -> tuple[StatelessState | None, Any]:
    """Returns ``(state, data)`` from the arguments Keras passes to ``train_step``.

    Keras' jax trainer calls ``train_step(state, data)``; the tensorflow and
    torch trainers call ``train_step(data)``. ``state`` is a
    :class:`StatelessState` on jax and ``None`` elsewhere; pass it on to
    :func:`optimizer_step` and :func:`finish_train_step`.

    Args:
        model: The model whose ``train_step`` received ``args``.
        args: The positional arguments of ``train_step``.

    Returns:
        ``(state, data)``.
    """
    if keras.backend.backend() == "jax":
        state, data = args
        return StatelessState(model, state), data
    (data,) = args
    return None, data


def finish_train_step(state: StatelessState | None, logs_fn: Callable[[], Any]) -> Any:
    """Runs ``logs_fn`` and returns what Keras expects back from ``train_step``.

    ``logs_fn`` updates the model's metrics with ``update_state`` and returns
    the logs (usually ``{metric.name: metric.result()}``). Without ``state``
    it runs as is and its logs are returned. With a :class:`StatelessState`
    it runs in a ``keras.StatelessScope`` over the state's values, whose
    updates the state collects, and ``(logs, state.values)`` is returned.

    Args:
        state: The train step's state, from :func:`split_train_step_args`.
        logs_fn: Zero-argument callable updating the metrics and returning
            the logs.

    Returns:
        The logs, or ``(logs, state.values)`` with a state.
    """
    if state is None:
        return logs_fn()
    with keras.StatelessScope(state_mapping=state._mapping()) as scope:
        logs = logs_fn()
    state._collect(scope, first_group=1)
    return logs, state.values


def optimizer_step(
    loss_fn: LossFn,
    variables: Sequence[keras.Variable],
    optimizer: keras.optimizers.Optimizer,
    state: StatelessState | None = None,
) -> tuple[Any, Any]:
    """Takes one optimizer step on ``variables`` down the gradient of a loss.

    ```
    loss, aux = loss_fn()
    variables <- optimizer(variables, d scale_loss(loss) / d variables)
    ```

    ``loss_fn`` computes the loss from the variables' current values and
    returns ``(loss, aux)``, ``aux`` anything else it wants returned (another
    loss term, ``None``). Only ``variables`` are differentiated and updated;
    a variable the loss does not depend on gets a zero gradient. The loss is
    scaled by ``optimizer.scale_loss`` before it is differentiated (a
    ``LossScaleOptimizer``, a ``loss_scale_factor``), and ``optimizer.apply``
    unscales the gradients. Variables that ``loss_fn`` assigns (a
    ``SeedGenerator``, batch statistics) keep their new values. Per backend:

    - tensorflow: a ``tf.GradientTape`` around ``loss_fn``, then
      ``optimizer.apply`` (as ``optimizer.apply_gradients``).
    - torch: ``torch.autograd.grad`` of the loss with respect to the
      variables (no ``.grad`` is read or left behind), then ``optimizer.apply``
      under ``torch.no_grad()``. ``loss`` and ``aux`` come back detached.
    - jax: ``jax.value_and_grad`` of ``loss_fn`` run in a
      ``keras.StatelessScope`` mapping ``variables`` to the differentiated
      values, then ``optimizer.stateless_apply``. With ``state`` (inside
      Keras' jitted train step) every model variable is read from ``state``
      and ``state`` receives the new trainable, non-trainable and optimizer
      values; without it (eagerly) the variables and the optimizer's
      variables are assigned their new values.

    Args:
        loss_fn: Zero-argument callable returning ``(loss, aux)``, ``loss`` a
            scalar tensor.
        variables: The trainable variables to update, the ones ``optimizer``
            is (or will be) built on, in that order.
        optimizer: The optimizer of ``variables``. With ``state`` it must be
            built and its variables among ``model.optimizer.variables``.
        state: The :class:`StatelessState` of Keras' jax train step (from
            :func:`split_train_step_args`), updated in place; ``None``
            otherwise.

    Returns:
        ``(loss, aux)`` as ``loss_fn`` returned them (``loss`` unscaled).

    Raises:
        ValueError: If ``state`` is given on a backend other than jax, or
            ``variables`` or the optimizer's variables are not in it.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> dense = keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)
    >>> x = np.array([[1.0, 2.0]], "float32")
    >>> _ = dense(x)
    >>> def loss_fn():
    ...     return keras.ops.mean(dense(x) ** 2), None  # (x w)^2 = 9
    >>> sgd = keras.optimizers.SGD(0.125)
    >>> loss, _ = optimizer_step(loss_fn, dense.trainable_variables, sgd)
    >>> float(keras.ops.convert_to_numpy(loss))
    9.0
    >>> keras.ops.convert_to_numpy(dense.kernel)[:, 0]  # w - 0.125 * 2 (x w) x
    array([ 0.25, -0.5 ], dtype=float32)
    """
    backend = keras.backend.backend()
    variables = list(variables)
    if state is not None and backend != "jax":
        raise ValueError(
            f"optimizer_step: `state` is for Keras' stateless jax train step; on backend "
            f"{backend!r} pass state=None and the variables are updated in place."
        )
    if backend == "tensorflow":
        return _tensorflow_step(loss_fn, variables, optimizer)
    if backend == "jax":
        if state is None:
            return _jax_eager_step(loss_fn, variables, optimizer)
        return _jax_stateless_step(loss_fn, variables, optimizer, state)
    if backend == "torch":
        return _torch_step(loss_fn, variables, optimizer)
    raise ValueError(
        f"optimizer_step: backend {backend!r} is not supported; use tensorflow, jax or torch."
    )


def _current(scope: keras.StatelessScope, variable: keras.Variable, fallback: Any) -> Any:
    value = scope.get_current_value(variable)
    return fallback if value is None else value


def _zeros_for_none(gradients, variables):
    return [
        keras.ops.zeros_like(variable) if gradient is None else gradient
        for gradient, variable in zip(gradients, variables, strict=True)
    ]


def _tensorflow_step(loss_fn, variables, optimizer):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss, aux = loss_fn()
        scaled = optimizer.scale_loss(loss)
    gradients = tape.gradient(scaled, variables)
    optimizer.apply(_zeros_for_none(gradients, variables), variables)
    return loss, aux


def _torch_step(loss_fn, variables, optimizer):
    import torch

    parameters = [variable.value for variable in variables]
    with torch.enable_grad():
        loss, aux = loss_fn()
        scaled = optimizer.scale_loss(loss)
        gradients = [None] * len(parameters)
        if scaled.requires_grad and parameters:
            gradients = list(torch.autograd.grad(scaled, parameters, allow_unused=True))
    with torch.no_grad():
        optimizer.apply(_zeros_for_none(gradients, variables), variables)

    def detach(value):
        return value.detach() if isinstance(value, torch.Tensor) else value

    return detach(loss), keras.tree.map_structure(detach, aux)


class _RecordingScope(keras.StatelessScope):
    """A ``keras.StatelessScope`` that also remembers which variables were assigned."""

    def __init__(self, state_mapping):
        super().__init__(state_mapping=state_mapping)
        self.assigned: dict[int, keras.Variable] = {}

    def add_update(self, update):
        variable, _ = update
        self.assigned[id(variable)] = variable
        super().add_update(update)


def _jax_eager_step(loss_fn, variables, optimizer):
    import jax

    given = {id(variable) for variable in variables}
    assigned: list[keras.Variable] = []

    def objective(values):
        with _RecordingScope(list(zip(variables, values, strict=True))) as scope:
            loss, aux = loss_fn()
            scaled = optimizer.scale_loss(loss)
        assigned[:] = [v for key, v in scope.assigned.items() if key not in given]
        return scaled, (loss, aux, [scope.get_current_value(v) for v in assigned])

    values = [variable.value for variable in variables]
    (_, (loss, aux, updates)), gradients = jax.value_and_grad(objective, has_aux=True)(values)
    for variable, value in zip(assigned, updates, strict=True):
        variable.assign(value)
    # Keras' stateful `apply` on jax traces some optimizers' branches with
    # assignments inside (LossScaleOptimizer), so step statelessly and assign.
    if not optimizer.built:
        optimizer.build(variables)
    new_values, optimizer_values = optimizer.stateless_apply(
        [variable.value for variable in optimizer.variables], gradients, values
    )
    for variable, value in zip(
        [*variables, *optimizer.variables], [*new_values, *optimizer_values], strict=True
    ):
        variable.assign(value)
    return loss, aux


def _jax_stateless_step(loss_fn, variables, optimizer, state):
    import jax

    indices = state._positions(0, variables, "variables")
    optimizer_indices = state._positions(2, optimizer.variables, "the optimizer's variables")

    def objective(values):
        trainable = list(state.trainable)
        for index, value in zip(indices, values, strict=True):
            trainable[index] = value
        with keras.StatelessScope(state_mapping=state._mapping(trainable)) as scope:
            loss, aux = loss_fn()
            scaled = optimizer.scale_loss(loss)
        updated = [
            _current(scope, variable, value)
            for variable, value in zip(state._variables[1], state.non_trainable, strict=True)
        ]
        return scaled, (loss, aux, updated)

    values = [state.trainable[index] for index in indices]
    (_, (loss, aux, updated)), gradients = jax.value_and_grad(objective, has_aux=True)(values)
    optimizer_values = [state.optimizer[index] for index in optimizer_indices]
    new_values, optimizer_values = optimizer.stateless_apply(optimizer_values, gradients, values)
    for index, value in zip(indices, new_values, strict=True):
        state.trainable[index] = value
    for index, value in zip(optimizer_indices, optimizer_values, strict=True):
        state.optimizer[index] = value
    state.non_trainable[:] = updated
    return loss, aux
