"""The hinge-GAN half of the generative demo: R1 on the mixture of 8 Gaussians.

A ``WGANGPModel`` subclass (the README's stock-``fit`` recipe) swaps the
Wasserstein losses for ``HingeGANLoss`` and the interpolate penalty for
``r1_penalty`` on the real batch, and trains with one critic step per
generator step on the same data, networks and evaluation as the WGAN-GP demo.
"""

import time

import keras
import numpy as np

from dl_techniques.losses.core.demo import DemoRow
from dl_techniques.losses.generative.demo import wgan
from dl_techniques.losses.generative.hinge_gan_loss import HingeGANLoss
from dl_techniques.losses.generative.r1_penalty import r1_penalty
from dl_techniques.losses.generative.wgan_gp_model import WGANGPModel

_GAMMA = 0.1
_DEMO = "generative: hinge GAN + R1, 8 Gaussians"


class AdversarialGAN(WGANGPModel):
    """``WGANGPModel``'s ``fit`` with a critic/generator loss pair and R1 on real samples."""

    def __init__(self, generator, critic, latent_dim, loss_class, gamma=10.0, **kwargs):
        super().__init__(generator, critic, latent_dim, lambda_gp=0.0, **kwargs)
        self.gamma = gamma
        self.critic_loss_fn = loss_class()
        self.generator_loss_fn = loss_class(for_critic=False)

    def critic_losses(self, real):
        fake = self.generator(self.sample_latent(keras.ops.shape(real)[0]), training=True)
        real_scores = self.critic(real, training=True)
        fake_scores = self.critic(keras.ops.stop_gradient(fake), training=True)
        labels = keras.ops.concatenate(
            [keras.ops.ones_like(real_scores), keras.ops.zeros_like(fake_scores)]
        )
        scores = keras.ops.concatenate([real_scores, fake_scores])
        penalty = r1_penalty(self.critic, real, gamma=self.gamma)
        return self.critic_loss_fn(labels, scores) + penalty, penalty

    def generator_loss(self, batch_size):
        fake = self.generator(self.sample_latent(batch_size), training=True)
        scores = self.critic(fake, training=True)
        return self.generator_loss_fn(keras.ops.zeros_like(scores), scores)


def run_adversarial_demo(output_dir, progress):
    """Trains the hinge GAN with R1 and returns its rows for the summary table."""
    rng = np.random.default_rng(2)
    keras.utils.set_random_seed(2)
    real = wgan.mixture_samples(rng, wgan._TRAIN_SAMPLES)
    gan = AdversarialGAN(
        wgan._generator(),
        wgan._critic(),
        latent_dim=wgan._LATENT_DIM,
        loss_class=HingeGANLoss,
        gamma=_GAMMA,
        critic_steps=1,
        seed=2,
    )
    gan.compile(
        critic_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9),
        generator_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9),
    )
    latent = rng.normal(size=(wgan._EVALUATION_SAMPLES, wgan._LATENT_DIM)).astype("float32")
    target = wgan.mixture_samples(rng, wgan._EVALUATION_SAMPLES)
    progress.step(
        f"training the hinge GAN + R1 (gamma {_GAMMA}) with stock fit: up to {wgan._EPOCHS} "
        f"epochs or {wgan._TIME_LIMIT_S:.0f}s"
    )
    started = time.perf_counter()
    gan.fit(
        real,
        batch_size=wgan._BATCH,
        epochs=wgan._EPOCHS,
        shuffle=True,
        verbose=0,
        callbacks=[wgan._TimeLimit(wgan._TIME_LIMIT_S)],
    )
    seconds = time.perf_counter() - started
    generated = wgan._generate(gan, latent)
    directions = wgan._directions(np.random.default_rng(1))
    distance = wgan.sliced_wasserstein(generated, target, directions)
    coverage = wgan.mode_coverage(generated)
    progress.step(f"{seconds:.0f}s: {coverage * 8:.0f}/8 modes, sliced W1 {distance:.3f}")
    return [
        DemoRow(
            _DEMO, "fraction of the 8 modes covered (hinge + R1)", coverage, "1.0 = every mode"
        ),
        DemoRow(
            _DEMO,
            "sliced Wasserstein distance to the target (hinge + R1)",
            distance,
            "same data and networks as the WGAN-GP rows",
        ),
    ]
