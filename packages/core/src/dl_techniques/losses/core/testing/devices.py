"""Several devices on one CPU machine, for multi-device tests on TensorFlow."""

import functools
from typing import Any

__all__ = ["mirrored_cpu_strategy"]


@functools.cache
def mirrored_cpu_strategy(replicas: int) -> Any:
    """Returns this process' ``tf.distribute.MirroredStrategy`` over ``replicas`` logical CPUs.

    The first call splits the first physical CPU into ``replicas`` logical
    devices, so it must come before TensorFlow runs its first operation. The
    strategy is created once per process: strategies created one after
    another number their collective operations from the same start, and
    TensorFlow's runtime rejects a later strategy's collective that reuses an
    earlier one's number with another shape (several test scripts run in one
    process, see :mod:`dl_techniques.losses.core.testing.script_batch`).

    Args:
        replicas: The number of logical CPUs and replicas, at least 2.

    Raises:
        ValueError: If ``replicas`` is below 2.
        RuntimeError: From TensorFlow, if its devices already started with
            another layout.
    """
    import tensorflow as tf

    if replicas < 2:
        raise ValueError(f"mirrored_cpu_strategy: `replicas` must be at least 2, got {replicas}.")
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)],
    )
    return tf.distribute.MirroredStrategy([f"/cpu:{index}" for index in range(replicas)])
