"""The segmentation losses against keras.losses.Dice, lovasz's growth, and the YOLOv12 loss.

``segmentation``: on ``(batch, size, size, classes)`` softmax probabilities and
one-hot targets, ``create_segmentation_loss_function("dice")`` and ``("lovasz")``
against ``keras.losses.Dice`` (which pools every class into one Dice, so it does
less work than the per-class mean). Where torch is installed, smp's formulas
transcribed in eager torch (per-class soft Dice; Lovasz-softmax over present
classes, one sort per class) are timed on the same data as reference rows,
and an empty step on the same inputs gives the fixed cost of a compiled step.

``lovasz-growth``: Lovasz-softmax at growing sizes S: the median time, its
ratio to the smallest size, and the ratios of ``P`` and ``P log P`` over the
same sizes, ``P = batch * S * S`` being the pixels each class sorts. A time
ratio that follows ``P log P`` (and not ``P^2``) shows the sort-based
O(P log P) implementation.

``yolo``: ``YOLOv12MultiTaskLoss(["detection"])`` per ``BATCHxBOXES``
configuration, on random head logits and random ground-truth boxes per image (a
quarter of the rows are padding), with its peak memory: on jax the compiled
step's own buffers from XLA's memory analysis (temporaries + arguments +
outputs); on the other backends the growth of the process's peak resident
memory over the step (coarse: it includes allocator slack). The assigner's
largest tensors are ``(B, G, A)``; the table divides the peak by ``4 B G A``
bytes (one float32 ``(B, G, A)`` tensor), a ratio that stays bounded as ``G``
grows if memory is O(B x G x A). Where ``ultralytics`` imports, its
``v8DetectionLoss`` is timed in eager torch on the same data as the reference
row (its loss without the batch-size factor, which this loss leaves out), and
both values are printed once per configuration.
"""

import math
import resource

import keras
import numpy as np
from benchmarking import (
    EMPTY_STEP,
    Case,
    TorchReference,
    compiled_value_and_gradient,
    empty_step,
    finish,
    print_cuda_peaks,
    print_fixed_cost,
    print_pair_table,
    print_ratio_table,
    torch_available,
    torch_cuda_peaks,
    torch_device,
    torch_reference_note,
    torch_reference_step,
)

from dl_techniques.losses.vision.box_iou_loss import BoxIoULoss
from dl_techniques.losses.vision.segmentation_loss import create_segmentation_loss_function
from dl_techniques.losses.vision.segmentation_loss_config import SegmentationLossConfig
from dl_techniques.losses.vision.varifocal_loss import VarifocalLoss
from dl_techniques.losses.vision.yolov12_multitask_loss import YOLOv12MultiTaskLoss

DICE_BASELINE = "keras.losses.Dice"


