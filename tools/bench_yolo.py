"""Times the YOLOv12 detection loss (forward + gradient, compiled) and measures its peak memory.

Each configuration is one forward pass of ``YOLOv12MultiTaskLoss(["detection"])``
plus the gradient with respect to the head output, compiled as a training
step is (``jax.jit``; ``tf.function(jit_compile=True)``; torch eager), on
random head logits and ``--boxes`` random ground-truth boxes per image (a
quarter of the rows are padding).

Memory: on jax the compiled step's own buffers from XLA's memory analysis
(temporaries + arguments + outputs); on the other backends the growth of the
process's peak resident memory over the step (coarse: it includes allocator
slack). The assigner's largest tensors are ``(B, G, A)``; the report divides
the peak by ``4 B G A`` bytes (one float32 ``(B, G, A)`` tensor), a ratio
that stays bounded as ``G`` grows if memory is O(B x G x A).

    KERAS_BACKEND=jax python tools/bench_yolo.py
    KERAS_BACKEND=tensorflow python tools/bench_yolo.py --configs 8x20 16x100
"""

import argparse
import resource
import sys

import keras
import numpy as np
from benchmarking import compiled_value_and_gradient, finish, time_pairs

from dl_techniques.losses.vision.yolov12_multitask_loss import YOLOv12MultiTaskLoss


def random_batch(rng, batch, boxes, image_size, num_anchors, channels):
    corners = rng.uniform(0, image_size - 40, size=(batch, boxes, 2))
    sizes = rng.uniform(4, 160, size=(batch, boxes, 2))
    far = np.minimum(corners + sizes, image_size)
    labels = rng.integers(0, 80, size=(batch, boxes, 1)).astype("float32")
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["8x20", "16x100"], help="BATCHxBOXES")
    parser.add_argument("--image-size", type=int, default=640)
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    arguments = parser.parse_args()

    loss = YOLOv12MultiTaskLoss(
        ["detection"],
        num_detection_classes=arguments.classes,
        input_shape=(arguments.image_size, arguments.image_size),
    )
    num_anchors, channels = loss.num_anchors, 4 * loss.reg_max + arguments.classes
    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    print(
        f"backend {backend}; {arguments.image_size}x{arguments.image_size} input ({num_anchors} "
        f"anchors), {arguments.classes} classes; forward + gradient w.r.t. the head, median of "
        f"{arguments.repetitions}"
    )
    header = f"{'B x G':<9}{'ms/step':>10}{'peak MiB':>11}{'peak / (4 B G A)':>18}"
    print(header)
    print("-" * len(header))
    for config in arguments.configs:
        batch, boxes = (int(part) for part in config.split("x"))
        gt, head = random_batch(rng, batch, boxes, arguments.image_size, num_anchors, channels)
        if backend == "jax":
            peak = jax_step_bytes(loss, gt, head)
        else:
            peak = peak_rss_growth(loss, gt, head)
        seconds = time_pairs(
            [(config, loss, gt, head)], arguments.repetitions, arguments.warmup, False
        )[config]
        unit = 4 * batch * boxes * num_anchors
        peak_text = "n/a" if peak is None else f"{peak / 2**20:.0f}"
        ratio_text = "n/a" if peak is None else f"{peak / unit:.1f}"
        print(f"{config:<9}{seconds * 1e3:>10.1f}{peak_text:>11}{ratio_text:>18}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
