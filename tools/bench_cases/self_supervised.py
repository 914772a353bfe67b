"""CLIP and SigLIP against plain keras.ops losses, and SigLIP's chunked memory.

``contrastive``: each timed call is one forward pass plus the gradient with
respect to the image embeddings ``(B, D)`` (the text embeddings are fixed).
Each library loss is paired with a plain ``keras.ops`` loss over the same
logits: both L2-normalise the embeddings and take ``I T^T``; the CLIP baseline
is the symmetric sparse categorical cross-entropy with labels ``arange(B)``,
the SigLIP baseline ``binary_crossentropy(2 I - 1 > 0, t * S + b)`` summed over
all pairs and divided by B.

With ``chunk_size`` above 0 (64 by default, four blocks), SigLIP with that
``chunk_size`` is timed too.

Where torch is installed, open_clip's formulas transcribed in eager torch
(``F.normalize``, ``F.cross_entropy`` both ways; ``-F.logsigmoid(sign * logits)``
summed over pairs and divided by B) are timed on the same data as reference
rows, on every Keras backend. They normalise both embeddings in each call, as
the library losses do (open_clip's models normalise the features before its
loss sees them: the same work in a training step).

``siglip-memory`` (jax only): the forward + gradient of SigLIP is compiled with
``jax.jit(...).lower(...).compile()`` and ``memory_analysis()`` reports the
compiled program's temporary buffer bytes (``temp_size_in_bytes``: everything
XLA allocates besides the arguments and outputs), without chunks and with
``chunk_size`` columns per block.
"""

import keras
import numpy as np
from benchmarking import (
    EMPTY_STEP,
    Case,
    TorchReference,
    empty_step,
    print_fixed_cost,
    print_pair_table,
    torch_available,
    torch_device,
    torch_reference_note,
)

from dl_techniques.losses.self_supervised.clip_contrastive_loss import CLIPContrastiveLoss
from dl_techniques.losses.self_supervised.dino_loss import DINOLoss
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


def torch_contrastive_references(text):
    """CLIP and SigLIP of the image embeddings against fixed ``text``, in torch ops."""
    import torch
    import torch.nn.functional as functional

    text = torch.from_numpy(np.array(keras.ops.convert_to_numpy(text))).to(torch_device())

    def clip(y_true, image):
        logits = functional.normalize(image) @ functional.normalize(text).T / TEMPERATURE
        labels = torch.arange(logits.shape[0], device=logits.device)
        return 0.5 * (
            functional.cross_entropy(logits, labels) + functional.cross_entropy(logits.T, labels)
        )

    def siglip(y_true, image):
        logits = SIGLIP_SCALE * functional.normalize(image) @ functional.normalize(text).T
        logits = logits + SIGLIP_BIAS
        signs = 2.0 * torch.eye(logits.shape[0], device=logits.device) - 1.0
        return -functional.logsigmoid(signs * logits).sum() / logits.shape[0]

    return [("torch CLIP", TorchReference(clip)), ("torch SigLIP", TorchReference(siglip))]


def run_contrastive(params, timing):
    batch, dim = params["batch"], params["dim"]
    rng = np.random.default_rng(0)
    image = keras.ops.convert_to_tensor(rng.normal(size=(batch, dim)).astype("float32"))
    text = keras.ops.convert_to_tensor(rng.normal(size=(batch, dim)).astype("float32"))
    ignored = keras.ops.zeros((batch,))
    functions = [
        ("CLIPContrastiveLoss", on_embeddings(CLIPContrastiveLoss(TEMPERATURE), text)),
        (
            "SigLIPContrastiveLoss",
            on_embeddings(SigLIPContrastiveLoss(SIGLIP_SCALE, SIGLIP_BIAS), text),
        ),
        ("plain CE (CLIP)", plain_clip(text)),
        ("plain BCE (SigLIP)", plain_siglip(text)),
    ]
    chunked = f"SigLIPContrastiveLoss(chunk_size={params['chunk_size']})"
    if params["chunk_size"]:
        siglip = SigLIPContrastiveLoss(SIGLIP_SCALE, SIGLIP_BIAS, chunk_size=params["chunk_size"])
        functions.append((chunked, on_embeddings(siglip, text)))
    if torch_available():
        functions += torch_contrastive_references(text)
    functions.append((EMPTY_STEP, empty_step))
    medians = timing.medians([(label, fn, ignored, image) for label, fn in functions])
    timing.print_header(
        f"embeddings ({batch}, {dim}); forward + gradient w.r.t. the image embeddings"
    )
    pairs = [
        ("CLIPContrastiveLoss", "plain CE (CLIP)"),
        ("SigLIPContrastiveLoss", "plain BCE (SigLIP)"),
    ]
    print_pair_table(pairs, medians)
    print()
    if torch_available():
        print("against the torch transcription, eager torch, same data:")
        pairs = [("CLIPContrastiveLoss", "torch CLIP"), ("SigLIPContrastiveLoss", "torch SigLIP")]
        if params["chunk_size"]:
            pairs.append((chunked, "torch SigLIP"))
        print_pair_table(pairs, medians)
    else:
        print(torch_reference_note())
    print_fixed_cost(medians)


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


