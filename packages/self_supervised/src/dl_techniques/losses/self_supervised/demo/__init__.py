"""Demo: contrastive retrieval (CLIP, SigLIP) and DINO with KoLeo on generated data.

Retrieval: two "modalities" are made from shared latent vectors through
different random nonlinear maps plus noise. Two small encoders, one per
modality, feed a ``ContrastiveLogitsLayer`` (learnable logit scale, and bias
for SigLIP) and train with plain ``compile``/``fit`` on the ``(B, B)`` logits.
On held-out pairs the demo reports top-1 image-to-text retrieval accuracy
next to chance, 1 / (number of held-out pairs).

Self-distillation: points from Gaussian clusters, sent through a random
nonlinear map, are augmented into 2 global and 2 local views. A student and an
EMA teacher train with ``DINOLoss`` plus ``0.1 * KoLeoLoss`` on the student's
embeddings, and once more without KoLeo. The demo reports whether the
embedding of held-out points collapsed: the mean per-dimension std and the
effective rank of the unit-norm embeddings (1 for a collapse onto a line, at
most the embedding size), and the 1-nearest-neighbour cluster accuracy.
"""

import dataclasses

import keras
import numpy as np

from dl_techniques.losses.core.demo import DemoRow
from dl_techniques.losses.self_supervised.clip_contrastive_loss import CLIPContrastiveLoss
from dl_techniques.losses.self_supervised.contrastive_logits_layer import ContrastiveLogitsLayer
from dl_techniques.losses.self_supervised.demo import data
from dl_techniques.losses.self_supervised.demo.dino import DINOStudentTeacher
from dl_techniques.losses.self_supervised.siglip_contrastive_loss import SigLIPContrastiveLoss

PLOT_FILE = "self_supervised.png"
SEED = 11
LATENT_DIM = 8
IMAGE_DIM = 32
TEXT_DIM = 24
SHARED_DIM = 32
CLUSTERS = 8
CLUSTER_LATENT_DIM = 6
POINT_DIM = 24
EMBEDDING_DIM = 16
PROTOTYPES = 32
GLOBAL_CROPS = 2
LOCAL_CROPS = 2
KOLEO_WEIGHT = 0.1


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo's data and training; the defaults take about half a minute."""

    train_pairs: int = 4096
    test_pairs: int = 256
    contrastive_epochs: int = 8
    contrastive_batch_size: int = 256
    train_points: int = 2048
    test_points: int = 512
    dino_epochs: int = 12
    dino_batch_size: int = 128


TINY_SETTINGS = DemoSettings(
    train_pairs=128,
    test_pairs=32,
    contrastive_epochs=1,
    contrastive_batch_size=64,
    train_points=128,
    test_points=64,
    dino_epochs=1,
    dino_batch_size=64,
)


def run_demo(output_dir, progress, settings=None):
    """Trains the retrieval and self-distillation models and returns their rows.

    Args:
        output_dir: ``pathlib.Path`` where ``self_supervised.png`` is written
            when matplotlib is installed.
        progress: A ``dl_techniques.losses.core.demo.Progress``; one step is
            reported per training run.
        settings: A ``DemoSettings``; ``TINY_SETTINGS`` runs in seconds (for
            tests). Defaults to ``DemoSettings()``.

    Returns:
        A list of ``DemoRow``: retrieval accuracy for CLIP and SigLIP, and
        per-dimension std, effective rank and 1-NN accuracy of the DINO
        embeddings with and without KoLeo.
    """
    settings = settings or DemoSettings()
    rows = []
    chance = 1.0 / settings.test_pairs
    retrieval = {}
    for loss_name, loss, logits_layer in _contrastive_setups():
        progress.step(f"training two encoders with {loss_name}")
        accuracy = _train_retrieval(loss, logits_layer, settings)
        retrieval[loss_name] = accuracy
        rows.append(
            DemoRow(
                f"self-supervised: {loss_name}",
                f"top-1 retrieval, {settings.test_pairs} held-out pairs",
                accuracy,
                f"chance 1/{settings.test_pairs} = {chance:.4f}",
            )
        )

    spectra = {}
    for label, koleo_weight in (("DINOLoss + KoLeoLoss", KOLEO_WEIGHT), ("DINOLoss alone", 0.0)):
        progress.step(f"self-distillation, {label}")
        result = _train_dino(koleo_weight, settings)
        spectra[label] = result["singular_values"]
        rows.extend(
            [
                DemoRow(
                    f"self-supervised: {label}",
                    "per-dimension std of unit embeddings",
                    result["std"],
                    f"collapsed 0; untrained {result['initial_std']:.3f}",
                ),
                DemoRow(
                    f"self-supervised: {label}",
                    "effective rank of the embeddings",
                    result["effective_rank"],
                    f"collapsed 1, max {EMBEDDING_DIM}; untrained "
                    f"{result['initial_effective_rank']:.2f}",
                ),
                DemoRow(
                    f"self-supervised: {label}",
                    "1-NN cluster accuracy, held-out",
                    result["nn_accuracy"],
                    f"chance 1/{CLUSTERS} = {1.0 / CLUSTERS:.3f}",
                ),
            ]
        )
    _save_plot(output_dir / PLOT_FILE, retrieval, chance, spectra)
    return rows


