"""The layer holding a DINO/iBOT teacher's centre and temperature."""

from typing import Any

import keras

from dl_techniques.losses.core import ops, validation
from dl_techniques.losses.core.distributed import all_mean
from dl_techniques.losses.core.numerics import holds_values, safe_divide, upcast_half
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class TeacherCenterLayer(keras.layers.Layer):
    """Teacher centre and temperature of DINO/iBOT, as non-trainable weights.

    The centre ``c`` (shape ``(1, K)``) is an exponential moving average of
    the mean teacher logits; the teacher temperature ``tau_t`` is a scalar
    variable, so a schedule set between steps reaches a compiled train step.
    Called on teacher logits ``t`` it returns the centred, sharpened teacher
    distribution:

    ```
    P_t = softmax((t - c) / tau_t)                     (call)
    c  <- m c + (1 - m) mean_rows(t)                   (update_center)
    ```

    Under ``tf.distribute`` and torch DDP the row mean is averaged across
    replicas, so every replica holds the same centre. ``DINOLoss`` and
    ``iBOTPatchLoss`` create one and expose it as ``loss.state``; a model that
    trains with the loss must track it as an attribute, so that the updates
    survive a JAX ``fit`` and the centre is saved in ``.keras`` files.

    Reference:
        Caron, M., et al. (2021). Emerging Properties in Self-Supervised
        Vision Transformers. ICCV.

    Args:
        out_dim: Positive int, the number of prototypes ``K``.
        center_momentum: Float in ``[0, 1]``, the EMA momentum ``m``.
            Defaults to 0.9.
        teacher_temp: Positive float, the initial teacher temperature.
            Defaults to 0.04.
        **kwargs: Standard ``keras.layers.Layer`` arguments (``name``, ...).

    Example:

    ```python
    state = TeacherCenterLayer(out_dim=4)
    teacher_logits = keras.ops.ones((6, 4))
    state.update_center(teacher_logits)   # centre 0.1 everywhere
    state.set_teacher_temp(0.07)
    probabilities = state(teacher_logits)  # (6, 4), rows sum to 1
    ```
    """

    def __init__(
        self,
        out_dim: int,
        center_momentum: float = 0.9,
        teacher_temp: float = 0.04,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        validation.check_positive_int(owner, "out_dim", out_dim)
        validation.check_interval(owner, "center_momentum", center_momentum, 0.0, 1.0)
        validation.check_positive(owner, "teacher_temp", teacher_temp)
        super().__init__(**kwargs)
        self.out_dim = int(out_dim)
        self.center_momentum = float(center_momentum)
        self.initial_teacher_temp = float(teacher_temp)
        self._untracked_trace_owner: str | None = None
        # Every replica assigns the same cross-replica value, so mirrored
        # copies stay equal when the first replica's update is kept.
        self.center = self.add_weight(
            shape=(1, self.out_dim),
            initializer="zeros",
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
            name="center",
        )
        self.teacher_temp = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_teacher_temp),
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
            name="teacher_temp",
        )
        self.built = True

    def call(self, inputs: Any) -> Any:
        return self.teacher_probabilities(inputs)

    def teacher_probabilities(self, teacher_logits: Any) -> Any:
        """Returns ``softmax((teacher_logits - c) / tau_t)`` over the last axis."""
        teacher_logits = upcast_half(teacher_logits)
        center = keras.ops.cast(self.center, teacher_logits.dtype)
        temperature = keras.ops.cast(self.teacher_temp, teacher_logits.dtype)
        return ops.softmax((teacher_logits - center) / temperature, axis=-1)

    def set_teacher_temp(self, value: float) -> None:
        """Sets the teacher temperature used from the next step on.

        Raises:
            ValueError: If ``value`` is not positive.
            RuntimeError: If a loss already baked the current temperature
                into a compiled step because the model does not track this
                layer (JAX), so the change would be silently ignored.
        """
        validation.check_positive(type(self).__name__, "teacher_temp", value)
        if self._untracked_trace_owner is not None:
            raise RuntimeError(
                f"{self._untracked_trace_owner}: set_teacher_temp({value!r}) would be "
                "ignored: the loss was compiled into a jit step while its `loss.state` "
                "was not tracked by the model, so the temperature is a constant there. "
                "Track it in the model (e.g. `self.teacher_center = loss.state` in a "
                "keras.Model subclass) before compiling."
            )
        self.teacher_temp.assign(float(value))

    @validation.checks_values
    def update_center(
        self,
        teacher_logits: Any,
        mask: Any = None,
        owner: str | None = None,
        argument: str = "teacher_logits",
    ) -> None:
        """Moves the centre towards the mean of the (masked) teacher rows.

        ``c <- m c + (1 - m) mean``, the mean over every replica's rows of
        ``teacher_logits`` (all axes but the last), or over the rows where
        ``mask`` is true. When no row is masked anywhere the centre is kept.

        A batch with a NaN or an infinity would leave a non-finite centre,
        which every later teacher distribution would inherit. So the centre
        is kept whenever the new value is not finite, on every replica alike
        (the test runs after the cross-replica mean), in eager and in
        compiled steps. On the first eager call of this layer (every eager
        call with ``DL_LOSSES_VALIDATE=always``) a non-finite input also
        raises ``ValueError``; in a compiled step (``jax.jit``,
        ``tf.function``, ``torch.compile``) and in later eager calls the
        update is skipped without an error, so no step waits on a
        device-to-host read.

        Args:
            teacher_logits: Float tensor ``(..., K)``.
            mask: Optional boolean or 0/1 tensor of the leading shape of
                ``teacher_logits``; nonzero marks a row to average.
            owner: Name used in error messages; the layer's class by default.
            argument: Name of ``teacher_logits`` in error messages.

        Raises:
            ValueError: On a checked eager call, when ``teacher_logits`` holds
                NaN or an infinity, or ``mask`` values other than 0 and 1.
                The centre is then left unchanged.
            RuntimeError: When called inside a JAX trace on a layer that the
                model does not track, where the update would be dropped.
        """
        owner = owner or type(self).__name__
        self.check_tracked(teacher_logits, owner, "update_center")
        teacher_logits = keras.ops.stop_gradient(upcast_half(teacher_logits))
        validation.check_finite(
            owner, argument, teacher_logits, consequence="The centre was left unchanged."
        )
        rows = keras.ops.reshape(teacher_logits, (-1, self.out_dim))
        kept = keras.ops.cast(self.center, rows.dtype)
        if mask is None:
            batch_center = all_mean(keras.ops.mean(rows, axis=0, keepdims=True))
            new_center = self._moved(batch_center, rows.dtype)
        else:
            validation.check_binary(owner, "mask", mask, what="mask values")
            weights = keras.ops.reshape(
                keras.ops.cast(keras.ops.cast(mask, "bool"), rows.dtype), (-1, 1)
            )
            # Sums and counts are averaged separately, so the result is the
            # mean over all masked rows even when replicas mask different counts.
            masked_sum = all_mean(keras.ops.sum(rows * weights, axis=0, keepdims=True))
            masked_count = all_mean(keras.ops.sum(weights))
            has_rows = masked_count > 0
            batch_center = safe_divide(masked_sum, masked_count)
            new_center = keras.ops.where(has_rows, self._moved(batch_center, rows.dtype), kept)
        # One flag for the whole centre: a partly updated centre would mix
        # two steps. After all_mean the flag is the same on every replica.
        finite = keras.ops.all(keras.ops.isfinite(new_center))
        new_center = keras.ops.where(finite, new_center, kept)
        self.center.assign(keras.ops.cast(new_center, self.center.dtype))

    def check_tracked(self, tensor: Any, owner: str, action: str) -> None:
        """Raises when ``tensor`` is traced under JAX but this layer is not tracked.

        Inside a jit-compiled step a tracked variable's value is itself a
        tracer; an untracked one still holds its concrete value, and an
        assignment to it would be dropped from the compiled step.
        """
        if keras.backend.backend() != "jax" or holds_values(tensor):
            return
        if holds_values(self.center.value):
            raise RuntimeError(
                f"{owner}: {action} ran inside a jit-compiled step, but the model does "
                "not track `loss.state`, so the centre would never change. Assign it to "
                "the model (e.g. `self.teacher_center = loss.state` in a keras.Model "
                "subclass) so that fit threads its variables through the step."
            )

    def note_use(self, tensor: Any, owner: str) -> None:
        """Records that ``owner`` read the temperature into an untracked jit trace."""
        if keras.backend.backend() != "jax" or holds_values(tensor):
            return
        if holds_values(self.teacher_temp.value):
            self._untracked_trace_owner = owner

    def _moved(self, batch_center, dtype):
        momentum = self.center_momentum
        return momentum * keras.ops.cast(self.center, dtype) + (1.0 - momentum) * batch_center

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "out_dim": self.out_dim,
            "center_momentum": self.center_momentum,
            "teacher_temp": self.initial_teacher_temp,
        }