def run_siglip_memory(params, timing):
    if keras.backend.backend() != "jax":
        print("peak memory: measured on jax only (compiled memory analysis)")
        return
    batch, dim, chunk = params["batch"], params["dim"], params["chunk_size"]
    whole = siglip_temp_bytes(batch, dim, None)
    chunked = siglip_temp_bytes(batch, dim, chunk)
    print(
        f"SigLIP forward + gradient, B={batch}, D={dim}, XLA temp bytes: "
        f"unchunked {whole / 2**20:.1f} MiB, chunk_size={chunk} {chunked / 2**20:.1f} MiB "
        f"(ratio {whole / chunked:.1f}; one (B, B) float32 matrix is "
        f"{batch * batch * 4 / 2**20:.1f} MiB)"
    )


def torch_dino(global_crops, student_temp, teacher_temp):
    """DINO (Caron et al., 2021) in torch ops: every teacher crop against every other student crop.

    Crop-major rows, a zero centre (a fresh loss), the teacher softmax as a
    constant, one cross-entropy per pair of views averaged over images and
    pairs, as the original implementation loops over them.
    """
    import torch
    import torch.nn.functional as functional

    def dino(teacher, student):
        teacher_views = functional.softmax(teacher / teacher_temp, dim=-1).detach()
        teacher_views = teacher_views.chunk(global_crops)
        student_views = functional.log_softmax(student / student_temp, dim=-1)
        student_views = student_views.chunk(student.shape[0] // teacher_views[0].shape[0])
        total, pairs = 0.0, 0
        for i, teacher_view in enumerate(teacher_views):
            for v, student_view in enumerate(student_views):
                if v == i:
                    continue
                total = total + torch.sum(-teacher_view * student_view, dim=-1).mean()
                pairs += 1
        return total / pairs

    return TorchReference(dino)


def run_dino(params, timing):
    images, prototypes = params["batch"], params["out_dim"]
    global_crops, local_crops = params["global_crops"], params["local_crops"]
    rng = np.random.default_rng(0)
    teacher = keras.ops.convert_to_tensor(
        rng.normal(size=(global_crops * images, prototypes)).astype("float32")
    )
    student = keras.ops.convert_to_tensor(
        rng.normal(size=((global_crops + local_crops) * images, prototypes)).astype("float32")
    )
    loss = DINOLoss(out_dim=prototypes, num_global_crops=global_crops)
    functions = [("DINOLoss", loss)]
    if torch_available():
        functions.append(
            ("torch DINO", torch_dino(global_crops, loss.student_temp, loss.teacher_temp))
        )
    functions.append((EMPTY_STEP, empty_step))
    medians = timing.medians([(label, fn, teacher, student) for label, fn in functions])
    timing.print_header(
        f"{images} images, {global_crops} global + {local_crops} local crops, K={prototypes}; "
        "forward + gradient w.r.t. the student output"
    )
    if torch_available():
        print_pair_table([("DINOLoss", "torch DINO")], medians, "ms")
    else:
        print(f"DINOLoss {medians['DINOLoss'] * 1e3:.2f} ms; {torch_reference_note()}")
    print_fixed_cost(medians, "ms")


CASES = [
    Case(
        "contrastive",
        "CLIPContrastiveLoss, SigLIPContrastiveLoss vs plain keras.ops losses",
        run_contrastive,
        params={"batch": 256, "dim": 512, "chunk_size": 64},
        quick={"batch": 16, "dim": 8},
        repetitions=50,
        warmup=5,
    ),
    Case(
        "siglip-memory",
        "XLA temporary bytes of SigLIP with and without chunk_size (jax only)",
        run_siglip_memory,
        params={"batch": 4096, "dim": 512, "chunk_size": 256},
        quick={"batch": 64, "dim": 8, "chunk_size": 16},
        repetitions=1,
        warmup=0,
    ),
    Case(
        "dino",
        "DINOLoss vs the DINO formula in eager torch (original implementation's pairing)",
        run_dino,
        params={"batch": 64, "out_dim": 4096, "global_crops": 2, "local_crops": 8},
        quick={"batch": 4, "out_dim": 16, "global_crops": 2, "local_crops": 2},
        repetitions=30,
        warmup=3,
    ),
]


def plain_nt_xent(temperature):
    """SimCLR's NT-Xent on stacked views ``(2B, D)`` with ``keras.ops``: one masked CE."""

    def loss(y_true, stacked):
        embeddings = _normalize(stacked)
        logits = keras.ops.matmul(embeddings, keras.ops.transpose(embeddings)) / temperature
        count = keras.ops.shape(logits)[0]
        logits = keras.ops.where(keras.ops.eye(count) > 0, -1e9, logits)
        labels = (keras.ops.arange(count) + count // 2) % count
        return keras.ops.mean(
            keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        )

    return loss


def run_nt_xent(params, timing):
    from benchmarking import print_ratio_table

    from dl_techniques.losses.self_supervised.nt_xent_loss import NTXentLoss

    pairs, dim = params["batch"], params["dim"]
    rng = np.random.default_rng(0)
    stacked = keras.ops.convert_to_tensor(rng.normal(size=(2 * pairs, dim)).astype("float32"))
    ignored = keras.ops.zeros((2 * pairs,))
    functions = [
        ("NTXentLoss", NTXentLoss(temperature=0.5)),
        (f"NTXentLoss(chunk_size={params['chunk_size']})", NTXentLoss(0.5, params["chunk_size"])),
        ("plain masked CE", plain_nt_xent(0.5)),
    ]
    medians = timing.medians([(label, fn, ignored, stacked) for label, fn in functions])
    timing.print_header(
        f"stacked views ({2 * pairs}, {dim}); forward + gradient w.r.t. the embeddings"
    )
    labels = [label for label, _ in functions]
    print_ratio_table("loss", labels, medians, "plain masked CE", "us", 1.2)


CASES.append(
    Case(
        "nt-xent",
        "NTXentLoss (one block and chunked) vs a plain keras.ops masked cross-entropy",
        run_nt_xent,
        params={"batch": 256, "dim": 512, "chunk_size": 128},
        quick={"batch": 8, "dim": 8, "chunk_size": 4},
        repetitions=50,
        warmup=5,
    )
)


def torch_supcontrast(temperature, base_temperature):
    """SupCon L_out (Khosla et al., 2020) as the SupContrast code computes it, in eager torch.

    Views ``(B, V, D)`` normalised and stacked view-major, the row maximum
    subtracted, a ``(BV, BV)`` label mask with the diagonal removed from the
    positives and the denominator, mean over every anchor (each has a positive
    with ``V >= 2``).
    """
    import torch
    import torch.nn.functional as functional

    def supcon(labels, views):
        samples, view_count = views.shape[:2]
        features = functional.normalize(views, dim=-1)
        contrast = torch.cat(torch.unbind(features, dim=1), dim=0)
        logits = contrast @ contrast.T / temperature
        logits = logits - logits.max(dim=1, keepdim=True).values.detach()
        labels = labels.reshape(-1, 1)
        not_self = 1.0 - torch.eye(samples * view_count, device=views.device)
        positives = (labels == labels.T).float().repeat(view_count, view_count) * not_self
        log_prob = logits - torch.log((torch.exp(logits) * not_self).sum(1, keepdim=True))
        mean_log_prob = (positives * log_prob).sum(1) / positives.sum(1)
        return -(temperature / base_temperature) * mean_log_prob.mean()

    return TorchReference(supcon)


def run_supcon(params, timing):
    from benchmarking import print_ratio_table

    from dl_techniques.losses.self_supervised.supcon_loss import SupConLoss

    batch, dim, chunk_size = params["batch"], params["dim"], params["chunk_size"]
    rng = np.random.default_rng(0)
    views = keras.ops.convert_to_tensor(rng.normal(size=(batch, 2, dim)).astype("float32"))
    labels = keras.ops.convert_to_tensor(np.arange(batch) % params["classes"], "int32")
    functions = [
        ("SupConLoss", SupConLoss()),
        (f"SupConLoss(chunk_size={chunk_size})", SupConLoss(chunk_size=chunk_size)),
    ]
    if torch_available():
        functions.append(("torch SupContrast", torch_supcontrast(0.07, 0.07)))
    functions.append((EMPTY_STEP, empty_step))
    medians = timing.medians([(label, fn, labels, views) for label, fn in functions])
    timing.print_header(
        f"{batch} samples x 2 views, D={dim}, {params['classes']} classes; "
        "forward + gradient w.r.t. the embeddings"
    )
    if torch_available():
        labels_shown = [label for label, _ in functions if label != EMPTY_STEP]
        print_ratio_table("loss", labels_shown, medians, "torch SupContrast", "us", 1.2)
    else:
        print(f"SupConLoss {medians['SupConLoss'] * 1e6:.2f} us; {torch_reference_note()}")
    print_fixed_cost(medians)


CASES.append(
    Case(
        "supcon",
        "SupConLoss (one block and chunked) vs the SupContrast formula in eager torch",
        run_supcon,
        params={"batch": 256, "dim": 128, "chunk_size": 128, "classes": 10},
        quick={"batch": 8, "dim": 8, "chunk_size": 4, "classes": 3},
        repetitions=50,
        warmup=5,
    )
)


def torch_redundancy_references(sim_coeff, std_coeff, cov_coeff, lambda_offdiag):
    """VICReg and Barlow Twins as the authors' code computes them, in eager torch ops.

    Both take stacked views ``(2B, D)``. VICReg: MSE, ``x.var(dim=0)`` (unbiased)
    under the hinge, off-diagonal squares of ``x.T @ x / (B - 1)`` over D.
    Barlow Twins: ``F.batch_norm`` in training mode without affine parameters
    (``BatchNorm1d(D, affine=False)``), ``c = z_a.T @ z_b / B``.
    """
    import torch
    import torch.nn.functional as functional

    def off_diagonal(matrix):
        size = matrix.shape[0]
        return matrix.flatten()[:-1].view(size - 1, size + 1)[:, 1:].flatten()

    def vicreg(y_true, stacked):
        x, y = stacked.chunk(2)
        batch, dim = x.shape
        repr_loss = functional.mse_loss(x, y)
        x = x - x.mean(dim=0)
        y = y - y.mean(dim=0)
        std_x = torch.sqrt(x.var(dim=0) + 0.0001)
        std_y = torch.sqrt(y.var(dim=0) + 0.0001)
        std_loss = (
            torch.mean(functional.relu(1 - std_x)) / 2 + torch.mean(functional.relu(1 - std_y)) / 2
        )
        cov_x = (x.T @ x) / (batch - 1)
        cov_y = (y.T @ y) / (batch - 1)
        cov_loss = off_diagonal(cov_x).pow(2).sum() / dim + off_diagonal(cov_y).pow(2).sum() / dim
        return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss

    def barlow_twins(y_true, stacked):
        first, second = stacked.chunk(2)
        first = functional.batch_norm(first, None, None, training=True, eps=1e-5)
        second = functional.batch_norm(second, None, None, training=True, eps=1e-5)
        c = first.T @ second / first.shape[0]
        on_diag = (torch.diagonal(c) - 1).pow(2).sum()
        return on_diag + lambda_offdiag * off_diagonal(c).pow(2).sum()

    return [
        ("torch VICReg", TorchReference(vicreg)),
        ("torch Barlow Twins", TorchReference(barlow_twins)),
    ]


def run_redundancy(params, timing):
    from dl_techniques.losses.self_supervised.barlow_twins_loss import BarlowTwinsLoss
    from dl_techniques.losses.self_supervised.vicreg_loss import VICRegLoss

    batch, dim = params["batch"], params["dim"]
    rng = np.random.default_rng(0)
    first = rng.normal(size=(batch, dim))
    second = first + 0.5 * rng.normal(size=(batch, dim))
    stacked = keras.ops.convert_to_tensor(np.concatenate([first, second]).astype("float32"))
    ignored = keras.ops.zeros((2 * batch,))
    vicreg, barlow_twins = VICRegLoss(), BarlowTwinsLoss()
    functions = [("VICRegLoss", vicreg), ("BarlowTwinsLoss", barlow_twins)]
    if torch_available():
        functions += torch_redundancy_references(
            vicreg.sim_coeff, vicreg.std_coeff, vicreg.cov_coeff, barlow_twins.lambda_offdiag
        )
    functions.append((EMPTY_STEP, empty_step))
    medians = timing.medians([(label, fn, ignored, stacked) for label, fn in functions])
    timing.print_header(
        f"two views of {batch} samples, D={dim}, stacked ({2 * batch}, {dim}); "
        "forward + gradient w.r.t. both views"
    )
    if torch_available():
        pairs = [("VICRegLoss", "torch VICReg"), ("BarlowTwinsLoss", "torch Barlow Twins")]
        print_pair_table(pairs, medians)
    else:
        print(
            f"VICRegLoss {medians['VICRegLoss'] * 1e6:.2f} us, BarlowTwinsLoss "
            f"{medians['BarlowTwinsLoss'] * 1e6:.2f} us; {torch_reference_note()}"
        )
    print_fixed_cost(medians)


CASES.append(
    Case(
        "redundancy",
        "VICRegLoss and BarlowTwinsLoss vs the authors' formulas in eager torch",
        run_redundancy,
        params={"batch": 256, "dim": 1024},
        quick={"batch": 8, "dim": 8},
        repetitions=30,
        warmup=3,
    )
)
