"""NanoVLMLoss against Keras' cross-entropy, and the cost of WGAN-GP's gradient penalty.

``language-model``: all losses see the same ``(batch, length, vocab)`` float32
logits, by default ``(8, 512, 32000)`` (524 MB), and ``(batch, length)`` token
ids. The ids are all valid, since Keras' loss cannot take an ignore id such as
-100; ``NanoVLMLoss`` treats ignored ids at the same cost (a masked safe id).
Rows: ``NanoVLMLoss(shift=False)`` scores the same tokens Keras scores, so its
ratio measures the loss's own overhead (masking, token mean); ``NanoVLMLoss()``
is the default next-token form; ``label_smoothing=0.1`` adds one more gather and
mean per token. Target: ratio <= 1.2. Where torch is installed, the native
``F.cross_entropy(ignore_index=-100)`` (and with ``label_smoothing=0.1``) in
eager torch on the same data is a reference row too, on every Keras backend.

``wgan-gp``: one critic step, the critic loss on a real and a fake batch and its
gradient with respect to the critic's weights (the optimizer update, the same in
both, is left out), with and without ``compute_gradient_penalty`` (10.0). The
critic is an MLP ``D -> H -> H -> 1`` with ReLU, written with ``keras.ops`` on
one flat weight vector, so the harness differentiates with respect to that
vector. The penalty adds an input-gradient pass through the critic and its
backward pass (double backprop); measured ratios were 1.6 (jax, tensorflow) and
2.1 (eager torch) on a shared 2-core CPU.
"""

import keras
import numpy as np
from benchmarking import (
    Case,
    TorchReference,
    print_pair_table,
    print_ratio_table,
    torch_available,
    torch_reference_note,
)

from dl_techniques.losses.generative.gradient_penalty import compute_gradient_penalty
from dl_techniques.losses.generative.nano_vlm_loss import NanoVLMLoss

LM_BASELINE = "SparseCategoricalCrossentropy"
CRITIC_BASELINE = "wasserstein"


def run_language_model(params, timing):
    shape = (params["batch"], params["length"])
    rng = np.random.default_rng(0)
    labels = keras.ops.convert_to_tensor(rng.integers(0, params["vocab"], size=shape), "int32")
    logits = keras.ops.convert_to_tensor(
        rng.standard_normal(size=(*shape, params["vocab"]), dtype=np.float32)
    )
    losses = [
        ("NanoVLMLoss(shift=False)", NanoVLMLoss(shift=False)),
        ("NanoVLMLoss()", NanoVLMLoss()),
        ("NanoVLMLoss(smoothing=0.1)", NanoVLMLoss(label_smoothing=0.1)),
        (LM_BASELINE, keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
    ]
    if torch_available():
        losses += torch_cross_entropy_references()
    medians = timing.medians([(label, loss, labels, logits) for label, loss in losses])
    timing.print_header(f"logits {(*shape, params['vocab'])}; forward + gradient w.r.t. logits")
    print_ratio_table("loss", [label for label, _ in losses], medians, LM_BASELINE, "ms", 1.2)
    if not torch_available():
        print(torch_reference_note())
        return
    print()
    print("against F.cross_entropy, eager torch, same data:")
    plain, smoothed = "F.cross_entropy(ignore_index=-100)", "F.cross_entropy(smoothing=0.1)"
    pairs = [
        ("NanoVLMLoss(shift=False)", plain),
        ("NanoVLMLoss()", plain),
        ("NanoVLMLoss(smoothing=0.1)", smoothed),
    ]
    print_pair_table(pairs, medians, "ms")


def torch_cross_entropy_references():
    """``F.cross_entropy`` over every token, as rows ``(label, TorchReference)``."""
    import torch.nn.functional as functional

    def cross_entropy(smoothing):
        def loss(labels, logits):
            return functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                labels.reshape(-1).long(),
                ignore_index=-100,
                label_smoothing=smoothing,
            )

        return TorchReference(loss)

    return [
        ("F.cross_entropy(ignore_index=-100)", cross_entropy(0.0)),
        ("F.cross_entropy(smoothing=0.1)", cross_entropy(0.1)),
    ]


def critic_fn(features, hidden):
    """Returns ``critic(x, weights)`` for an MLP whose weights are one flat vector."""
    shapes = [(features, hidden), (hidden,), (hidden, hidden), (hidden,), (hidden, 1), (1,)]
    sizes = [int(np.prod(shape)) for shape in shapes]
    offsets = np.cumsum([0, *sizes])

    def critic(samples, weights):
        tensors = [
            keras.ops.reshape(weights[start:stop], shape)
            for start, stop, shape in zip(offsets[:-1], offsets[1:], shapes, strict=True)
        ]
        hidden_1 = keras.ops.relu(keras.ops.matmul(samples, tensors[0]) + tensors[1])
        hidden_2 = keras.ops.relu(keras.ops.matmul(hidden_1, tensors[2]) + tensors[3])
        return keras.ops.matmul(hidden_2, tensors[4]) + tensors[5]

    return critic, int(offsets[-1])


