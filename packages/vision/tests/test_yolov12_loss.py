"""YOLOv12MultiTaskLoss: the detection loss against a numpy re-implementation of Ultralytics'
v8DetectionLoss, empty and padded ground truth, gradients, bad input, multi-task weighting,
and a three-head model trained with fit."""

import math

import keras
import numpy as np
import pytest

from dl_techniques.losses.core.testing.numeric import compiled_on_jax
from dl_techniques.losses.vision.multi_task_model import MultiTaskModel
from dl_techniques.losses.vision.uncertainty_weighting_layer import UncertaintyWeightingLayer
from dl_techniques.losses.vision.yolov12_multitask_loss import (
    YOLOv12MultiTaskLoss,
    create_yolov12_multitask_loss,
)

INPUT_SHAPE = (64, 64)
ANCHORS = 64 + 16 + 4
CLASSES = 3
REG_MAX = 16
STRIDES = (8, 16, 32)


# ---------------------------------------------------------------------------
# Numpy reference of Ultralytics' v8DetectionLoss (utils/loss.py, utils/tal.py,
# utils/metrics.py bbox_iou), written from its algorithm in float64, with its
# data layout: per-box loops where Ultralytics indexes with masks.
# ---------------------------------------------------------------------------


def ref_ciou_parts(box1, box2, eps=1e-7):
    """IoU, the centre term rho^2 / d^2 and the aspect term v of bbox_iou(CIoU=True)."""
    x1a, y1a, x2a, y2a = box1
    x1b, y1b, x2b, y2b = box2
    wa, ha = x2a - x1a, max(y2a - y1a, eps)
    wb, hb = x2b - x1b, max(y2b - y1b, eps)
    inter = max(min(x2a, x2b) - max(x1a, x1b), 0) * max(min(y2a, y2b) - max(y1a, y1b), 0)
    iou = inter / (wa * ha + wb * hb - inter + eps)
    c2 = (max(x2a, x2b) - min(x1a, x1b)) ** 2 + (max(y2a, y2b) - min(y1a, y1b)) ** 2 + eps
    rho2 = ((x1b + x2b - x1a - x2a) ** 2 + (y1b + y2b - y1a - y2a) ** 2) / 4
    v = 4 / math.pi**2 * (math.atan(wb / hb) - math.atan(wa / ha)) ** 2
    return iou, rho2 / c2, v


def ref_ciou_alpha(box1, box2, eps=1e-7):
    """CIoU's aspect weight alpha, which Ultralytics computes under no_grad."""
    iou, _, v = ref_ciou_parts(box1, box2, eps)
    return v / (v - iou + (1 + eps))


def ref_ciou(box1, box2, eps=1e-7, alpha=None):
    iou, centre_term, v = ref_ciou_parts(box1, box2, eps)
    if alpha is None:
        alpha = ref_ciou_alpha(box1, box2, eps)
    return iou - (centre_term + v * alpha)


