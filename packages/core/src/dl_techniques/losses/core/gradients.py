"""Input gradients for every Keras backend.

Keras has no op for the gradient of a function with respect to its input, which
gradient-penalty losses (WGAN-GP, R1) need inside the training step. This module
provides one, implemented with each backend's own differentiation.
"""

import keras


def input_gradient(fn, inputs):
    """Returns the gradient of ``sum(fn(inputs))`` with respect to ``inputs``.

    ```
    input_gradient(fn, x) = d/dx sum_j fn(x)_j
    ```

    For a critic that maps each sample on its own (no batch normalisation in
    training mode, no cross-sample attention), row ``i`` of the result is
    ``d fn(x)_i / d x_i``, the per-sample gradient used by the WGAN-GP penalty
    ``mean_i (||grad_i||_2 - 1)^2`` (Gulrajani et al., 2017, "Improved Training
    of Wasserstein GANs", https://arxiv.org/abs/1704.00028).

    The gradient stays differentiable with respect to everything ``fn`` closes
    over (the critic's weights) and, where ``inputs`` itself depends on other
    tensors, with respect to those too, so a penalty built on it trains the
    critic. It works eagerly and inside a compiled Keras train step:

    - tensorflow: a ``tf.GradientTape`` watching ``inputs``; nested inside the
      outer tape of a train step, the outer tape records the inner gradient.
    - jax: ``jax.grad`` of the summed function; inside Keras' stateless train
      step the layer variables are traced values, so the outer gradient flows
      through the inner one.
    - torch: ``torch.autograd.grad`` with ``create_graph=True``, under
      ``torch.enable_grad()`` so it also works where Keras disables gradients
      (``evaluate``). An ``inputs`` tensor that does not require grad is
      replaced by a detached copy that does; such a tensor carries no autograd
      history, so nothing upstream is cut. A tensor that already requires
      grad is used as is, keeping its link to whatever produced it.

    Half-precision inputs are differentiated in their own dtype; the result
    has the dtype and shape of ``inputs``. Outputs that do not depend on
    ``inputs`` give a zero gradient.

    Args:
        fn: Callable mapping a tensor shaped like ``inputs`` to a floating
            tensor of any shape, usually a critic ``model``.
        inputs: Floating tensor the gradient is taken with respect to.

    Returns:
        A tensor with the shape and dtype of ``inputs``.

    Raises:
        ValueError: If ``inputs`` or the output of ``fn`` is not floating.

    Example:

    >>> import keras
    >>> weights = keras.ops.convert_to_tensor([1.0, 2.0])
    >>> critic = lambda x: keras.ops.sum(weights * x**2, axis=-1)
    >>> x = keras.ops.convert_to_tensor([[1.0, 1.0], [0.5, -1.0]])
    >>> keras.ops.convert_to_numpy(input_gradient(critic, x))  # 2 * w * x
    array([[ 2.,  4.],
           [ 1., -4.]], dtype=float32)
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_input_gradient(fn, inputs)
    if backend == "jax":
        return _jax_input_gradient(fn, inputs)
    if backend == "torch":
        return _torch_input_gradient(fn, inputs)
    raise ValueError(
        f"input_gradient: backend {backend!r} is not supported; use tensorflow, jax or torch."
    )


def _check_floating(tensor, what):
    dtype = keras.backend.standardize_dtype(tensor.dtype)
    if not keras.backend.is_float_dtype(dtype):
        raise ValueError(
            f"input_gradient: {what} must be floating to be differentiated, "
            f"got dtype {dtype} with shape {tuple(tensor.shape)}."
        )


def _tensorflow_input_gradient(fn, inputs):
    import tensorflow as tf

    inputs = keras.ops.convert_to_tensor(inputs)
    _check_floating(inputs, "inputs")
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = keras.ops.convert_to_tensor(fn(inputs))
        _check_floating(outputs, "the output of fn")
        total = tf.reduce_sum(outputs)
    return tape.gradient(total, inputs, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def _jax_input_gradient(fn, inputs):
    import jax
    import jax.numpy as jnp

    inputs = keras.ops.convert_to_tensor(inputs)
    _check_floating(inputs, "inputs")

    def summed(values):
        outputs = keras.ops.convert_to_tensor(fn(values))
        _check_floating(outputs, "the output of fn")
        return jnp.sum(outputs)

    return jax.grad(summed)(inputs)


def _torch_input_gradient(fn, inputs):
    import torch

    inputs = keras.ops.convert_to_tensor(inputs)
    _check_floating(inputs, "inputs")
    with torch.enable_grad():
        if not inputs.requires_grad:
            inputs = inputs.detach().requires_grad_(True)
        outputs = keras.ops.convert_to_tensor(fn(inputs))
        _check_floating(outputs, "the output of fn")
        if not outputs.requires_grad:
            return torch.zeros_like(inputs)
        (gradient,) = torch.autograd.grad(
            outputs.sum(), inputs, create_graph=True, allow_unused=True
        )
    if gradient is None:
        return torch.zeros_like(inputs)
    return gradient