def run_wgan_gp(params, timing):
    batch, features, hidden = params["batch"], params["features"], params["hidden"]
    critic, weight_count = critic_fn(features, hidden)
    rng = np.random.default_rng(0)
    samples = keras.ops.convert_to_tensor(rng.normal(size=(2, batch, features)).astype("float32"))
    weights = keras.ops.convert_to_tensor(
        rng.normal(scale=0.1, size=weight_count).astype("float32")
    )

    def wasserstein(real_and_fake, critic_weights):
        real_scores = critic(real_and_fake[0], critic_weights)
        fake_scores = critic(real_and_fake[1], critic_weights)
        return keras.ops.mean(fake_scores) - keras.ops.mean(real_scores)

    def wasserstein_with_penalty(real_and_fake, critic_weights):
        penalty = compute_gradient_penalty(
            lambda values: critic(values, critic_weights),
            real_and_fake[0],
            real_and_fake[1],
            lambda_gp=10.0,
            seed=0,
        )
        return wasserstein(real_and_fake, critic_weights) + penalty

    steps = [("wasserstein + penalty", wasserstein_with_penalty), (CRITIC_BASELINE, wasserstein)]
    medians = timing.medians([(label, fn, samples, weights) for label, fn in steps])
    timing.print_header(
        f"critic {features}-{hidden}-{hidden}-1, batch {batch} real + {batch} fake; "
        "loss + gradient w.r.t. the critic weights"
    )
    print_ratio_table("critic step", [label for label, _ in steps], medians, CRITIC_BASELINE)


CASES = [
    Case(
        "language-model",
        "NanoVLMLoss vs keras.losses.SparseCategoricalCrossentropy on LM logits (target <= 1.2)",
        run_language_model,
        params={"batch": 8, "length": 512, "vocab": 32000},
        quick={"batch": 2, "length": 16, "vocab": 64},
        repetitions=20,
        warmup=2,
    ),
    Case(
        "wgan-gp",
        "a WGAN-GP critic step with the gradient penalty vs one without it",
        run_wgan_gp,
        params={"batch": 256, "features": 2, "hidden": 128},
        quick={"batch": 16, "hidden": 8},
        repetitions=200,
        warmup=10,
    ),
]


def run_hinge_r1(params, timing):
    from dl_techniques.losses.generative.hinge_gan_loss import HingeGANLoss
    from dl_techniques.losses.generative.non_saturating_gan_loss import NonSaturatingGANLoss
    from dl_techniques.losses.generative.r1_penalty import r1_penalty

    batch, features, hidden = params["batch"], params["features"], params["hidden"]
    critic, weight_count = critic_fn(features, hidden)
    rng = np.random.default_rng(1)
    samples = keras.ops.convert_to_tensor(rng.normal(size=(2 * batch, features)).astype("float32"))
    weights = keras.ops.convert_to_tensor(
        rng.normal(scale=0.1, size=weight_count).astype("float32")
    )

    def adversarial(loss):
        def step(real_and_fake, critic_weights):
            scores = critic(real_and_fake, critic_weights)
            # Labels built from the traced scores: 1 for the real half, 0 for the fake one.
            labels = keras.ops.concatenate(
                [keras.ops.ones_like(scores[:batch]), keras.ops.zeros_like(scores[batch:])]
            )
            return loss(labels, scores)

        return step

    def with_r1(loss):
        def step(real_and_fake, critic_weights):
            penalty = r1_penalty(
                lambda values: critic(values, critic_weights), real_and_fake[:batch], gamma=10.0
            )
            return adversarial(loss)(real_and_fake, critic_weights) + penalty

        return step

    steps = [
        ("hinge + R1", with_r1(HingeGANLoss())),
        ("non-saturating", adversarial(NonSaturatingGANLoss())),
        ("hinge", adversarial(HingeGANLoss())),
    ]
    medians = timing.medians([(label, fn, samples, weights) for label, fn in steps])
    timing.print_header(
        f"critic {features}-{hidden}-{hidden}-1, batch {batch} real + {batch} fake; "
        "loss + gradient w.r.t. the critic weights"
    )
    print_ratio_table("critic step", [label for label, _ in steps], medians, "hinge")


CASES.append(
    Case(
        "hinge-r1",
        "a hinge critic step with R1 on the real half, and the non-saturating loss, vs hinge alone",
        run_hinge_r1,
        params={"batch": 256, "features": 2, "hidden": 128},
        quick={"batch": 16, "hidden": 8},
        repetitions=200,
        warmup=10,
    )
)
