"""Times CLIP and SigLIP against plain keras.ops losses, and SigLIP's chunked memory.

Each timed call is one forward pass plus the gradient with respect to the
image embeddings ``(B, D)`` (the text embeddings are fixed), compiled the way
a training step is on the current backend (see ``benchmarking.py``). Each
library loss is paired with a plain ``keras.ops`` loss over the same logits:
both L2-normalise the embeddings and take ``I T^T``; the CLIP baseline is the
symmetric sparse categorical cross-entropy with labels ``arange(B)``, the
SigLIP baseline ``binary_crossentropy(2 I - 1 > 0, t * S + b)`` summed over
all pairs and divided by B. The table shows median times and the ratio.

Peak memory (jax only): the forward + gradient of SigLIP at ``--memory-batch``
(default 4096) is compiled with ``jax.jit(...).lower(...).compile()`` and
``memory_analysis()`` reports the compiled program's temporary buffer bytes
(``temp_size_in_bytes``: everything XLA allocates besides the arguments and
outputs), without chunks and with ``--chunk-size`` columns per block.

    KERAS_BACKEND=jax python tools/bench_self_supervised.py --repetitions 50
"""

import argparse
import sys

import keras
import numpy as np
from benchmarking import compile_mode, time_pairs

from dl_techniques.losses.self_supervised.clip_contrastive_loss import CLIPContrastiveLoss
from dl_techniques.losses.self_supervised.siglip_contrastive_loss import SigLIPContrastiveLoss

TEMPERATURE = 0.07
SIGLIP_SCALE = 10.0
SIGLIP_BIAS = -10.0


def _normalize(embeddings):
    squared = keras.ops.sum(keras.ops.square(embeddings), axis=-1, keepdims=True)
    return embeddings * keras.ops.rsqrt(keras.ops.maximum(squared, 1e-24))


def _similarities(image, text):
    return keras.ops.matmul(_normalize(image), keras.ops.transpose(_normalize(text)))


def plain_clip(text):
    def loss(y_true, image):
        logits = _similarities(image, text) / TEMPERATURE
        labels = keras.ops.arange(keras.ops.shape(logits)[0])
        image_loss = keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        text_loss = keras.ops.sparse_categorical_crossentropy(
            labels, keras.ops.transpose(logits), from_logits=True
        )
        return 0.5 * (keras.ops.mean(image_loss) + keras.ops.mean(text_loss))

    return loss


def plain_siglip(text):
    def loss(y_true, image):
        logits = SIGLIP_SCALE * _similarities(image, text) + SIGLIP_BIAS
        targets = keras.ops.eye(keras.ops.shape(logits)[0])
        pairs = keras.ops.binary_crossentropy(targets, logits, from_logits=True)
        return keras.ops.sum(pairs) / keras.ops.cast(keras.ops.shape(logits)[0], pairs.dtype)

    return loss


def on_embeddings(library_loss, text):
    def loss(y_true, image):
        return library_loss(None, {"image_embeddings": image, "text_embeddings": text})

    return loss


def siglip_temp_bytes(batch, dim, chunk_size):
    """Temporary bytes of the compiled SigLIP forward + gradient on jax."""
    import jax
    import jax.numpy as jnp

    loss = SigLIPContrastiveLoss(SIGLIP_SCALE, SIGLIP_BIAS, chunk_size=chunk_size)
    text = jnp.ones((batch, dim), "float32")

    def objective(image):
        return loss(None, {"image_embeddings": image, "text_embeddings": text})

    image = jax.ShapeDtypeStruct((batch, dim), jnp.float32)
    compiled = jax.jit(jax.value_and_grad(objective)).lower(image).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repetitions", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--memory-batch", type=int, default=4096)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--torch-compile", action="store_true")
    arguments = parser.parse_args()

    rng = np.random.default_rng(0)
    image = keras.ops.convert_to_tensor(
        rng.normal(size=(arguments.batch, arguments.dim)).astype("float32")
    )
    text = keras.ops.convert_to_tensor(
        rng.normal(size=(arguments.batch, arguments.dim)).astype("float32")
    )
    ignored = keras.ops.zeros((arguments.batch,))
    pairs = [
        (
            "CLIPContrastiveLoss",
            on_embeddings(CLIPContrastiveLoss(TEMPERATURE), text),
            "plain CE (CLIP)",
        ),
        (
            "SigLIPContrastiveLoss",
            on_embeddings(SigLIPContrastiveLoss(SIGLIP_SCALE, SIGLIP_BIAS), text),
            "plain BCE (SigLIP)",
        ),
    ]
    baselines = {"plain CE (CLIP)": plain_clip(text), "plain BCE (SigLIP)": plain_siglip(text)}
    timed = [(label, fn, ignored, image) for label, fn, _ in pairs]
    timed += [(label, fn, ignored, image) for label, fn in baselines.items()]
    medians = time_pairs(timed, arguments.repetitions, arguments.warmup, arguments.torch_compile)

    backend = keras.backend.backend()
    mode = compile_mode(arguments.torch_compile)
    print(
        f"backend {backend} ({mode}); embeddings ({arguments.batch}, {arguments.dim}); "
        f"forward + gradient w.r.t. the image embeddings, median of {arguments.repetitions}"
    )
    header = f"{'loss':<24}{'us':>12}  {'baseline':<20}{'us':>12}  {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for label, _, baseline in pairs:
        ratio = medians[label] / medians[baseline]
        print(
            f"{label:<24}{medians[label] * 1e6:>12.1f}  {baseline:<20}"
            f"{medians[baseline] * 1e6:>12.1f}  {ratio:>6.2f}"
        )

    if backend != "jax":
        print("peak memory: measured on jax only (compiled memory analysis)")
        return 0
    batch, chunk = arguments.memory_batch, arguments.chunk_size
    whole = siglip_temp_bytes(batch, arguments.dim, None)
    chunked = siglip_temp_bytes(batch, arguments.dim, chunk)
    print(
        f"SigLIP forward + gradient, B={batch}, D={arguments.dim}, XLA temp bytes: "
        f"unchunked {whole / 2**20:.1f} MiB, chunk_size={chunk} {chunked / 2**20:.1f} MiB "
        f"(ratio {whole / chunked:.1f}; one (B, B) float32 matrix is "
        f"{batch * batch * 4 / 2**20:.1f} MiB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
