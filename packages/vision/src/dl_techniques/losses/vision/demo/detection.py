"""Demo: a tiny anchor-free detector trained with the YOLOv12 detection loss on generated images."""

import logging
import time

import keras
import numpy as np

from dl_techniques.losses.core.demo import DemoRow
from dl_techniques.losses.vision import _yolo_anchors
from dl_techniques.losses.vision.yolov12_multitask_loss import create_yolov12_multitask_loss

logger = logging.getLogger(__name__)

_INPUT_SHAPE = (64, 64)
_CLASSES = 3
_REG_MAX = 16
_MAX_BOXES = 2
_COLOURS = np.array([[1.0, 0.1, 0.1], [0.1, 1.0, 0.1], [0.1, 0.2, 1.0]], "float32")
_DETECTIONS_PER_IMAGE = 10
_DEMO = "vision: YOLOv12 detection loss"


def run_detection_demo(output_dir, progress, train_seconds=60.0, train_images=512, test_images=128):
    """Trains the detector for ``train_seconds``; returns recall at IoU 0.5 before and after."""
    rng = np.random.default_rng(0)
    train_images, train_boxes = _make_images(rng, train_images)
    test_images, test_boxes = _make_images(rng, test_images)
    keras.utils.set_random_seed(0)
    model = _tiny_detector()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=create_yolov12_multitask_loss(
            tasks=["detection"], num_detection_classes=_CLASSES, input_shape=_INPUT_SHAPE
        ),
    )
    before = _recall(model, test_images, test_boxes)
    progress.step(f"recall@0.5 before training {before:.3f}; training ~{train_seconds:.0f}s")
    started, epochs = time.perf_counter(), 0
    while epochs == 0 or time.perf_counter() - started < train_seconds:
        history = model.fit(train_images, train_boxes, batch_size=32, epochs=1, verbose=0)
        epochs += 1
        progress.step(f"epoch {epochs}: loss {history.history['loss'][-1]:.3f}")
    after = _recall(model, test_images, test_boxes)
    _plot(output_dir, model, test_images[:6], test_boxes[:6])
    return [
        DemoRow(_DEMO, "recall@IoU0.5 (top-10 boxes), before training", before, "chance level"),
        DemoRow(
            _DEMO,
            f"recall@IoU0.5 (top-10 boxes), after {epochs} epochs",
            after,
            f"before: {before:.3f}",
        ),
    ]


def _make_images(rng, count):
    """Noise images with 1-2 coloured rectangles; boxes ``(count, 2, 5)``, padding class -1."""
    height, width = _INPUT_SHAPE
    images = rng.uniform(0.0, 0.35, size=(count, height, width, 3)).astype("float32")
    boxes = np.full((count, _MAX_BOXES, 5), -1.0, "float32")
    boxes[..., 1:] = 0.0
    for index in range(count):
        for slot in range(rng.integers(1, _MAX_BOXES + 1)):
            box_w, box_h = rng.integers(12, 36, size=2)
            x1, y1 = rng.integers(0, width - box_w), rng.integers(0, height - box_h)
            label = rng.integers(_CLASSES)
            colour = _COLOURS[label] * rng.uniform(0.7, 1.0)
            images[index, y1 : y1 + box_h, x1 : x1 + box_w] = colour
            boxes[index, slot] = [label, x1, y1, x1 + box_w, y1 + box_h]
    return images, boxes


def _tiny_detector():
    channels = 4 * _REG_MAX + _CLASSES
    image = keras.Input(_INPUT_SHAPE + (3,))
    features = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(image)
    features = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(features)
    levels = []
    for _ in _yolo_anchors.STRIDES:
        features = keras.layers.Conv2D(48, 3, strides=2, padding="same", activation="relu")(
            features
        )
        hidden = keras.layers.Conv2D(48, 3, padding="same", activation="relu")(features)
        # As Ultralytics' Detect head: box bins start flat, class logits at a
        # prior of 1%, so the many background anchors do not swamp the start.
        bias = np.concatenate([np.ones(4 * _REG_MAX), np.full(_CLASSES, np.log(0.01 / 0.99))])
        head = keras.layers.Conv2D(
            channels, 1, bias_initializer=keras.initializers.Constant(bias.astype("float32"))
        )(hidden)
        levels.append(keras.layers.Reshape((-1, channels))(head))
    return keras.Model(image, keras.layers.Concatenate(axis=1)(levels))


def _decode(predictions):
    """Numpy decoding of the head: ``(boxes (B, A, 4) pixels, scores (B, A, C))``."""
    points, strides = (
        keras.ops.convert_to_numpy(part) for part in _yolo_anchors.anchor_points(_INPUT_SHAPE)
    )
    bins = predictions[..., : 4 * _REG_MAX].reshape(predictions.shape[:2] + (4, _REG_MAX))
    probabilities = np.exp(bins - bins.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    distances = (probabilities @ np.arange(_REG_MAX)) * strides[None, :, None]
    boxes = np.concatenate([points - distances[..., :2], points + distances[..., 2:]], -1)
    scores = 0.5 * (1.0 + np.tanh(0.5 * predictions[..., 4 * _REG_MAX :]))  # sigmoid
    return boxes, scores


def _top_detections(boxes, scores):
    best = scores.max(-1)
    order = np.argsort(-best)[:_DETECTIONS_PER_IMAGE]
    return boxes[order], scores[order].argmax(-1)


def _iou(box, others):
    low = np.maximum(box[:2], others[:, :2])
    high = np.minimum(box[2:], others[:, 2:])
    overlap_w, overlap_h = np.clip(high - low, 0, None).T
    inter = overlap_w * overlap_h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / (area + areas - inter + 1e-9)


def _recall(model, images, gt):
    """Share of boxes matched (same class, IoU >= 0.5) by one of the image's top-10 detections."""
    boxes, scores = _decode(keras.ops.convert_to_numpy(model.predict(images, verbose=0)))
    found = total = 0
    for image_boxes, image_scores, rows in zip(boxes, scores, gt, strict=True):
        detected, labels = _top_detections(image_boxes, image_scores)
        for row in rows[rows[:, 0] >= 0]:
            total += 1
            same_class = labels == int(row[0])
            if same_class.any():
                found += bool(np.any(_iou(row[1:], detected[same_class]) >= 0.5))
    return found / max(total, 1)


def _plot(output_dir, model, images, gt):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed; skipping the detection plot")
        return
    boxes, scores = _decode(keras.ops.convert_to_numpy(model.predict(images, verbose=0)))
    figure, axes = plt.subplots(1, len(images), figsize=(2.6 * len(images), 3))
    panels = zip(axes, images, boxes, scores, gt, strict=True)
    for axis, image, image_boxes, image_scores, rows in panels:
        axis.imshow(image)
        for row in rows[rows[:, 0] >= 0]:
            x1, y1, x2, y2 = row[1:]
            axis.add_patch(
                plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ls="--", ec="white")
            )
        best = np.argmax(image_scores.max(-1))
        x1, y1, x2, y2 = image_boxes[best]
        axis.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=2, ec="yellow"))
        label, score = image_scores[best].argmax(), image_scores[best].max()
        axis.set_title(f"class {label} ({score:.2f})", fontsize=8)
        axis.axis("off")
    figure.suptitle("YOLOv12 detection loss: best box (yellow), ground truth (dashed)")
    figure.tight_layout()
    figure.savefig(output_dir / "vision_yolo_detection.png", dpi=110)
    plt.close(figure)
