"""Anchor points of the YOLOv8/11/12 detection head: one per grid cell of the strides 8, 16, 32."""

import keras

STRIDES = (8, 16, 32)


def grid_sizes(input_shape):
    """``[(rows, cols), ...]`` of the feature maps, stride 8 first."""
    height, width = input_shape
    return [(height // stride, width // stride) for stride in STRIDES]


def num_anchors(input_shape):
    """The number of anchor points ``A`` for an input of ``(H, W)`` pixels."""
    return sum(rows * cols for rows, cols in grid_sizes(input_shape))


def anchor_points(input_shape, dtype="float32"):
    """Returns ``(points (A, 2), strides (A,))``: cell centres ``(x, y)`` in pixels.

    Levels come stride 8 first; each level is row-major (y, then x), the
    order in which a head flattens its ``(rows, cols)`` feature map.
    """
    points, strides = [], []
    for stride, (rows, cols) in zip(STRIDES, grid_sizes(input_shape), strict=True):
        centre_y = (keras.ops.arange(rows, dtype=dtype) + 0.5) * stride
        centre_x = (keras.ops.arange(cols, dtype=dtype) + 0.5) * stride
        grid_y, grid_x = keras.ops.meshgrid(centre_y, centre_x, indexing="ij")
        centres = keras.ops.stack([grid_x, grid_y], axis=-1)
        points.append(keras.ops.reshape(centres, (rows * cols, 2)))
        strides.append(keras.ops.full((rows * cols,), float(stride), dtype=dtype))
    return keras.ops.concatenate(points, axis=0), keras.ops.concatenate(strides, axis=0)
