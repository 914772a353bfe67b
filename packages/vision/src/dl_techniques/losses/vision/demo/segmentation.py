"""Segmentation half of the vision demo: five losses on generated shapes.

Images are noise with bright discs, dark squares and, rarely, bright
triangles: a pixel's brightness separates discs from squares, but only the
outline around it tells a triangle from a disc. The same small encoder-decoder is trained with each
loss from ``create_segmentation_loss_function``; the held-out per-class IoU
and their mean (mIoU) are reported, the rare triangle class being the one
where region losses usually differ from cross-entropy.
"""

import keras
import numpy as np

from dl_techniques.losses.core.demo import DemoRow

CLASS_NAMES = ("background", "disc", "square", "triangle")
LOSS_NAMES = ("cross_entropy", "dice_ce", "focal_tversky", "lovasz", "generalized_dice_focal")
PLOT_FILE = "vision_segmentation.png"
_TRIANGLE_RATE = 0.2


def run_segmentation_demo(output_dir, progress, settings):
    """Trains one network per loss; returns per-class IoU and mIoU rows."""
    from dl_techniques.losses.vision.segmentation_loss import create_segmentation_loss_function
    from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig

    rng = np.random.default_rng(5)
    size = settings.image_size
    train_images, train_labels = generate_shapes(rng, settings.train_images, size)
    test_images, test_labels = generate_shapes(rng, settings.test_images, size)
    shares = np.bincount(train_labels.ravel(), minlength=len(CLASS_NAMES)) / train_labels.size
    progress.step(
        "segmentation: training pixel shares "
        + ", ".join(f"{name} {share:.3f}" for name, share in zip(CLASS_NAMES, shares, strict=True))
    )
    config = SegmentationLossConfig(num_classes=len(CLASS_NAMES), from_logits=True)
    rows, predictions = [], {}
    for loss_name in settings.segmentation_losses:
        progress.step(f"segmentation: training with {loss_name}")
        keras.utils.set_random_seed(4)
        model = _segmentation_network(size)
        model.compile(
            optimizer=keras.optimizers.Adam(3e-3),
            loss=create_segmentation_loss_function(loss_name, config),
        )
        model.fit(train_images, train_labels, batch_size=32, epochs=settings.epochs, verbose=0)
        logits = np.asarray(model.predict(test_images, batch_size=256, verbose=0))
        predicted = np.argmax(logits, axis=-1)
        predictions[loss_name] = predicted
        ious = per_class_iou(test_labels, predicted, len(CLASS_NAMES))
        demo = f"vision segmentation: {loss_name}"
        for class_name, iou in zip(CLASS_NAMES, ious, strict=True):
            rows.append(DemoRow(demo, f"held-out IoU, {class_name}", iou, "higher is better"))
        rows.append(
            DemoRow(demo, "held-out mIoU (4 classes)", float(np.mean(ious)), "higher is better")
        )
    plot = _plot_predictions(output_dir, test_images, test_labels, predictions)
    progress.step(f"segmentation: plot {plot}" if plot else "matplotlib not installed: no plot")
    return rows


def generate_shapes(rng, count, size):
    """Returns ``(images (N, S, S, 1) float32, labels (N, S, S) int32)``.

    Each image holds one to three shapes; a triangle appears in about
    ``_TRIANGLE_RATE`` of the images, which makes it the rare class.
    """
    rows = np.arange(size, dtype=np.float64)[:, None]
    columns = np.arange(size, dtype=np.float64)[None, :]
    labels = np.zeros((count, size, size), dtype=np.int32)
    brightness = np.zeros((count, size, size))
    for index in range(count):
        kinds = list(rng.integers(1, 3, size=rng.integers(1, 3)))
        if rng.random() < _TRIANGLE_RATE:
            kinds.append(3)
        for kind in rng.permutation(kinds):
            half = rng.uniform(0.12, 0.22) * size
            centre_row, centre_column = rng.uniform(half, size - 1 - half, size=2)
            if kind == 1:
                inside = (rows - centre_row) ** 2 + (columns - centre_column) ** 2 <= half**2
            elif kind == 2:
                inside = (np.abs(rows - centre_row) <= half * 0.85) & (
                    np.abs(columns - centre_column) <= half * 0.85
                )
            else:
                # Apex up: the half-width grows linearly from the apex row to the base.
                depth_below_apex = rows - (centre_row - half)
                inside = (
                    (depth_below_apex >= 0)
                    & (depth_below_apex <= 2 * half)
                    & (np.abs(columns - centre_column) <= depth_below_apex / 2)
                )
            labels[index][inside] = kind
            # Squares are dark, discs and triangles bright: only the outline
            # tells the rare triangle from a disc.
            sign = -1.0 if kind == 2 else 1.0
            brightness[index][inside] = sign * rng.uniform(0.6, 1.0)
    images = brightness + rng.normal(scale=0.3, size=brightness.shape)
    return images[..., None].astype("float32"), labels


def per_class_iou(labels, predicted, num_classes):
    """IoU of each class over all held-out pixels; a class nowhere in either scores 1."""
    ious = []
    for class_id in range(num_classes):
        truth, guess = labels == class_id, predicted == class_id
        union = np.sum(truth | guess)
        ious.append(float(np.sum(truth & guess) / union) if union else 1.0)
    return ious


def _segmentation_network(size):
    """A two-level encoder-decoder with a skip connection, about 20k weights."""
    inputs = keras.Input((size, size, 1))
    fine = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    coarse = keras.layers.MaxPooling2D()(fine)
    coarse = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(coarse)
    coarse = keras.layers.Conv2D(32, 3, padding="same", dilation_rate=2, activation="relu")(coarse)
    merged = keras.layers.Concatenate()([keras.layers.UpSampling2D()(coarse), fine])
    merged = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(merged)
    logits = keras.layers.Conv2D(len(CLASS_NAMES), 1)(merged)
    return keras.Model(inputs, logits)


def _plot_predictions(output_dir, images, labels, predictions, shown=4):
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import colors, pyplot
    except ImportError:
        return None
    palette = colors.ListedColormap(["#202020", "#1f77b4", "#2ca02c", "#d62728"])
    # Show the held-out images with a triangle first: the rare class is the story.
    order = np.argsort(~np.any(labels == 3, axis=(1, 2)), kind="stable")[:shown]
    columns = ["image", "truth", *predictions]
    figure, axes = pyplot.subplots(
        len(order), len(columns), figsize=(1.7 * len(columns), 1.7 * len(order)), squeeze=False
    )
    for row, index in enumerate(order):
        panels = [images[index, ..., 0], labels[index]] + [
            predicted[index] for predicted in predictions.values()
        ]
        for column, (title, panel) in enumerate(zip(columns, panels, strict=True)):
            axis = axes[row, column]
            if column == 0:
                axis.imshow(panel, cmap="gray")
            else:
                axis.imshow(panel, cmap=palette, vmin=0, vmax=len(CLASS_NAMES) - 1)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=8)
    figure.suptitle("held-out predictions: background, disc, square, triangle", fontsize=9)
    path = output_dir / PLOT_FILE
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return path.name
