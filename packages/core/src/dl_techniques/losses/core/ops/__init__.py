"""Fused primitives for the hot paths of losses, native on each backend.

A chain of ``keras.ops`` runs one kernel per op in eager PyTorch (and in eager
TensorFlow or JAX), plus one per op of its backward pass; the frameworks have
fused kernels for a few primitives that losses use on large tensors. Each
function here computes one such primitive with the current backend's native
kernel where one exists, and otherwise with its ``*_reference`` twin, written
in ``keras.ops`` (which XLA fuses under ``jax.jit`` and ``jit_compile``). Both
paths give the same values and gradients (tested on every backend), so a loss
calls the primitive and never imports a framework itself.

Native kernels (:func:`native_backends` lists them per primitive):

- ``softmax_cross_entropy``: ``torch.nn.functional.cross_entropy`` (ignore index
  and smoothing inside the kernel); ``tf.nn.sparse_softmax_cross_entropy_with_logits``.
- ``sigmoid_cross_entropy``: ``torch.nn.functional.binary_cross_entropy_with_logits``;
  ``tf.nn.sigmoid_cross_entropy_with_logits``.
- ``l2_normalize``: torch: ``torch.linalg.vector_norm`` and one division, as
  ``torch.nn.functional.normalize`` computes it.
- ``lgamma``: ``torch.lgamma``, ``tf.math.lgamma``, ``jax.lax.lgamma`` (Keras
  has no op; the reference is Lanczos' approximation).
- ``lgamma_increment``: torch: the difference of two ``torch.lgamma`` in float64
  (the reference rearranges two Lanczos approximations, a few dozen operations).
- ``softmax_expectation``: jax: the ratio of two sums of ``exp(x - max)``, one
  division per row (the reference divides every exponential, and XLA's CPU
  backend writes that broadcast reciprocal out).
- ``blockwise_softplus_sums``: torch: one autograd function that adds each
  block's row gradient to a ``(B, D)`` sum in the forward pass, so the backward
  pass recomputes blocks only for the columns' gradient.
- ``huber`` and ``huber_mean``: ``torch.nn.functional.huber_loss`` (``reduction``
  ``"none"`` and ``"mean"``).
- ``lovasz_absolute_errors``: ``torch.sort`` a few classes at a time in one
  autograd function that keeps only each pixel's slope for the backward pass.
- ``pairwise_distances``: torch: both Euclidean distances in one autograd
  function (a Gram matrix, an in-place clamp and diagonal), whose backward
  pass is one ``addmm``; the cosine distance from ``l2_normalize``'s computation.
- ``pairwise_where``: ``torch.nonzero`` of the mask, the function on the
  gathered pairs only, and one ``index_put`` per value into its fill.
- ``rowwise_where``: the same for single rows: ``torch.nonzero`` of the mask,
  the function on the gathered rows only, one ``index_put`` into the fill.
- ``overlap_sums``: torch: one autograd function, the per-class sums taken over
  blocks of rows viewed as one wide row, and one ``addcmul`` per input in the
  backward pass; TensorFlow: the same block sums in ``tf`` ops.
- ``as_tensor`` (``numerics.as_tensor``, an input as Keras converts it): torch:
  a ``torch.Tensor`` on Keras' device is returned, or cast, without Keras'
  conversion, which walks the input as a tree.
- ``safe_divide`` (``numerics.safe_divide``, the ratio with an empty value where
  the denominator is 0): torch: the same operations as torch calls.
- ``soft_confusion_counts``: torch: one autograd function for the amplifier and
  the sums (a dot product for the micro average), whose backward pass writes
  each input's gradient from the amplified predictions alone.
- ``sort``: TensorFlow: XLA's own sort (``tf2xla``'s ``xla.sort``); ``tf.sort``
  runs through ``top_k``, a stable sort of the negated values with a
  greater-than comparator that XLA's CPU backend runs about 3x slower.
- ``sort_descending``: ``torch.sort`` and one gather per carried tensor. (On
  XLA's CPU backend one ``jax.lax.sort`` carrying every tensor as an operand
  was 1.4x slower than the argsort and gathers of the reference, measured on
  Lovasz-softmax at 4x128x128x19, so jax runs the reference.)

:func:`softmax` is ``keras.ops.softmax`` with a NaN logit's row NaN on TensorFlow
too, whose eager kernel gives 0 beside it.

:func:`mean` is ``keras.ops.mean`` written as a sum times ``1/n``, whose
backward in eager torch broadcasts a view instead of writing a full-size
gradient; on torch the sum and the product are torch calls.

Every function works eagerly and under ``tf.function``, ``jax.jit`` and
``torch.compile``, a first call inside a compiled function included: the
kernels of Keras' backend are built when this package is imported.

The package holds one module per group of primitives (each public function
with its ``*_reference`` twin and their private helpers), the dispatch between
the two paths (``_dispatch``), and one module of native kernels per backend
(``_torch``, ``_tensorflow``, ``_jax``), each importing its framework only when
the dispatch first needs it.
"""

