"""Soft morphology of Shit et al.'s clDice on channels-last maps ``(B, *spatial, C)``.

Erosion is the minimum over the plus-shaped neighbourhood (a 3-wide window
along each spatial axis, the minimum of those), dilation the maximum over the
full 3x3 (3x3x3) box: the ``soft_erode``/``soft_dilate`` of the authors'
code, whose pooling pads with -inf so border pixels only see the image. A
window here repeats the border value instead, which gives the same extremes.
"""

import keras


def soft_erode(maps):
    """Plus-shaped minimum filter over the spatial axes."""
    eroded = None
    for axis in _spatial_axes(maps):
        along = _window_extreme(maps, axis, keras.ops.minimum)
        eroded = along if eroded is None else keras.ops.minimum(eroded, along)
    return eroded


def soft_dilate(maps):
    """Box maximum filter, 3 wide along every spatial axis."""
    for axis in _spatial_axes(maps):
        maps = _window_extreme(maps, axis, keras.ops.maximum)
    return maps


def soft_skeleton(maps, iterations):
    """The authors' ``soft_skel``: ``iterations`` erosions, each adding what an opening removes."""
    skeleton = keras.ops.relu(maps - soft_dilate(soft_erode(maps)))
    for _ in range(iterations):
        maps = soft_erode(maps)
        delta = keras.ops.relu(maps - soft_dilate(soft_erode(maps)))
        skeleton = skeleton + keras.ops.relu(delta - skeleton * delta)
    return skeleton


def _spatial_axes(maps):
    return range(1, len(maps.shape) - 1)


def _window_extreme(maps, axis, pick):
    length = maps.shape[axis]
    if length == 1:
        return maps

    def part(start, stop):
        index = [slice(None)] * len(maps.shape)
        index[axis] = slice(start, stop)
        return maps[tuple(index)]

    previous = keras.ops.concatenate([part(0, 1), part(0, length - 1)], axis=axis)
    following = keras.ops.concatenate([part(1, length), part(length - 1, length)], axis=axis)
    return pick(pick(previous, maps), following)