def _contrastive_setups():
    return [
        (
            "CLIPContrastiveLoss",
            CLIPContrastiveLoss(temperature=None),
            lambda: ContrastiveLogitsLayer(initial_scale=1.0 / 0.07),
        ),
        (
            "SigLIPContrastiveLoss",
            SigLIPContrastiveLoss(temperature=None, bias=None),
            lambda: ContrastiveLogitsLayer(initial_scale=10.0, use_bias=True, initial_bias=-10.0),
        ),
    ]


def _train_retrieval(loss, make_logits_layer, settings):
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    images, texts = data.paired_modalities(
        rng, settings.train_pairs + settings.test_pairs, LATENT_DIM, IMAGE_DIM, TEXT_DIM
    )
    train, test = slice(settings.train_pairs), slice(settings.train_pairs, None)

    image_input, text_input = keras.Input((IMAGE_DIM,)), keras.Input((TEXT_DIM,))
    image_encoder = _encoder(IMAGE_DIM, "image_encoder")
    text_encoder = _encoder(TEXT_DIM, "text_encoder")
    logits = make_logits_layer()((image_encoder(image_input), text_encoder(text_input)))
    model = keras.Model([image_input, text_input], logits)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3), loss=loss)
    # The losses ignore y; Keras still wants one array with the batch axis.
    dummy_targets = np.zeros((settings.train_pairs,), "float32")
    model.fit(
        [images[train], texts[train]],
        dummy_targets,
        batch_size=settings.contrastive_batch_size,
        epochs=settings.contrastive_epochs,
        shuffle=True,
        verbose=0,
    )
    return data.top1_retrieval_accuracy(
        _to_numpy(image_encoder(images[test])), _to_numpy(text_encoder(texts[test]))
    )


def _encoder(input_dim, name):
    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(64, activation="gelu"),
            keras.layers.Dense(64, activation="gelu"),
            keras.layers.Dense(SHARED_DIM),
        ],
        name=name,
    )


def _train_dino(koleo_weight, settings):
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    points, labels = data.clustered_points(
        rng, settings.train_points + settings.test_points, CLUSTERS, CLUSTER_LATENT_DIM, POINT_DIM
    )
    train_points, train_labels = points[: settings.train_points], labels[: settings.train_points]
    test_points, test_labels = points[settings.train_points :], labels[settings.train_points :]
    crops = data.multi_crop_views(rng, train_points, GLOBAL_CROPS, LOCAL_CROPS)

    model = DINOStudentTeacher(
        embedding_dim=EMBEDDING_DIM,
        out_dim=PROTOTYPES,
        num_global_crops=GLOBAL_CROPS,
        koleo_weight=koleo_weight,
    )
    model.build(crops.shape)
    initial_std, initial_rank, _ = data.embedding_statistics(_embed(model, test_points))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=2e-3))
    model.fit(
        crops,
        batch_size=settings.dino_batch_size,
        epochs=settings.dino_epochs,
        shuffle=True,
        verbose=0,
    )
    test_embeddings = _embed(model, test_points)
    std, effective_rank, singular_values = data.embedding_statistics(test_embeddings)
    nn_accuracy = data.nearest_neighbour_accuracy(
        _embed(model, train_points), train_labels, test_embeddings, test_labels
    )
    return {
        "std": std,
        "effective_rank": effective_rank,
        "singular_values": singular_values,
        "nn_accuracy": nn_accuracy,
        "initial_std": initial_std,
        "initial_effective_rank": initial_rank,
    }


def _embed(model, points):
    return _to_numpy(model.embed(keras.ops.convert_to_tensor(points)))


def _to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def _save_plot(path, retrieval, chance, spectra):
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4))
    names = list(retrieval)
    left.bar(names, [retrieval[name] for name in names], color=["tab:blue", "tab:orange"])
    left.axhline(chance, color="black", linestyle="--", label=f"chance {chance:.4f}")
    left.set_ylim(0.0, 1.0)
    left.set_ylabel("top-1 retrieval accuracy (held-out)")
    left.legend()
    for label, singular_values in spectra.items():
        indices = np.arange(1, len(singular_values) + 1)
        right.semilogy(indices, singular_values, marker="o", label=label)
    right.set_xlabel("singular value index")
    right.set_ylabel("singular value of centred unit embeddings")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