from dl_techniques.losses.core.ops._blockwise import (
    blockwise_softplus_sums,
    blockwise_softplus_sums_reference,
)
from dl_techniques.losses.core.ops._confusion import (
    soft_confusion_counts,
    soft_confusion_counts_reference,
)
from dl_techniques.losses.core.ops._cross_entropy import (
    sigmoid_cross_entropy,
    sigmoid_cross_entropy_reference,
    softmax_cross_entropy,
    softmax_cross_entropy_reference,
)
from dl_techniques.losses.core.ops._dispatch import native_backends, preload_native_kernels
from dl_techniques.losses.core.ops._distances import (
    PAIRWISE_DISTANCES,
    pairwise_distances,
    pairwise_distances_reference,
)
from dl_techniques.losses.core.ops._huber import (
    huber,
    huber_mean,
    huber_mean_reference,
    huber_reference,
)
from dl_techniques.losses.core.ops._lgamma import (
    lgamma,
    lgamma_increment,
    lgamma_increment_reference,
    lgamma_reference,
)
from dl_techniques.losses.core.ops._lovasz import (
    lovasz_absolute_errors,
    lovasz_absolute_errors_reference,
)
from dl_techniques.losses.core.ops._masked import (
    pairwise_where,
    pairwise_where_reference,
    rowwise_where,
    rowwise_where_reference,
)
from dl_techniques.losses.core.ops._normalize import l2_normalize, l2_normalize_reference
from dl_techniques.losses.core.ops._overlap import overlap_sums, overlap_sums_reference
from dl_techniques.losses.core.ops._reductions import (
    mean,
    mean_reference,
    softmax,
    softmax_expectation,
    softmax_expectation_reference,
)
from dl_techniques.losses.core.ops._sorting import (
    sort,
    sort_descending,
    sort_descending_reference,
    sort_reference,
)

preload_native_kernels()

__all__ = [
    "blockwise_softplus_sums",
    "blockwise_softplus_sums_reference",
    "huber",
    "lovasz_absolute_errors",
    "lovasz_absolute_errors_reference",
    "huber_mean",
    "huber_mean_reference",
    "huber_reference",
    "l2_normalize",
    "l2_normalize_reference",
    "lgamma",
    "lgamma_increment",
    "lgamma_increment_reference",
    "lgamma_reference",
    "mean",
    "mean_reference",
    "native_backends",
    "overlap_sums",
    "overlap_sums_reference",
    "preload_native_kernels",
    "PAIRWISE_DISTANCES",
    "pairwise_distances",
    "pairwise_distances_reference",
    "pairwise_where",
    "pairwise_where_reference",
    "rowwise_where",
    "rowwise_where_reference",
    "sigmoid_cross_entropy",
    "sigmoid_cross_entropy_reference",
    "soft_confusion_counts",
    "soft_confusion_counts_reference",
    "softmax",
    "softmax_expectation",
    "softmax_expectation_reference",
    "softmax_cross_entropy",
    "softmax_cross_entropy_reference",
    "sort",
    "sort_reference",
    "sort_descending",
    "sort_descending_reference",
]
