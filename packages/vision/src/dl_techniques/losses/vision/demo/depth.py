"""Depth half of the vision demo: affine-invariant training vs plain L1.

Scenes are a receding ground plane with a few boxes and discs standing on
it; the image shows shaded surfaces (nearer is brighter, each object has its
own albedo) under noise. The training target of every image is its depth
under a random positive scale and shift, as when datasets of unknown camera
calibration are mixed. The held-out error aligns each prediction to the true
depth by least squares over scale and shift first (the MiDaS protocol), so
it measures only the relative structure a network has learnt.
"""

import keras
import numpy as np

from dl_techniques.losses.core.demo import DemoRow

_FAR, _NEAR = 8.0, 2.0


def run_depth_demo(output_dir, progress, settings):
    """Trains the tiny network with both losses; returns the aligned errors."""
    from dl_techniques.losses.vision.affine_invariant_loss import AffineInvariantLoss

    rng = np.random.default_rng(7)
    size = settings.image_size
    train_images, train_depth = generate_scenes(rng, settings.train_images, size)
    test_images, test_depth = generate_scenes(rng, settings.test_images, size)
    train_targets = _random_affine(rng, train_depth)
    rows = []
    for label, loss in (
        ("AffineInvariantLoss", AffineInvariantLoss()),
        ("L1 (MeanAbsoluteError)", keras.losses.MeanAbsoluteError()),
    ):
        progress.step(f"depth: training with {label}")
        keras.utils.set_random_seed(3)
        model = _depth_network(size)
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss)
        model.fit(train_images, train_targets, batch_size=32, epochs=settings.epochs, verbose=0)
        predicted = np.asarray(model.predict(test_images, batch_size=256, verbose=0))[..., 0]
        error = aligned_absolute_relative_error(predicted, test_depth)
        rows.append(
            DemoRow(
                f"vision depth: {label}",
                "held-out AbsRel after least-squares scale+shift alignment",
                error,
                "lower is better; targets carry a random scale and shift per image",
            )
        )
    return rows


def generate_scenes(rng, count, size):
    """Returns ``(images (N, S, S, 1), depth (N, S, S))`` of generated scenes."""
    rows = np.arange(size, dtype=np.float64)[:, None] / (size - 1)
    columns = np.arange(size, dtype=np.float64)[None, :] / (size - 1)
    horizon = rng.uniform(0.15, 0.35, size=count)
    depth = np.empty((count, size, size))
    albedo = np.empty((count, size, size))
    for index in range(count):
        # The ground recedes from near (bottom row) to far (horizon); above
        # it the sky stays at the far plane.
        ground = (rows - horizon[index]) / (1.0 - horizon[index])
        scene = np.where(
            ground > 0, _FAR - (_FAR - _NEAR) * np.clip(ground, 0.0, 1.0), _FAR
        ) * np.ones_like(columns)
        surface = np.full_like(scene, rng.uniform(0.6, 0.8))
        for _ in range(rng.integers(1, 4)):
            base_row = rng.uniform(horizon[index] + 0.2, 1.0)
            centre = rng.uniform(0.1, 0.9)
            half_width = rng.uniform(0.08, 0.2)
            height = rng.uniform(0.15, 0.4)
            object_depth = _FAR - (_FAR - _NEAR) * (base_row - horizon[index]) / (
                1.0 - horizon[index]
            )
            inside = (rows <= base_row) & (rows >= base_row - height)
            if rng.random() < 0.5:
                inside = inside & (np.abs(columns - centre) <= half_width)
            else:
                radius = min(half_width, height / 2)
                inside = (rows - (base_row - radius)) ** 2 + (columns - centre) ** 2 <= radius**2
            nearer = inside & (object_depth < scene)
            scene = np.where(nearer, object_depth, scene)
            surface = np.where(nearer, rng.uniform(0.7, 1.0), surface)
        depth[index] = scene
        albedo[index] = surface
    # Brightness falls off with distance, so depth leaves a trace in the image.
    shading = _NEAR / depth * albedo
    images = shading + rng.normal(scale=0.05, size=shading.shape)
    return images[..., None].astype("float32"), depth.astype("float32")


def aligned_absolute_relative_error(predicted, depth):
    """Mean over images of ``mean |s p + t - d| / d``, with ``(s, t)`` fitted by least squares."""
    errors = []
    for image_prediction, image_depth in zip(predicted, depth, strict=True):
        design = np.stack([image_prediction.ravel(), np.ones(image_prediction.size)], axis=1)
        coefficients, *_ = np.linalg.lstsq(design, image_depth.ravel(), rcond=None)
        aligned = design @ coefficients
        errors.append(np.mean(np.abs(aligned - image_depth.ravel()) / image_depth.ravel()))
    return float(np.mean(errors))


def _random_affine(rng, depth):
    """Each image's depth under its own positive scale and shift."""
    scale = np.exp(rng.uniform(np.log(0.2), np.log(5.0), size=(len(depth), 1, 1)))
    shift = rng.uniform(-10.0, 10.0, size=(len(depth), 1, 1))
    return (scale * depth + shift).astype("float32")


def _depth_network(size):
    inputs = keras.Input((size, size, 1))
    features = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    features = keras.layers.Conv2D(16, 3, padding="same", dilation_rate=2, activation="relu")(
        features
    )
    features = keras.layers.Conv2D(16, 3, padding="same", dilation_rate=4, activation="relu")(
        features
    )
    outputs = keras.layers.Conv2D(1, 1)(features)
    return keras.Model(inputs, outputs)