def segmentation_inputs(rng, batch, size, classes):
    """One-hot targets and softmax probabilities of shape ``(batch, size, size, classes)``."""
    labels = rng.integers(0, classes, size=(batch, size, size))
    one_hot = np.eye(classes, dtype="float32")[labels]
    logits = rng.normal(size=(batch, size, size, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    return (
        keras.ops.convert_to_tensor(one_hot),
        keras.ops.convert_to_tensor(probabilities.astype("float32")),
    )


def _factory_loss(name, classes):
    return create_segmentation_loss_function(name, SegmentationLossConfig(num_classes=classes))


def run_segmentation(params, timing):
    batch, size, classes = params["batch"], params["size"], params["classes"]
    rng = np.random.default_rng(0)
    y_true, y_pred = segmentation_inputs(rng, batch, size, classes)
    losses = [
        ("dice", _factory_loss("dice", classes)),
        ("lovasz", _factory_loss("lovasz", classes)),
        (DICE_BASELINE, keras.losses.Dice()),
    ]
    if torch_available():
        losses += [
            ("torch Dice", TorchReference(torch_dice)),
            ("torch Lovasz", TorchReference(torch_lovasz_softmax)),
        ]
    losses.append((EMPTY_STEP, empty_step))
    medians = timing.medians([(label, loss, y_true, y_pred) for label, loss in losses])
    timing.print_header(
        f"input ({batch}, {size}, {size}, {classes}); forward + gradient w.r.t. y_pred"
    )
    labels = [label for label, _ in losses if not label.startswith("torch") and label != EMPTY_STEP]
    print_ratio_table("loss", labels, medians, DICE_BASELINE, "ms")
    print()
    if torch_available():
        print("against smp's formulas, eager torch, same data:")
        print_pair_table([("dice", "torch Dice"), ("lovasz", "torch Lovasz")], medians, "ms")
    else:
        print(torch_reference_note())
    print_fixed_cost(medians, "ms")
    print_cuda_peaks(
        torch_cuda_peaks(
            [(label, loss, y_true, y_pred) for label, loss in losses if label != EMPTY_STEP]
        )
    )


def torch_dice(y_true, y_pred):
    """Soft Dice per class over batch and pixels, ``1 - mean_c dice_c``, in torch ops."""
    axes = tuple(range(y_pred.dim() - 1))
    intersection = (y_pred * y_true).sum(dim=axes)
    cardinality = (y_pred + y_true).sum(dim=axes)
    return (1.0 - (2.0 * intersection + 1.0) / (cardinality + 1.0)).mean()


def torch_lovasz_softmax(y_true, y_pred):
    """Lovasz-softmax over the classes present, one sort per class, in torch ops."""
    import torch

    classes = y_pred.shape[-1]
    probabilities = y_pred.reshape(-1, classes)
    labels = y_true.reshape(-1, classes)
    losses = []
    for index in range(classes):
        foreground = labels[:, index]
        if foreground.sum() == 0:
            continue
        errors = (foreground - probabilities[:, index]).abs()
        sorted_errors, order = torch.sort(errors, descending=True)
        sorted_foreground = foreground[order]
        total = sorted_foreground.sum()
        intersection = total - sorted_foreground.cumsum(0)
        union = total + (1.0 - sorted_foreground).cumsum(0)
        jaccard = 1.0 - intersection / union
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        losses.append(torch.dot(sorted_errors, jaccard))
    return torch.stack(losses).mean()


def run_lovasz_growth(params, timing):
    batch, classes = params["batch"], params["classes"]
    sizes = [int(size) for size in params["sizes"].split(",")]
    lovasz = _factory_loss("lovasz", classes)
    rng = np.random.default_rng(0)
    growth = {}
    for size in sizes:
        y_true, y_pred = segmentation_inputs(rng, batch, size, classes)
        growth[size] = timing.medians([("lovasz", lovasz, y_true, y_pred)])["lovasz"]
    timing.print_header(f"lovasz on ({batch}, S, S, {classes}); forward + gradient w.r.t. y_pred")
    header = f"{'S':>5}{'ms':>10}{'time ratio':>12}{'P ratio':>10}{'P log P ratio':>15}"
    print(header)
    print("-" * len(header))
    smallest = sizes[0]
    pixels_smallest = batch * smallest * smallest
    for size in sizes:
        pixels = batch * size * size
        print(
            f"{size:>5}{growth[size] * 1e3:>10.2f}{growth[size] / growth[smallest]:>12.2f}"
            f"{pixels / pixels_smallest:>10.2f}"
            f"{pixels * math.log(pixels) / (pixels_smallest * math.log(pixels_smallest)):>15.2f}"
        )


def random_detection_batch(rng, batch, boxes, image_size, classes, num_anchors, channels):
    corners = rng.uniform(0, image_size - 40, size=(batch, boxes, 2))
    sizes = rng.uniform(4, 160, size=(batch, boxes, 2))
    far = np.minimum(corners + sizes, image_size)
    labels = rng.integers(0, classes, size=(batch, boxes, 1)).astype("float32")
    labels[:, boxes - boxes // 4 :] = -1.0
    gt = np.concatenate([labels, corners, far], -1).astype("float32")
    head = rng.normal(0, 1, size=(batch, num_anchors, channels)).astype("float32")
    return keras.ops.convert_to_tensor(gt), keras.ops.convert_to_tensor(head)


def jax_step_bytes(loss, gt, head):
    import jax

    step = jax.jit(jax.value_and_grad(lambda y_pred, y_true: loss(y_true, y_pred)))
    analysis = step.lower(head, gt).compile().memory_analysis()
    if analysis is None:
        return None
    return (
        analysis.temp_size_in_bytes
        + analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
    )


def peak_rss_growth(loss, gt, head):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    step = compiled_value_and_gradient(loss, torch_compile=False)
    finish(step(head, gt))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before


def ultralytics_reference(gt, image_size, classes, reg_max):
    """``TorchReference`` of Ultralytics' ``v8DetectionLoss`` on ``gt``, or None without it.

    The padded ``(B, G, 5)`` rows become its batch dict (normalised centre
    boxes of the valid rows, built once); the head ``(B, A, 4 reg_max + C)``
    becomes its ``boxes``/``scores`` channel-first maps and ``feats`` (whose
    shapes alone give the grid).
    """
    try:
        import torch
        from ultralytics.utils.loss import v8DetectionLoss
    except ImportError:
        return None
    import types

    device = torch_device()
    head = types.SimpleNamespace(
        stride=torch.tensor([8.0, 16.0, 32.0], device=device), nc=classes, reg_max=reg_max
    )
    model = types.SimpleNamespace(
        args=types.SimpleNamespace(box=7.5, cls=0.5, dfl=1.5),
        model=[head],
        parameters=lambda: iter([torch.zeros(1, device=device)]),
    )
    criterion = v8DetectionLoss(model)
    rows = np.asarray(keras.ops.convert_to_numpy(gt), "float32")
    image_index, row_index = np.nonzero(rows[..., 0] >= 0)
    valid = rows[image_index, row_index]
    centres = (valid[:, 1:3] + valid[:, 3:5]) / 2.0 / image_size
    sizes = (valid[:, 3:5] - valid[:, 1:3]) / image_size
    batch_dict = {
        "batch_idx": torch.from_numpy(image_index.astype("float32")).to(device),
        "cls": torch.from_numpy(valid[:, :1].copy()).to(device),
        "bboxes": torch.from_numpy(np.concatenate([centres, sizes], -1).astype("float32")).to(
            device
        ),
    }
    feats = [
        torch.empty((rows.shape[0], 0, image_size // stride, image_size // stride), device=device)
        for stride in (8, 16, 32)
    ]

    def reference(y_true, y_pred):
        preds = {
            "boxes": y_pred[..., : 4 * reg_max].permute(0, 2, 1),
            "scores": y_pred[..., 4 * reg_max :].permute(0, 2, 1),
            "feats": feats,
        }
        return criterion.get_assigned_targets_and_loss(preds, batch_dict)[1].sum()

    return TorchReference(reference)


def run_yolo(params, timing):
    image_size, classes = params["image_size"], params["classes"]
    loss = YOLOv12MultiTaskLoss(
        ["detection"], num_detection_classes=classes, input_shape=(image_size, image_size)
    )
    num_anchors, channels = loss.num_anchors, 4 * loss.reg_max + classes
    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    timing.print_header(
        f"{image_size}x{image_size} input ({num_anchors} anchors), {classes} classes; "
        "forward + gradient w.r.t. the head"
    )
    rows = []
    for config in params["configs"].split(","):
        batch, boxes = (int(part) for part in config.split("x"))
        gt, head = random_detection_batch(
            rng, batch, boxes, image_size, classes, num_anchors, channels
        )
        peak = (
            jax_step_bytes(loss, gt, head) if backend == "jax" else peak_rss_growth(loss, gt, head)
        )
        pairs = [(config, loss, gt, head)]
        reference = ultralytics_reference(gt, image_size, classes, loss.reg_max)
        if reference is not None:
            pairs.append(("ultralytics", reference, gt, head))
            step, torch_gt, torch_head = torch_reference_step(reference, gt, head)
            value = float(keras.ops.convert_to_numpy(loss(gt, head)))
            reference_value = float(step(torch_head, torch_gt)[0].detach())
            print(f"{config}: loss {value:.6f}, v8DetectionLoss {reference_value:.6f}")
        medians = timing.medians(pairs)
        rows.append((config, medians[config], medians.get("ultralytics"), peak, batch * boxes))
    if all(row[2] is None for row in rows):
        print("ultralytics is not installed here: no v8DetectionLoss reference column")
    header = (
        f"{'B x G':<9}{'ms/step':>10}{'v8 ms':>9}{'ratio':>7}{'peak MiB':>11}"
        f"{'peak / (4 B G A)':>18}"
    )
    print(header)
    print("-" * len(header))
    for config, seconds, reference_seconds, peak, pairs_count in rows:
        unit = 4 * pairs_count * num_anchors
        peak_text = "n/a" if peak is None else f"{peak / 2**20:.0f}"
        ratio_text = "n/a" if peak is None else f"{peak / unit:.1f}"
        if reference_seconds is None:
            reference_text, speed_text = "n/a", "n/a"
        else:
            reference_text = f"{reference_seconds * 1e3:.1f}"
            speed_text = f"{seconds / reference_seconds:.2f}"
        print(
            f"{config:<9}{seconds * 1e3:>10.1f}{reference_text:>9}{speed_text:>7}"
            f"{peak_text:>11}{ratio_text:>18}",
            flush=True,
        )


def torch_generalized_box_iou(y_true, y_pred):
    """torchvision's ``generalized_box_iou_loss`` formula in torch ops, mean over boxes."""
    import torch

    inter_w = (
        torch.minimum(y_pred[..., 2], y_true[..., 2])
        - torch.maximum(y_pred[..., 0], y_true[..., 0])
    ).clamp(min=0)
    inter_h = (
        torch.minimum(y_pred[..., 3], y_true[..., 3])
        - torch.maximum(y_pred[..., 1], y_true[..., 1])
    ).clamp(min=0)
    inter = inter_w * inter_h
    area_pred = (y_pred[..., 2] - y_pred[..., 0]) * (y_pred[..., 3] - y_pred[..., 1])
    area_true = (y_true[..., 2] - y_true[..., 0]) * (y_true[..., 3] - y_true[..., 1])
    union = area_pred + area_true - inter
    hull_w = torch.maximum(y_pred[..., 2], y_true[..., 2]) - torch.minimum(
        y_pred[..., 0], y_true[..., 0]
    )
    hull_h = torch.maximum(y_pred[..., 3], y_true[..., 3]) - torch.minimum(
        y_pred[..., 1], y_true[..., 1]
    )
    hull = hull_w * hull_h
    return (1.0 - inter / (union + 1e-7) + (hull - union) / (hull + 1e-7)).mean()


def torch_varifocal(y_true, y_pred):
    """Ultralytics' ``VarifocalLoss`` formula in torch ops, mean over images."""
    import torch.nn.functional as functional

    label = (y_true > 0).to(y_pred.dtype)
    weight = 0.75 * y_pred.sigmoid().pow(2.0) * (1 - label) + y_true * label
    bce = functional.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    return (bce * weight).mean(1).sum() / y_pred.shape[0]


def run_box_regression(params, timing):
    batch, boxes, classes = params["batch"], params["boxes"], params["classes"]
    rng = np.random.default_rng(0)
    corner = rng.uniform(0.0, 600.0, size=(batch, boxes, 2))
    true_boxes = np.concatenate([corner, corner + rng.uniform(8.0, 200.0, size=corner.shape)], -1)
    pred_boxes = true_boxes + rng.normal(scale=10.0, size=true_boxes.shape)
    scores = np.eye(classes)[rng.integers(0, classes, size=(batch, boxes))]
    scores = (
        scores * rng.uniform(size=(batch, boxes, 1)) * (rng.uniform(size=(batch, boxes, 1)) < 0.1)
    )
    logits = rng.normal(size=scores.shape)

    def tensor(values):
        return keras.ops.convert_to_tensor(values.astype("float32"))

    box_true, box_pred = tensor(true_boxes), tensor(pred_boxes)
    score_true, score_pred = tensor(scores), tensor(logits)
    focal = "keras BinaryFocalCrossentropy"
    timed = [
        ("BoxIoULoss giou", BoxIoULoss(kind="giou"), box_true, box_pred),
        ("BoxIoULoss ciou", BoxIoULoss(kind="ciou"), box_true, box_pred),
        ("keras.losses.MeanSquaredError", keras.losses.MeanSquaredError(), box_true, box_pred),
        ("VarifocalLoss", VarifocalLoss(), score_true, score_pred),
        (focal, keras.losses.BinaryFocalCrossentropy(from_logits=True), score_true, score_pred),
    ]
    if torch_available():
        timed += [
            ("torch GIoU", TorchReference(torch_generalized_box_iou), box_true, box_pred),
            ("torch varifocal", TorchReference(torch_varifocal), score_true, score_pred),
        ]
    medians = timing.medians(timed)
    timing.print_header(
        f"boxes ({batch}, {boxes}, 4), scores ({batch}, {boxes}, {classes}); "
        "forward + gradient w.r.t. y_pred"
    )
    pairs = [
        ("BoxIoULoss giou", "keras.losses.MeanSquaredError"),
        ("BoxIoULoss ciou", "keras.losses.MeanSquaredError"),
        ("VarifocalLoss", focal),
    ]
    print_pair_table(pairs, medians, "us")
    print()
    if torch_available():
        print("against torchvision's and Ultralytics' formulas, eager torch, same data:")
        print_pair_table(
            [("BoxIoULoss giou", "torch GIoU"), ("VarifocalLoss", "torch varifocal")], medians, "us"
        )
    else:
        print(torch_reference_note())


CASES = [
    Case(
        "segmentation",
        'create_segmentation_loss_function "dice", "lovasz" vs keras.losses.Dice',
        run_segmentation,
        params={"batch": 4, "size": 128, "classes": 19},
        quick={"batch": 1, "size": 16, "classes": 3},
        repetitions=30,
        warmup=3,
    ),
    Case(
        "lovasz-growth",
        "Lovasz-softmax time over growing image sizes against P and P log P",
        run_lovasz_growth,
        params={"batch": 4, "classes": 19, "sizes": "64,128,256"},
        quick={"batch": 1, "classes": 3, "sizes": "8,16,32"},
        repetitions=30,
        warmup=3,
    ),
    Case(
        "yolo",
        "YOLOv12 detection loss time and peak memory per BATCHxBOXES configuration",
        run_yolo,
        params={"configs": "8x20,16x100", "image_size": 640, "classes": 80},
        quick={"configs": "2x4", "image_size": 160, "classes": 4},
        repetitions=10,
        warmup=2,
    ),
    Case(
        "box-regression",
        "BoxIoULoss (GIoU, CIoU) and VarifocalLoss against Keras' MSE and binary focal loss",
        run_box_regression,
        params={"batch": 16, "boxes": 8400, "classes": 80},
        quick={"batch": 2, "boxes": 16, "classes": 3},
        repetitions=20,
        warmup=3,
    ),
]
