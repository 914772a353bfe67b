"""Cross-replica collectives for losses that depend on the whole batch.

Contrastive losses, DINO's centre and batch statistics need the global batch.
What a loss sees of it depends on the engine:

- jax, ``keras.distribution.DataParallel``: the train step is one jit-compiled
  program over globally sharded arrays, so the loss already sees the global
  batch and XLA inserts the collectives. The helpers are the identity and
  ``replica_count()`` is 1. (Code running under ``jax.pmap`` or ``shard_map``
  with a named axis is not detected; Keras does not train that way.)
- tensorflow, ``tf.distribute`` (``MirroredStrategy``): the train step runs once
  per replica on that replica's slice. Inside the replica context the helpers
  use ``ReplicaContext.all_gather`` and ``ReplicaContext.all_reduce(MEAN)``; in
  the cross-replica or default context they are the identity.
- torch, ``torch.distributed`` (DDP): every process holds its slice. When the
  default process group is initialised with more than one process, the helpers
  use ``torch.distributed.nn.functional.all_gather`` / ``all_reduce``, which
  carry gradients; otherwise they are the identity.

How to write a loss so that N replicas give the single-device result:
the gradient of ``all_gather`` (resp. ``all_mean``) sends each replica the
cross-replica sum (resp. mean) of the upstream gradients, so together they
differentiate the sum of the per-replica losses. Keras under ``tf.distribute``
divides a mean-reduced loss by the replica count and sums the variable
gradients over replicas; DDP averages them. Both therefore optimise the mean
over replicas of the per-replica loss values, which equals the single-device
loss when ``call`` returns one value per *local* sample (shape
``(local_batch,)``), with batch statistics taken from ``all_mean`` and other
samples reached through ``all_gather``: the local means of equal slices
average to the global mean, and ``sample_weight`` keeps working. Under
``tf.distribute`` do not return a scalar or use ``reduction="sum"``: Keras
skips its replica scaling for those, which multiplies the gradients by the
replica count. Slices must have equal shapes on every replica
(``torch.distributed`` requires it, and ``all_mean`` of per-replica means is
the global mean only then).
"""

import contextlib
import warnings

import keras


def replica_count():
    """Returns how many replica slices make up the batch this code sees.

    It is the number of slices ``all_gather`` concatenates: the number of
    replicas in sync inside a ``tf.distribute`` replica context, the world size
    of an initialised ``torch.distributed`` process group, and 1 otherwise,
    including under ``keras.distribution`` on jax, where the loss sees the
    global batch.

    Returns:
        A Python ``int`` >= 1.

    Example:

    >>> replica_count()
    1
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        context = _tensorflow_replica_context()
        return 1 if context is None else int(context.num_replicas_in_sync)
    if backend == "torch":
        return _torch_world_size()
    return 1


def scale_for_replicas(value):
    """Divides a batch-level loss by the replica count under ``tf.distribute``.

    ``MirroredStrategy`` sums the replicas' gradients, so Keras divides every
    mean-reduced loss by the number of replicas in sync; a loss that reduces
    itself does the same to train as one device does. On jax
    (``keras.distribution``, one global batch) and torch DDP (gradients
    averaged) the value is returned as it is.

    Returns:
        ``value / replica_count()`` on tensorflow, ``value`` otherwise.
    """
    if keras.backend.backend() != "tensorflow":
        return value
    count = replica_count()
    return value if count == 1 else value / count


def all_gather(x, axis=0):
    """Concatenates every replica's ``x`` along ``axis``, in replica order.

    ```
    all_gather(x)[k * n:(k + 1) * n] = x on replica k,   n = x.shape[axis]
    ```

    The gradient with respect to the local ``x`` is the slice, for this
    replica, of the sum over replicas of the upstream gradients. Outside a
    multi-replica context it returns ``x`` unchanged.

    Args:
        x: Tensor of rank >= 1, with the same shape on every replica.
        axis: Axis to concatenate along; negative values count from the end.

    Returns:
        A tensor whose ``axis`` is ``replica_count()`` times longer than ``x``'s.

    Raises:
        ValueError: If ``axis`` is out of range for ``x``.

    Example:

    >>> import keras
    >>> embeddings = keras.ops.ones((4, 8))
    >>> everyone = all_gather(embeddings)  # (4 * replica_count(), 8)
    """
    x = keras.ops.convert_to_tensor(x)
    rank = len(x.shape)
    if not -rank <= axis < rank:
        raise ValueError(
            f"all_gather: axis={axis} is out of range for x with shape {tuple(x.shape)}."
        )
    axis = axis % rank
    backend = keras.backend.backend()
    if backend == "tensorflow":
        context = _tensorflow_replica_context()
        if context is None:
            return x
        return context.all_gather(x, axis=axis)
    if backend == "torch" and _torch_world_size() > 1:
        import torch
        from torch.distributed.nn import functional as distributed_functional

        with _torch_collective_deprecation_silenced():
            slices = distributed_functional.all_gather(x)
        return torch.cat(slices, dim=axis)
    return x


def all_mean(x):
    """Returns the element-wise mean of ``x`` over replicas.

    ```
    all_mean(x) = (1 / R) * sum_k x on replica k,   R = replica_count()
    ```

    The gradient with respect to the local ``x`` is the cross-replica mean of
    the upstream gradients. Outside a multi-replica context it returns ``x``
    unchanged.

    Args:
        x: Floating tensor of any shape, the same on every replica.

    Returns:
        A tensor with the shape and dtype of ``x``.

    Example:

    >>> import keras
    >>> batch_centre = all_mean(keras.ops.mean(keras.ops.ones((4, 8)), axis=0))
    """
    x = keras.ops.convert_to_tensor(x)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        context = _tensorflow_replica_context()
        if context is None:
            return x
        import tensorflow as tf

        return context.all_reduce(tf.distribute.ReduceOp.MEAN, x)
    if backend == "torch":
        world_size = _torch_world_size()
        if world_size > 1:
            import torch.distributed as torch_distributed
            from torch.distributed.nn import functional as distributed_functional

            with _torch_collective_deprecation_silenced():
                total = distributed_functional.all_reduce(x, op=torch_distributed.ReduceOp.SUM)
            return total / world_size
    return x


def _tensorflow_replica_context():
    import tensorflow as tf

    # None in the cross-replica context; the default strategy's context has
    # a single replica. Neither needs a collective.
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return None
    return context


def _torch_world_size():
    import torch.distributed as torch_distributed

    if torch_distributed.is_available() and torch_distributed.is_initialized():
        return torch_distributed.get_world_size()
    return 1


@contextlib.contextmanager
def _torch_collective_deprecation_silenced():
    # Recent torch marks these differentiable collectives deprecated in favour
    # of a private module; they remain the public ones that carry gradients,
    # and a warning on every loss call would only be noise.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"torch\.distributed\.nn\.functional\.",
            category=FutureWarning,
        )
        yield