def ref_anchors(height, width):
    points, strides = [], []
    for stride in STRIDES:
        for row in range(height // stride):
            for col in range(width // stride):
                points.append((col + 0.5, row + 0.5))
                strides.append(stride)
    return np.array(points, np.float64), np.array(strides, np.float64)


def ref_detection_terms(
    gt,
    head,
    height=64,
    width=64,
    nc=CLASSES,
    reg_max=REG_MAX,
    topk=10,
    frozen=None,
    widen_below=STRIDES[1],
):
    """The unweighted box, cls and dfl terms; ``frozen`` reuses another call's targets.

    For the candidate test a box side shorter than ``widen_below`` is taken as
    ``STRIDES[1]`` (16 px) about the box centre: Ultralytics 8.4 compares with
    the value it widens to (``stride_val``); releases before compared with
    ``STRIDES[0]`` (8 px), which ``widen_below=8`` reproduces.
    """
    gt, head = np.asarray(gt, np.float64), np.asarray(head, np.float64)
    batch, num_gt = gt.shape[:2]
    grid, stride = ref_anchors(height, width)
    num_anchors = len(grid)
    logits = head[..., 4 * reg_max :]
    bins = head[..., : 4 * reg_max].reshape(batch, num_anchors, 4, reg_max)
    probs = np.exp(bins - bins.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    dist = probs @ np.arange(reg_max)
    pred_grid = np.concatenate([grid - dist[..., :2], grid + dist[..., 2:]], -1)
    pred_px = pred_grid * stride[:, None]
    anchors_px = grid * stride[:, None]
    scores = 1 / (1 + np.exp(-logits))

    labels, boxes = gt[..., 0], gt[..., 1:]
    mask_gt = labels >= 0
    candidates = np.zeros((batch, num_gt, num_anchors))
    overlaps = np.zeros_like(candidates)
    align = np.zeros_like(candidates)
    mask_topk = np.zeros_like(candidates)
    for b in range(batch):
        for g in range(num_gt):
            if not mask_gt[b, g]:
                continue
            x1, y1, x2, y2 = boxes[b, g]
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
            w = float(STRIDES[1]) if w < widen_below else w
            h = float(STRIDES[1]) if h < widen_below else h
            lo = np.array([cx - w / 2, cy - h / 2])
            hi = np.array([cx + w / 2, cy + h / 2])
            deltas = np.concatenate([anchors_px - lo, hi - anchors_px], -1)
            candidates[b, g] = deltas.min(-1) > 1e-9
            for a in np.flatnonzero(candidates[b, g]):
                overlaps[b, g, a] = max(ref_ciou(boxes[b, g], pred_px[b, a]), 0.0)
                score = scores[b, a, int(labels[b, g])]
                align[b, g, a] = score**0.5 * overlaps[b, g, a] ** 6.0
            # torch.topk over the alignment, non-candidates ranked last.
            ranked = np.where(candidates[b, g] > 0, align[b, g], -1.0)
            order = np.argsort(-ranked, kind="stable")[:topk]
            mask_topk[b, g, order] = 1
    mask_pos = mask_topk * candidates
    claims = mask_pos.sum(1)
    for b, a in zip(*np.nonzero(claims > 1), strict=True):
        mask_pos[b, :, a] = 0
        mask_pos[b, np.argmax(overlaps[b, :, a]), a] = 1
    fg = mask_pos.sum(1) > 0
    target_idx = mask_pos.argmax(1)

    aligned = align * mask_pos
    pos_align = aligned.max(-1, keepdims=True)
    pos_overlap = (overlaps * mask_pos).max(-1, keepdims=True)
    norm = (aligned * pos_overlap / (pos_align + 1e-9)).max(1)
    target_scores = np.zeros((batch, num_anchors, nc))
    target_boxes = np.zeros((batch, num_anchors, 4))
    for b in range(batch):
        for a in range(num_anchors):
            target_boxes[b, a] = boxes[b, target_idx[b, a]]
            if fg[b, a]:
                target_scores[b, a, int(labels[b, target_idx[b, a]])] = norm[b, a]
    alphas = {}
    if frozen is not None:
        target_scores, target_boxes, fg, alphas = frozen
    score_sum = max(target_scores.sum(), 1.0)
    bce = np.maximum(logits, 0) - logits * target_scores + np.log1p(np.exp(-np.abs(logits)))
    cls = bce.sum() / score_sum

    box = dfl = 0.0
    for b, a in zip(*np.nonzero(fg), strict=True):
        weight = target_scores[b, a].sum()
        target = target_boxes[b, a] / stride[a]
        if (b, a) not in alphas:
            alphas[(b, a)] = ref_ciou_alpha(pred_grid[b, a], target)
        box += (1 - ref_ciou(pred_grid[b, a], target, alpha=alphas[(b, a)])) * weight
        ltrb = np.concatenate([grid[a] - target[:2], target[2:] - grid[a]])
        ltrb = np.clip(ltrb, 0, reg_max - 1 - 0.01)
        log_probs = np.log(probs[b, a])
        sides = []
        for side in range(4):
            left = int(np.floor(ltrb[side]))
            w_left = left + 1 - ltrb[side]
            sides.append(
                -(log_probs[side, left] * w_left + log_probs[side, left + 1] * (1 - w_left))
            )
        dfl += np.mean(sides) * weight
    return {
        "box": box / score_sum,
        "cls": cls,
        "dfl": dfl / score_sum,
        "fg": int(fg.sum()),
        "frozen": (target_scores, target_boxes, fg, alphas),
    }


def peaked_head(rng, batch, distances_high=4.0, nc=CLASSES, anchors=ANCHORS):
    """Head logits whose decoded sides sit near random distances (in bins) per anchor."""
    centres = rng.uniform(0.5, distances_high, size=(batch, anchors, 4, 1))
    bins = np.arange(REG_MAX)
    noise = rng.normal(0, 0.3, size=(batch, anchors, 4, REG_MAX))
    box_logits = -1.5 * (bins - centres) ** 2 + noise
    class_logits = rng.normal(0, 1.0, size=(batch, anchors, nc))
    return np.concatenate([box_logits.reshape(batch, anchors, -1), class_logits], -1).astype(
        "float32"
    )


def ground_truth():
    # Image 0: two overlapping boxes, one 5 px wide (widened to 16 px for the candidate
    # test), and a padding row; image 1: one box.
    return np.array(
        [
            [[0, 6, 10, 38, 34], [2, 20, 18, 25, 44], [1, 30, 28, 62, 60], [-1, 0, 0, 0, 0]],
            [[1, 4, 4, 60, 40], [-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]],
        ],
        "float32",
    )


def detection_loss(**kwargs):
    return YOLOv12MultiTaskLoss(
        ["detection"], num_detection_classes=CLASSES, input_shape=INPUT_SHAPE, **kwargs
    )


def parts_of(loss, y_true, y_pred):
    parts = compiled_on_jax(loss.components)(y_true, y_pred)
    return {key: float(keras.ops.convert_to_numpy(value)) for key, value in parts.items()}


def test_detection_terms_match_the_ultralytics_reference():
    rng = np.random.default_rng(3)
    gt, head = ground_truth(), peaked_head(rng, 2)
    expected = ref_detection_terms(gt, head)
    assert expected["fg"] > 5  # the case exercises the box and DFL terms
    parts = parts_of(detection_loss(), gt, head)
    for term in ("box", "cls", "dfl"):
        np.testing.assert_allclose(parts[term], expected[term], rtol=2e-4, err_msg=term)
    np.testing.assert_allclose(
        parts["detection"],
        7.5 * expected["box"] + 0.5 * expected["cls"] + 1.5 * expected["dfl"],
        rtol=2e-4,
    )


SMALL_INPUT = (128, 128)
SMALL_ANCHORS = 256 + 64 + 16


def small_boxes():
    """Two images of six boxes with sides from 4 to 20 px, about half of them 8-15 px."""
    rng = np.random.default_rng(21)
    sides = np.array(
        [[4, 9], [6, 20], [8, 8], [9.5, 15.9], [11, 5], [12, 14]]
        + [[14, 16], [15.5, 10], [16, 4], [18, 12], [20, 7], [10, 18]],
        np.float64,
    )
    centres = rng.uniform(14.0, 114.0, size=(12, 2))
    rows = np.concatenate(
        [rng.integers(0, CLASSES, size=(12, 1)), centres - sides / 2, centres + sides / 2], -1
    )
    return rows.reshape(2, 6, 5).astype("float32")


def test_small_boxes_match_the_reference_with_sides_below_16_px_widened():
    rng = np.random.default_rng(22)
    gt = small_boxes()
    head = peaked_head(rng, 2, distances_high=2.0, anchors=SMALL_ANCHORS)
    expected = ref_detection_terms(gt, head, *SMALL_INPUT)
    loss = YOLOv12MultiTaskLoss(
        ["detection"], num_detection_classes=CLASSES, input_shape=SMALL_INPUT
    )
    parts = parts_of(loss, gt, head)
    for term in ("box", "cls", "dfl"):
        np.testing.assert_allclose(parts[term], expected[term], rtol=2e-4, err_msg=term)
    # The case tells the rules apart: widening only sides below 8 px assigns
    # fewer anchors and moves the total by well over the tolerance.
    old_rule = ref_detection_terms(gt, head, *SMALL_INPUT, widen_below=STRIDES[0])
    assert old_rule["fg"] < expected["fg"]
    total = 7.5 * expected["box"] + 0.5 * expected["cls"] + 1.5 * expected["dfl"]
    old_total = 7.5 * old_rule["box"] + 0.5 * old_rule["cls"] + 1.5 * old_rule["dfl"]
    assert abs(old_total - total) > 1e-2 * total
    np.testing.assert_allclose(parts["detection"], total, rtol=2e-4)


def test_gains_scale_their_terms_and_there_is_no_batch_size_factor():
    rng = np.random.default_rng(4)
    gt, head = ground_truth(), peaked_head(rng, 2)
    expected = ref_detection_terms(gt, head)
    value = float(
        compiled_on_jax(detection_loss(box_gain=1.0, cls_gain=2.0, dfl_gain=0.0))(gt, head)
    )
    np.testing.assert_allclose(value, expected["box"] + 2.0 * expected["cls"], rtol=2e-4)


def test_padding_rows_change_nothing():
    rng = np.random.default_rng(5)
    gt, head = ground_truth(), peaked_head(rng, 2)
    # The same boxes, padding rows moved and given junk (even inverted) coordinates.
    padded = np.array(
        [
            [[-1, 7, 7, 3, 3], [0, 6, 10, 38, 34], [2, 20, 18, 25, 44], [1, 30, 28, 62, 60]],
            [[1, 4, 4, 60, 40], [-1, 50, 50, 10, 10], [-1, 0, 0, 64, 64], [-1, 0, 0, 0, 0]],
        ],
        "float32",
    )
    loss = detection_loss()
    plain, padded = parts_of(loss, gt, head), parts_of(loss, padded, head)
    for term in ("box", "cls", "dfl"):
        np.testing.assert_allclose(padded[term], plain[term], rtol=1e-6, err_msg=term)


def test_images_without_boxes_give_zero_box_and_dfl_and_a_finite_cls():
    rng = np.random.default_rng(6)
    head = peaked_head(rng, 2)
    empty = np.full((2, 4, 5), -1.0, "float32")
    parts = parts_of(detection_loss(), empty, head)
    assert parts["box"] == 0.0 and parts["dfl"] == 0.0
    # No targets: S = 1 and every class logit is a negative, BCE = softplus(x).
    logits = head[..., 4 * REG_MAX :].astype(np.float64)
    np.testing.assert_allclose(parts["cls"], np.log1p(np.exp(logits)).sum(), rtol=1e-5)


def test_gradient_with_respect_to_the_head_is_finite_and_reaches_box_and_class_logits():
    from dl_techniques.losses.core.gradients import input_gradient

    rng = np.random.default_rng(7)
    gt, head = ground_truth(), peaked_head(rng, 2)
    loss = detection_loss()
    gradient_of_head = compiled_on_jax(lambda values: input_gradient(lambda v: loss(gt, v), values))
    gradient = keras.ops.convert_to_numpy(gradient_of_head(keras.ops.convert_to_tensor(head)))
    assert np.all(np.isfinite(gradient))
    assert np.abs(gradient[..., : 4 * REG_MAX]).sum() > 0
    assert np.abs(gradient[..., 4 * REG_MAX :]).sum() > 0


def test_box_gradient_matches_finite_differences_of_the_reference():
    from dl_techniques.losses.core.gradients import input_gradient

    rng = np.random.default_rng(8)
    gt, head = ground_truth(), peaked_head(rng, 2)
    loss = detection_loss(box_gain=1.0, cls_gain=0.0, dfl_gain=0.0)
    gradient_of_head = compiled_on_jax(lambda values: input_gradient(lambda v: loss(gt, v), values))
    gradient = keras.ops.convert_to_numpy(gradient_of_head(keras.ops.convert_to_tensor(head)))
    # The targets and CIoU's alpha carry no gradient: differences of the
    # reference are taken with both frozen at the unshifted head.
    frozen = ref_detection_terms(gt, head)["frozen"]
    anchor = int(np.argmax(np.abs(gradient[0, :, : 4 * REG_MAX]).sum(-1)))
    step = 1e-4
    for index in (3, 4 * REG_MAX - 2):
        shifted_up, shifted_down = head.astype(np.float64), head.astype(np.float64)
        shifted_up[0, anchor, index] += step
        shifted_down[0, anchor, index] -= step
        numeric = (
            ref_detection_terms(gt, shifted_up, frozen=frozen)["box"]
            - ref_detection_terms(gt, shifted_down, frozen=frozen)["box"]
        ) / (2 * step)
        np.testing.assert_allclose(gradient[0, anchor, index], numeric, rtol=2e-2, atol=1e-5)


@pytest.mark.parametrize(
    "head_shape, gt, match",
    [
        ((2, ANCHORS, 4 * REG_MAX + 5), None, r"\(2, 84, 69\)"),
        ((2, ANCHORS - 4, 4 * REG_MAX + CLASSES), None, r"\(2, 80, 67\)"),
        (None, [[[0, -2, 4, 20, 20]]], r"x1 <= x2 <= 64"),
        (None, [[[0, 30, 4, 20, 20]]], r"1 ground-truth row"),
        (None, [[[0, 10, 4, 20, 70]]], r"y_true\['detection'\] \(shape \(1, 1, 5\)\)"),
        (None, [[[3, 10, 4, 20, 20]]], r"class in \[0, 3\)"),
    ],
)
def test_bad_detection_input_raises_value_error_naming_the_loss_and_shapes(head_shape, gt, match):
    head = np.zeros(head_shape or (len(gt), ANCHORS, 4 * REG_MAX + CLASSES), "float32")
    gt = np.asarray(gt if gt is not None else np.full((2, 4, 5), -1.0), "float32")
    with pytest.raises(ValueError, match="YOLOv12MultiTaskLoss") as error:
        detection_loss()(gt, head)
    assert error.match(match)


def test_unknown_task_names_raise_value_error():
    with pytest.raises(ValueError, match=r"YOLOv12MultiTaskLoss.*unknown: \['depth'\]"):
        create_yolov12_multitask_loss(tasks=["detection", "depth"], num_detection_classes=3)


def test_missing_task_outputs_raise_value_error_naming_the_keys():
    loss = multitask_loss(use_uncertainty_weighting=True)
    y_true, y_pred = multitask_batch(np.random.default_rng(0))
    del y_pred["log_variances"]
    with pytest.raises(ValueError, match=r"YOLOv12MultiTaskLoss.*lacks \['log_variances'\]"):
        loss(y_true, y_pred)


def test_sample_weight_is_rejected():
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match=r"YOLOv12MultiTaskLoss.*sample_weight.*\(2,\)"):
        detection_loss()(ground_truth(), peaked_head(rng, 2), sample_weight=np.ones(2))


# ---------------------------------------------------------------------------
# Multi-task: classification reference and Kendall weighting.
# ---------------------------------------------------------------------------


def multitask_loss(**kwargs):
    return create_yolov12_multitask_loss(
        tasks=["detection", "segmentation", "classification"],
        num_detection_classes=CLASSES,
        num_segmentation_classes=3,
        num_classification_classes=4,
        input_shape=INPUT_SHAPE,
        **kwargs,
    )


def multitask_batch(rng, log_variances=(0.5, -0.2, 1.0)):
    y_true = {
        "detection": ground_truth(),
        "segmentation": rng.integers(0, 3, size=(2, 8, 8)),
        "classification": np.array([1, 3]),
    }
    y_pred = {
        "detection": peaked_head(rng, 2),
        "segmentation": rng.normal(size=(2, 8, 8, 3)).astype("float32"),
        "classification": rng.normal(size=(2, 4)).astype("float32"),
        "log_variances": np.tile(np.asarray(log_variances, "float32"), (2, 1)),
    }
    return y_true, y_pred


def test_classification_focal_term_matches_numpy():
    rng = np.random.default_rng(9)
    y_true, y_pred = multitask_batch(rng)
    parts = parts_of(multitask_loss(classification_loss="focal"), y_true, y_pred)
    logits = y_pred["classification"].astype(np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    p_true = probs[np.arange(2), y_true["classification"]]
    np.testing.assert_allclose(
        parts["classification"], np.mean(-((1 - p_true) ** 2) * np.log(p_true)), rtol=1e-5
    )


def test_uncertainty_weighting_combines_tasks_by_kendalls_rule():
    rng = np.random.default_rng(10)
    y_true, y_pred = multitask_batch(rng)
    parts = parts_of(multitask_loss(use_uncertainty_weighting=True), y_true, y_pred)
    s = np.array([0.5, -0.2, 1.0])
    losses = np.array([parts["detection"], parts["segmentation"], parts["classification"]])
    np.testing.assert_allclose(parts["total"], np.sum(np.exp(-s) * losses + s / 2), rtol=1e-5)
    np.testing.assert_allclose(parts["weight_segmentation"], np.exp(0.2), rtol=1e-6)


def test_fixed_task_weights_scale_the_task_losses():
    rng = np.random.default_rng(11)
    y_true, y_pred = multitask_batch(rng)
    plain = parts_of(multitask_loss(), y_true, y_pred)
    weighted = parts_of(multitask_loss(task_weights={"segmentation": 3.0}), y_true, y_pred)
    np.testing.assert_allclose(
        weighted["total"], plain["total"] + 2.0 * plain["segmentation"], rtol=1e-5
    )


# ---------------------------------------------------------------------------
# Training: a three-head model with fit, uncertainty log-variances saved.
# ---------------------------------------------------------------------------


def three_head_model():
    image = keras.Input(INPUT_SHAPE + (3,), name="image")
    pooled = keras.layers.AveragePooling2D(8)(image)  # (8, 8, 3)
    features = keras.layers.Conv2D(8, 1, activation="relu")(pooled)
    flat = keras.layers.Flatten()(features)
    detection = keras.layers.Reshape((ANCHORS, 4 * REG_MAX + CLASSES))(
        keras.layers.Dense(ANCHORS * (4 * REG_MAX + CLASSES))(flat)
    )
    outputs = {
        "detection": detection,
        "segmentation": keras.layers.Conv2D(3, 1)(features),
        "classification": keras.layers.Dense(4)(flat),
        "log_variances": UncertaintyWeightingLayer(["detection", "segmentation", "classification"])(
            image
        ),
    }
    return MultiTaskModel(image, outputs)


def uncertainty_layer(model):
    return next(layer for layer in model.layers if isinstance(layer, UncertaintyWeightingLayer))


def test_three_head_model_trains_and_its_log_variances_survive_keras_save(tmp_path):
    rng = np.random.default_rng(12)
    y_true, _ = multitask_batch(rng)
    images = rng.uniform(size=(2,) + INPUT_SHAPE + (3,)).astype("float32")
    model = three_head_model()
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=multitask_loss(use_uncertainty_weighting=True),
        jit_compile=keras.backend.backend() == "jax",
    )
    history = model.fit(images, y_true, batch_size=2, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    for name in ("box", "cls", "dfl", "segmentation", "classification", "weight_detection"):
        assert np.isfinite(history.history[name][-1]), name
    log_variances = keras.ops.convert_to_numpy(uncertainty_layer(model).log_variances)
    assert np.all(np.abs(log_variances) > 1e-3)  # every s_i moved away from 0

    path = tmp_path / "three_heads.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(uncertainty_layer(restored).log_variances), log_variances
    )
    assert isinstance(restored.loss, YOLOv12MultiTaskLoss)
    expected = keras.ops.convert_to_numpy(model.loss(y_true, model.predict(images, verbose=0)))
    value = keras.ops.convert_to_numpy(restored.loss(y_true, restored.predict(images, verbose=0)))
    np.testing.assert_allclose(value, expected, rtol=1e-5)


# ---------------------------------------------------------------------------
# Usage as documented: the multi-task snippet, the factory's defaults.
# ---------------------------------------------------------------------------


def snippet_heads(classes=80):
    """A model input and detection + segmentation heads, as a user's model would have."""
    inputs = keras.Input(INPUT_SHAPE + (3,))
    pooled = keras.layers.AveragePooling2D(8)(inputs)  # (8, 8, 3)
    flat = keras.layers.Flatten()(pooled)
    detection = keras.layers.Reshape((ANCHORS, 4 * REG_MAX + classes))(
        keras.layers.Dense(ANCHORS * (4 * REG_MAX + classes))(flat)
    )
    return inputs, {"detection": detection, "segmentation": keras.layers.Conv2D(classes, 1)(pooled)}


def snippet_data(classes=80):
    rng = np.random.default_rng(30)
    images = rng.uniform(size=(2,) + INPUT_SHAPE + (3,)).astype("float32")
    labels = {
        "detection": np.array([[[5, 8, 8, 40, 30]], [[71, 20, 4, 60, 44]]], "float32"),
        "segmentation": rng.integers(0, classes, size=(2, 8, 8)),
    }
    return images, labels


def test_plain_model_with_dict_outputs_raises_showing_a_two_line_fix_that_trains():
    yolo_loss = create_yolov12_multitask_loss(
        tasks=["detection", "segmentation"],
        num_detection_classes=80,
        num_segmentation_classes=80,
        input_shape=INPUT_SHAPE,
        use_uncertainty_weighting=True,
    )
    inputs, outputs = snippet_heads()
    images, labels = snippet_data()
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=yolo_loss)
    with pytest.raises(ValueError, match="hands a compiled loss one output at a time") as error:
        model.fit(images, labels, batch_size=2, epochs=1, verbose=0)
    assert error.match(r"YOLOv12MultiTaskLoss: .*one tensor of shape \(2, 84, 144\)")
    fix = [line.strip() for line in str(error.value).splitlines() if line.startswith("    ")]
    assert fix == [
        "outputs[\"log_variances\"] = UncertaintyWeightingLayer(['detection', 'segmentation'])"
        "(inputs)",
        "model = MultiTaskModel(inputs, outputs)",
    ]

    namespace = {
        "inputs": inputs,
        "outputs": outputs,
        "MultiTaskModel": MultiTaskModel,
        "UncertaintyWeightingLayer": UncertaintyWeightingLayer,
    }
    exec("\n".join(fix), namespace)  # the two lines exactly as the error shows them
    model = namespace["model"]
    model.compile(optimizer="adam", loss=yolo_loss)
    history = model.fit(images, labels, batch_size=2, epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"][0])
    # One Adam step moves each log-variance by about the learning rate.
    log_variances = keras.ops.convert_to_numpy(uncertainty_layer(model).log_variances)
    np.testing.assert_allclose(np.abs(log_variances), [1e-3, 1e-3], rtol=0.05)


def test_one_output_without_uncertainty_weighting_shows_the_model_and_compile_lines():
    loss = create_yolov12_multitask_loss(
        tasks=["detection", "segmentation"],
        num_detection_classes=CLASSES,
        num_segmentation_classes=3,
        input_shape=INPUT_SHAPE,
    )
    rng = np.random.default_rng(31)
    with pytest.raises(ValueError, match="one output at a time") as error:
        loss(ground_truth(), peaked_head(rng, 2))
    fix = [line.strip() for line in str(error.value).splitlines() if line.startswith("    ")]
    assert fix == [
        "model = MultiTaskModel(inputs, outputs)",
        'model.compile(optimizer="adam", loss=loss)',
    ]


def test_factory_defaults_give_three_tasks_of_80_classes_at_640_pixels():
    loss = create_yolov12_multitask_loss()
    assert loss.tasks == ("detection", "segmentation", "classification")
    assert (loss.num_detection_classes, loss.num_segmentation_classes) == (80, 80)
    assert loss.num_classification_classes == 80 and loss.input_shape == (640, 640)
    assert loss.num_anchors == 8400
    gt = np.array([[[5, 100, 120, 300, 260]]], "float32")
    y_true = {"detection": gt, "segmentation": np.zeros((1, 8, 8)), "classification": [7]}
    y_pred = {
        "detection": np.zeros((1, 8400, 4 * REG_MAX + 80), "float32"),
        "segmentation": np.zeros((1, 8, 8, 80), "float32"),
        "classification": np.zeros((1, 80), "float32"),
    }
    parts = parts_of(loss, y_true, y_pred)

    detection = ref_detection_terms(gt, y_pred["detection"], 640, 640, nc=80)
    assert detection["fg"] > 0
    for term in ("box", "cls", "dfl"):
        np.testing.assert_allclose(parts[term], detection[term], rtol=2e-4, err_msg=term)
    # Uniform logits: p = 1/80 everywhere, every pixel of class 0 (64 pixels).
    p, smooth = 1 / 80, 1e-6
    dice_present = 1 - (2 * 64 * p + smooth) / (64 * p + 64 + smooth)
    dice_absent = 1 - smooth / (64 * p + smooth)
    dice = (dice_present + 79 * dice_absent) / 80
    focal = -0.25 * (1 - p) ** 2 * np.log(p)
    np.testing.assert_allclose(parts["segmentation"], 0.5 * dice + 0.5 * focal, rtol=1e-5)
    np.testing.assert_allclose(parts["classification"], np.log(80), rtol=1e-6)
    detection_total = 7.5 * detection["box"] + 0.5 * detection["cls"] + 1.5 * detection["dfl"]
    np.testing.assert_allclose(
        parts["total"], detection_total + 0.5 * dice + 0.5 * focal + np.log(80), rtol=2e-4
    )


# ---------------------------------------------------------------------------
# Bad input: static batch sizes, NaN, the first-eager-call rule of value checks.
# ---------------------------------------------------------------------------


def test_classification_labels_of_another_batch_size_raise():
    loss = YOLOv12MultiTaskLoss(tasks=["classification"], num_classification_classes=4)
    expected = r"YOLOv12MultiTaskLoss: y_true\['classification'\].*shape \(2,\).*\(1, 4\)"
    with pytest.raises(ValueError, match=expected):
        loss(np.array([1, 2]), np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match=r"shape \(2, 4\) with y_pred shape \(3, 4\)"):
        loss(np.eye(4, dtype="float32")[[1, 2]], np.zeros((3, 4), "float32"))


def test_task_outputs_of_different_batch_sizes_raise():
    rng = np.random.default_rng(32)
    y_true, y_pred = multitask_batch(rng)
    y_pred["classification"] = y_pred["classification"][:1]
    y_true["classification"] = y_true["classification"][:1]
    expected = r"YOLOv12MultiTaskLoss: the inputs .*batch size.*\(1, 4\)"
    with pytest.raises(ValueError, match=expected):
        multitask_loss()(y_true, y_pred)


def test_nan_in_any_head_gives_a_nan_total():
    rng = np.random.default_rng(33)
    components = [
        compiled_on_jax(multitask_loss(classification_loss=name).components)
        for name in ("cross_entropy", "focal")
    ]
    for key, index in (
        ("detection", (0, 5, 4 * REG_MAX + 1)),
        ("detection", (1, 70, 3)),
        ("segmentation", (0, 2, 2, 1)),
        ("classification", (1, 2)),
    ):
        y_true, y_pred = multitask_batch(rng)
        y_pred[key][index] = np.nan
        for parts in (function(y_true, y_pred) for function in components):
            assert np.isnan(float(parts[key])) and np.isnan(float(parts["total"])), (key, index)


def test_ground_truth_rows_are_read_on_the_first_eager_call_only(monkeypatch):
    monkeypatch.delenv("DL_LOSSES_VALIDATE", raising=False)
    rng = np.random.default_rng(34)
    head = peaked_head(rng, 1)
    good = np.array([[[0, 8, 8, 40, 30]]], "float32")
    bad = np.array([[[0, 8, 8, 40, 90]]], "float32")  # y2 past the 64 px input
    loss = detection_loss()
    assert np.isfinite(float(loss(good, head)))
    assert np.isfinite(float(loss(bad, head)))  # checked already: no device read
    monkeypatch.setenv("DL_LOSSES_VALIDATE", "always")
    with pytest.raises(ValueError, match=r"1 ground-truth row"):
        loss(bad, head)
    with pytest.raises(ValueError, match=r"1 ground-truth row"):
        detection_loss()(bad, head)
