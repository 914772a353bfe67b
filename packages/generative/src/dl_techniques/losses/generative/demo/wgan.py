"""The WGAN-GP half of the generative demo: a mixture of 8 Gaussians in 2-D.

``WGANGPModel`` is trained with stock ``fit`` on samples of eight Gaussians
placed on a circle. After training, the generated samples are compared with
fresh target samples: the fraction of the 8 modes the generator covers and
the sliced Wasserstein distance, both computed in numpy.
"""

import time

import keras
import numpy as np

from dl_techniques.losses.core.demo import DemoRow

_MODES = 8
_RADIUS = 2.0
_MODE_STD = 0.05
_LATENT_DIM = 8
_TRAIN_SAMPLES = 8192
_BATCH = 256
_EPOCHS = 60
_TIME_LIMIT_S = 25.0
_EVALUATION_SAMPLES = 4000
_MODE_DISTANCE = 6 * _MODE_STD
_MODE_SHARE = 0.02
_DEMO = "generative: WGAN-GP, 8 Gaussians"


def run_wgan_demo(output_dir, progress):
    """Trains the WGAN-GP and returns its rows for the summary table."""
    from dl_techniques.losses.generative.wgan_gp_model import WGANGPModel

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    real = mixture_samples(rng, _TRAIN_SAMPLES)
    gan = WGANGPModel(
        _generator(), _critic(), latent_dim=_LATENT_DIM, critic_steps=5, lambda_gp=0.1, seed=0
    )
    gan.compile(
        critic_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9),
        generator_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9),
    )
    latent = rng.normal(size=(_EVALUATION_SAMPLES, _LATENT_DIM)).astype("float32")
    target = mixture_samples(rng, _EVALUATION_SAMPLES)
    untrained = _generate(gan, latent)
    progress.step(
        f"training WGANGPModel.fit: up to {_EPOCHS} epochs of {_TRAIN_SAMPLES} samples "
        f"or {_TIME_LIMIT_S:.0f}s"
    )
    started = time.perf_counter()
    gan.fit(
        real,
        batch_size=_BATCH,
        epochs=_EPOCHS,
        shuffle=True,
        verbose=0,
        callbacks=[_TimeLimit(_TIME_LIMIT_S)],
    )
    seconds = time.perf_counter() - started
    steps = int(gan.generator_optimizer.iterations.numpy())
    generated = _generate(gan, latent)
    directions = _directions(np.random.default_rng(1))
    distance = sliced_wasserstein(generated, target, directions)
    noise_floor = sliced_wasserstein(mixture_samples(rng, _EVALUATION_SAMPLES), target, directions)
    coverage = mode_coverage(generated)
    progress.step(
        f"{steps} steps in {seconds:.0f}s (compiling included): {coverage * _MODES:.0f}/8 modes, "
        f"sliced W1 {distance:.3f}"
    )
    plot = _scatter_plot(output_dir, target, untrained, generated)
    progress.step(f"plot {plot}" if plot else "matplotlib not installed: no plot")
    return [
        DemoRow(_DEMO, "fraction of the 8 modes covered", coverage, "1.0 = every mode"),
        DemoRow(
            _DEMO,
            "sliced Wasserstein distance to the target",
            distance,
            f"untrained {sliced_wasserstein(untrained, target, directions):.3f}, "
            f"target vs fresh target {noise_floor:.3f}",
        ),
    ]


def mixture_samples(rng, count):
    """Returns ``count`` samples of eight Gaussians on a circle of radius 2."""
    angles = 2 * np.pi * rng.integers(0, _MODES, size=count) / _MODES
    centres = _RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return (centres + rng.normal(scale=_MODE_STD, size=(count, 2))).astype("float32")


def mode_coverage(samples):
    """Fraction of the modes that hold at least 2% of the samples within 6 std."""
    angles = 2 * np.pi * np.arange(_MODES) / _MODES
    centres = _RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    distances = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=-1)
    nearest = np.argmin(distances, axis=1)
    close = np.min(distances, axis=1) <= _MODE_DISTANCE
    counts = np.bincount(nearest[close], minlength=_MODES)
    return float(np.mean(counts >= _MODE_SHARE * len(samples)))


def sliced_wasserstein(first, second, directions):
    """Mean over directions of the 1-D Wasserstein-1 distance of the projections.

    Both sample sets have the same size, so the 1-D distance is the mean
    absolute difference of the sorted projections.
    """
    first_projected = np.sort(np.asarray(first, "float64") @ directions.T, axis=0)
    second_projected = np.sort(np.asarray(second, "float64") @ directions.T, axis=0)
    return float(np.mean(np.abs(first_projected - second_projected)))


def _directions(rng, count=128):
    directions = rng.normal(size=(count, 2))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


def _generator():
    return keras.Sequential(
        [
            keras.Input((_LATENT_DIM,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(2),
        ]
    )


def _critic():
    return keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(1),
        ]
    )


def _generate(gan, latent):
    return np.asarray(gan.generator.predict(latent, batch_size=4096, verbose=0), "float64")


class _TimeLimit(keras.callbacks.Callback):
    """Stops training once ``seconds`` have passed since the first step ended.

    The first step includes compiling the train step, which is left out of
    the training time so that every backend trains for about as long.
    """

    def __init__(self, seconds):
        super().__init__()
        self._seconds = seconds
        self._deadline = None

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._deadline is None:
            self._deadline = now + self._seconds
        elif now > self._deadline:
            self.model.stop_training = True


def _scatter_plot(output_dir, target, untrained, generated):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(10, 5), sharex=True, sharey=True)
    for axis, samples, title in (
        (axes[0], untrained, "before training"),
        (axes[1], generated, "after WGANGPModel.fit"),
    ):
        axis.scatter(target[:, 0], target[:, 1], s=2, alpha=0.3, label="target")
        axis.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.3, label="generated")
        axis.set_title(f"WGAN-GP, 8 Gaussians: {title}")
        axis.set_aspect("equal")
        axis.legend(loc="upper right", markerscale=5)
    path = output_dir / "generative_wgan_gp_8_gaussians.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
