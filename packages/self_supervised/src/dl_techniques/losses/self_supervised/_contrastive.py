"""Input forms of the image-text contrastive losses, and their cross-replica view.

A contrastive prediction arrives as logits or similarities of every image
against every text, or as the two embedding batches. ``parse_prediction``
checks its static shapes and returns a :class:`PairedBatch`: the local rows
(one per local sample) scored against every column of the global batch, plus
the score of each local sample's own pair.

The anchor-against-candidates losses (NT-Xent, SupCon) share the rest: the
logits with each anchor's own column masked, the reduction over blocks of
candidate columns recomputed in the backward pass (``chunk_size``), and the
position of the local replica's block among the gathered ones.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras

from dl_techniques.losses.core import numerics, ops
from dl_techniques.losses.core.distributed import all_gather, replica_count
from dl_techniques.losses.core.shapes import shapes_match, sizes_differ, static_shape

IMAGE_LOGITS = "logits_per_image"
TEXT_LOGITS = "logits_per_text"
IMAGE_EMBEDDINGS = "image_embeddings"
TEXT_EMBEDDINGS = "text_embeddings"

MASKED_LOGIT = -1e9
"""The logit of an anchor against itself: no weight in a softmax, a finite gradient."""
_FORMS = (
    f'a (B, B) matrix, a dict {{"{IMAGE_LOGITS}", "{TEXT_LOGITS}"}}, a 2-tuple of '
    f'(B, B) matrices, or a dict {{"{IMAGE_EMBEDDINGS}", "{TEXT_EMBEDDINGS}"}} of (B, D) '
    "embeddings"
)


@dataclasses.dataclass
class PairedBatch:
    """Similarities of the local samples against the whole batch.

    Attributes:
        image_rows: ``(b, N)`` scores of each local image against every text of
            the global batch (``b = N`` on one device); ``None`` for
            embeddings parsed without ``need_text_rows``, whose caller scores
            ``image`` against ``texts`` itself.
        text_rows: ``(b, N)`` scores of each local text against every image,
            ``None`` where they are the transpose of ``image_rows`` (the
            input gave only ``logits_per_image``, or embeddings on one
            replica), for the caller to read ``image_rows`` by columns.
        positives: ``(b,)`` score of each local image with its own text;
            ``None`` for embeddings scored with ``need_text_rows`` on one
            replica, where it is the diagonal of ``image_rows``.
        text_positives: ``(b,)`` score of each local text with its own image
            when ``logits_per_text`` was given; ``None`` when it equals
            ``positives``.
        image: ``(b, D)`` L2-normalised local image embeddings, or ``None``
            for the logits forms.
        texts: ``(N, D)`` L2-normalised text embeddings of the global batch,
            or ``None`` for the logits forms.
        own_on_diagonal: Whether the own pair of row ``i`` is column ``i`` of
            ``image_rows`` (and of ``text_rows``): the logits forms, and
            embeddings on one replica, where ``positives`` is the diagonal.
    """

    image_rows: Any
    text_rows: Any
    positives: Any
    text_positives: Any = None
    image: Any = None
    texts: Any = None
    own_on_diagonal: bool = False

    @property
    def from_embeddings(self) -> bool:
        return self.image is not None


def parse_prediction(loss_name: str, y_pred: Any, need_text_rows: bool) -> PairedBatch:
    """Returns the :class:`PairedBatch` of ``y_pred``, computed in float32 for half inputs.

    With embeddings, both batches are L2-normalised and, under
    ``tf.distribute`` or torch DDP, the other replicas' embeddings are
    gathered (with gradient), so the columns span the global batch while the
    rows stay local. The logits forms are used as given, on every replica.

    Args:
        loss_name: Name of the calling loss, for error messages.
        y_pred: One of the input forms (see the module docstring).
        need_text_rows: Whether to compute ``text_rows`` for embeddings.
            Without it, embeddings leave ``image_rows`` to the caller, which
            scores ``image`` against ``texts`` in chunks.
    """
    if isinstance(y_pred, dict):
        keys = set(y_pred)
        if keys == {IMAGE_EMBEDDINGS, TEXT_EMBEDDINGS}:
            return _from_embeddings(
                loss_name, y_pred[IMAGE_EMBEDDINGS], y_pred[TEXT_EMBEDDINGS], need_text_rows
            )
        if keys == {IMAGE_LOGITS, TEXT_LOGITS}:
            return _from_logits(loss_name, y_pred[IMAGE_LOGITS], y_pred[TEXT_LOGITS])
        raise ValueError(
            f"{loss_name}: a dict `y_pred` must have the keys {[IMAGE_LOGITS, TEXT_LOGITS]} "
            f"or {[IMAGE_EMBEDDINGS, TEXT_EMBEDDINGS]}; got keys {sorted(keys)}."
        )
    if isinstance(y_pred, (tuple, list)) and all(hasattr(item, "shape") for item in y_pred):
        if len(y_pred) != 2:
            raise ValueError(
                f"{loss_name}: a tuple `y_pred` must hold (logits_per_image, "
                f"logits_per_text); got {len(y_pred)} items."
            )
        return _from_logits(loss_name, y_pred[0], y_pred[1])
    # Nested Python lists of numbers are one matrix, as in Keras' own losses.
    return _from_logits(loss_name, keras.ops.convert_to_tensor(y_pred), None)


def ignored_target(y_true: Any) -> Any:
    """Returns a placeholder for a missing `y_true`, which the losses ignore.

    ``keras.losses.Loss.__call__`` converts `y_true` to a tensor, which fails
    for ``None`` (a direct call without labels, or ``fit`` without ``y``).
    """
    return 0.0 if y_true is None else y_true


def check_embedding_shapes(owner_name: str, image: Any, text: Any) -> None:
    """Raises ``ValueError`` unless both embeddings are ``(B, D)`` with equal B and D."""
    image_shape, text_shape = static_shape(image), static_shape(text)
    if len(image_shape) != 2 or len(text_shape) != 2:
        raise ValueError(
            f"{owner_name}: `image_embeddings` and `text_embeddings` must have shape "
            f"(B, D); got image_embeddings shape {image_shape} and text_embeddings "
            f"shape {text_shape}."
        )
    if not shapes_match(image_shape, text_shape):
        raise ValueError(
            f"{owner_name}: `image_embeddings` and `text_embeddings` must have the same "
            f"batch size and dimension; got image_embeddings shape {image_shape} and "
            f"text_embeddings shape {text_shape}."
        )


def own_column_mask(start: Any, block_size: Any, own_columns: Any) -> Any:
    """Returns the ``(anchors, block_size)`` mask of each anchor's own candidate column.

    Args:
        start: The column index of the block's first candidate.
        block_size: The number of candidates in the block.
        own_columns: ``(anchors,)`` int32, the column holding each anchor itself.
    """
    columns = start + keras.ops.arange(block_size, dtype="int32")
    return keras.ops.equal(columns[None, :], own_columns[:, None])


def masked_logits(anchors: Any, block: Any, start: Any, own_columns: Any, temperature: float):
    """Logits of the anchors against a block of candidates from column ``start`` on.

    The anchor's own column gets :data:`MASKED_LOGIT`: no weight in a softmax,
    and a finite gradient where a whole block is masked.
    """
    logits = keras.ops.matmul(anchors, keras.ops.transpose(block)) / temperature
    own = own_column_mask(start, keras.ops.shape(block)[0], own_columns)
    return keras.ops.where(own, MASKED_LOGIT, logits)


def reduce_column_blocks(
    block_statistics: Callable[..., Any],
    columns: Sequence[Any],
    chunk_size: int,
    combine: Callable[[Any, Any], Any],
    *arguments: Any,
) -> Any:
    """Combines per-anchor statistics over blocks of ``chunk_size`` candidate columns.

    ``block_statistics(*blocks, start, *arguments)`` gets rows ``start`` to
    ``start + chunk_size`` of each tensor of ``columns`` (candidates, and
    whatever belongs to them, such as labels) and the int32 ``start``, and
    returns the statistics of that block; ``combine(total, block)`` merges
    them (``keras.ops.logaddexp`` for a logsumexp). Each block is recomputed
    in the backward pass, so neither pass holds more than one block of
    logits: memory O(anchors x chunk_size). The number of columns must be
    known when tracing.

    ``block_statistics`` must take every tensor it reads as an argument, not
    through a closure: TensorFlow's remat differentiates only with respect to
    the arguments.
    """
    recomputed = keras.remat(block_statistics)
    total = None
    for begin in range(0, columns[0].shape[0], chunk_size):
        blocks = [column[begin : begin + chunk_size] for column in columns]
        start = keras.ops.convert_to_tensor(begin, "int32")
        value = recomputed(*blocks, start, *arguments)
        total = value if total is None else combine(total, value)
    return total


def local_block(local: Any, gathered: Any) -> Any:
    """Returns the index (int32) of this replica's block among the gathered ones.

    ``gathered`` is ``all_gather(local)``: ``R = replica_count()`` blocks
    shaped like ``local``, in replica order. Keras has no replica id on every
    engine, so the block is the first one equal to ``local``
    (``all_gather`` copies values exactly; two equal blocks are
    interchangeable in anything computed from them). 0 on one replica.
    """
    replicas = replica_count()
    if replicas == 1:
        return keras.ops.convert_to_tensor(0, "int32")
    blocks = keras.ops.reshape(gathered, (replicas, -1))
    same = keras.ops.all(keras.ops.equal(blocks, keras.ops.reshape(local, (1, -1))), axis=1)
    return keras.ops.cast(keras.ops.argmax(keras.ops.cast(same, "int32")), "int32")


def _from_logits(loss_name, image_logits, text_logits):
    image_logits = numerics.upcast_half(image_logits)
    _check_square(loss_name, "logits_per_image", image_logits)
    positives = keras.ops.diagonal(image_logits)
    if text_logits is None:
        return PairedBatch(image_logits, None, positives, own_on_diagonal=True)
    text_logits = numerics.as_float(numerics.upcast_half(text_logits), image_logits)
    _check_square(loss_name, "logits_per_text", text_logits)
    image_shape, text_shape = static_shape(image_logits), static_shape(text_logits)
    if sizes_differ(image_shape[0], text_shape[0]):
        raise ValueError(
            f"{loss_name}: `logits_per_image` and `logits_per_text` must have the same "
            f"shape (B, B); got logits_per_image shape {image_shape} and logits_per_text "
            f"shape {text_shape}."
        )
    return PairedBatch(
        image_logits,
        text_logits,
        positives,
        keras.ops.diagonal(text_logits),
        own_on_diagonal=True,
    )


def _from_embeddings(loss_name, image, text, need_text_rows):
    image = numerics.upcast_half(image)
    text = numerics.as_float(numerics.upcast_half(text), image)
    check_embedding_shapes(loss_name, image, text)
    image = ops.l2_normalize(image)
    text = ops.l2_normalize(text)
    if need_text_rows and replica_count() == 1:
        # The backend tensors' own matmul: keras.ops.matmul adds dtype
        # dispatch that costs as much as the product of a small batch.
        image_rows = image @ keras.ops.transpose(text)
        return PairedBatch(
            image_rows,
            None,
            None,
            image=image,
            texts=text,
            own_on_diagonal=True,
        )
    texts = all_gather(text)
    # The own pair is scored locally; only the other samples are reached
    # through the gather, so no replica needs to know its offset.
    positives = keras.ops.sum(image * text, axis=-1)
    if not need_text_rows:
        return PairedBatch(None, None, positives, image=image, texts=texts)
    image_rows = image @ keras.ops.transpose(texts)
    text_rows = text @ keras.ops.transpose(all_gather(image))
    return PairedBatch(image_rows, text_rows, positives, image=image, texts=texts)


def _check_square(loss_name, argument, logits):
    shape = static_shape(logits)
    if len(shape) != 2 or sizes_differ(shape[0], shape[1]):
        raise ValueError(
            f"{loss_name}: `{argument}` must be a square (B, B) matrix, one row per "
            f"sample; got shape {shape}. `y_pred` must be {_FORMS}."
        )
