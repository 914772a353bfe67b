"""The PyTorch kernels of the primitives that :func:`native_backends` lists for it.

The framework is imported inside :func:`kernels`, which the dispatch calls on the
first call that needs a kernel: nothing in a loss imports a framework at import.
"""

from collections.abc import Callable
from typing import Any

import keras

from dl_techniques.losses.core.ops._blockwise import logits_of
from dl_techniques.losses.core.ops._dtypes import dtype_name
from dl_techniques.losses.core.ops._masked import _each_output
from dl_techniques.losses.core.ops._normalize import NORM_EPSILON
from dl_techniques.losses.core.ops._overlap import _first_summed_axis, _row_block
from dl_techniques.losses.core.ops._reductions import averaged_axes

# Elements of the classes the torch kernel sorts at once.
_LOVASZ_CHUNK_ELEMENTS = 2**19


def kernels() -> dict[str, Callable[..., Any]]:
    """The PyTorch kernels by primitive name; the dispatch builds them once."""
    import torch
    import torch.nn.functional as functional

    on_keras_device = _keras_device_test(torch)

    def as_tensor(value, dtype):
        if not isinstance(value, torch.Tensor) or not on_keras_device(value):
            return keras.ops.convert_to_tensor(value, dtype)
        if dtype is None or dtype_name(value) == dtype:
            return value
        return keras.ops.cast(value, dtype)

    def as_like(value, like):
        # ``value`` as a tensor of the dtype of ``like``, on its device.
        if isinstance(value, torch.Tensor) and value.dtype == like.dtype:
            if value.device == like.device:
                return value
        return torch.as_tensor(value, device=like.device).to(like.dtype)

    def softmax_cross_entropy(labels, logits, ignore_index, label_smoothing):
        logits = as_tensor(logits, None)
        if not isinstance(labels, torch.Tensor) or labels.device != logits.device:
            labels = torch.as_tensor(labels, device=logits.device)
        labels = labels.long()
        # cross_entropy takes (N, V) logits and (N,) labels as they are.
        rows = logits.dim() == 2
        values = functional.cross_entropy(
            logits if rows else logits.reshape(-1, logits.shape[-1]),
            labels if rows else labels.reshape(-1),
            ignore_index=-100 if ignore_index is None else int(ignore_index),
            label_smoothing=float(label_smoothing),
            reduction="none",
        )
        return values if rows else values.reshape(labels.shape)

    def sigmoid_cross_entropy(labels, logits):
        logits = as_tensor(logits, None)
        labels = as_like(labels, logits)
        return functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")

    def huber(y_true, y_pred, delta):
        y_pred = as_tensor(y_pred, None)
        y_true = as_like(y_true, y_pred)
        return functional.huber_loss(y_pred, y_true, reduction="none", delta=float(delta))

    def huber_mean(y_true, y_pred, delta):
        y_pred = as_tensor(y_pred, None)
        y_true = as_like(y_true, y_pred)
        # aten's kernel itself (reduction 1 is the mean): functional.huber_loss adds
        # a shape check and a broadcast in Python, and HuberLoss checks the shapes.
        return torch.ops.aten.huber_loss.default(y_pred, y_true, 1, float(delta))

    class LovaszAbsoluteErrors(torch.autograd.Function):
        # A few classes at a time: the sort's buffers stay small, and only the
        # slope of every pixel is kept for the backward pass.

        @staticmethod
        def forward(ctx, labels, predictions, weights):
            groups, count, classes = predictions.shape
            values = predictions.new_empty((groups, classes))
            slopes = torch.empty_like(predictions)
            step = max(1, min(classes, _LOVASZ_CHUNK_ELEMENTS // max(count, 1)))
            places = torch.arange(1, count + 1, dtype=predictions.dtype, device=predictions.device)
            for group in range(groups):
                valid = None if weights is None else weights[group] > 0.0
                for first in range(0, classes, step):
                    last = min(first + step, classes)
                    difference = (
                        labels[group, :, first:last] - predictions[group, :, first:last]
                    ).T
                    difference = difference.contiguous()
                    errors = difference.abs()
                    if valid is not None:
                        errors.mul_(valid)
                    ordered, order = torch.sort(errors, dim=-1, descending=True, stable=True)
                    foreground = labels[group, :, first:last].T.gather(-1, order)
                    if weights is None:
                        background_seen = places - foreground.cumsum(-1)
                    else:
                        pixel_weights = weights[group].expand_as(errors).gather(-1, order)
                        foreground.mul_(pixel_weights)
                        background_seen = (pixel_weights - foreground).cumsum_(-1)
                    total = foreground.sum(-1, keepdim=True)
                    union = background_seen.add_(total)
                    intersection = foreground.cumsum_(-1).neg_().add_(total)
                    increments = (
                        torch.where(union > 0.0, intersection / union, 1.0).neg_().add_(1.0)
                    )
                    increments[:, 1:] -= increments[:, :-1].clone()
                    values[group, first:last] = (ordered * increments).sum(-1)
                    del ordered, foreground, background_seen, union, intersection
                    slope = torch.empty_like(errors).scatter_(-1, order, increments)
                    slope.mul_(difference.sign_().neg_())
                    if valid is not None:
                        slope.mul_(valid)
                    slopes[group, :, first:last] = slope.T
            ctx.save_for_backward(slopes)
            return values

        @staticmethod
        def backward(ctx, gradient):
            (slopes,) = ctx.saved_tensors
            return None, slopes * gradient[:, None, :], None

    def lovasz_absolute_errors(labels, predictions, weights):
        predictions = as_tensor(predictions, None)
        labels = as_like(labels, predictions)
        if weights is not None:
            weights = as_like(weights, predictions)
        return LovaszAbsoluteErrors.apply(labels.detach(), predictions, weights)

    def row_sums(values):
        *lead, count, classes = values.shape
        block = _row_block(count, classes)
        if block == 1:
            return values.sum(-2)
        wide = values.reshape(*lead, count // block, block * classes).sum(-2)
        return wide.reshape(*lead, block, classes).sum(-2)

    class OverlapSums(torch.autograd.Function):
        # On (..., N, K) inputs. The gradient of each input is one fused
        # multiply-add of the other input and the incoming gradients, times
        # the weights.

        @staticmethod
        def forward(ctx, labels, predictions, weights):
            weighted_predictions, weighted_labels = predictions, labels
            if weights is not None:
                weighted_predictions = predictions * weights
                weighted_labels = labels * weights
            ctx.save_for_backward(labels, predictions, weights)
            return (
                row_sums(weighted_predictions * labels),
                row_sums(weighted_predictions),
                row_sums(weighted_labels),
            )

        @staticmethod
        def backward(ctx, intersection, predicted, actual):
            labels, predictions, weights = ctx.saved_tensors
            intersection = intersection.unsqueeze(-2)

            def gradient(other, own_sum):
                values = torch.addcmul(own_sum.unsqueeze(-2), other, intersection)
                return values if weights is None else values.mul_(weights)

            return (
                gradient(predictions, actual) if ctx.needs_input_grad[0] else None,
                gradient(labels, predicted) if ctx.needs_input_grad[1] else None,
                None,
            )

    def overlap_sums(labels, predictions, weights, axis):
        predictions = as_tensor(predictions, None)
        first = _first_summed_axis(predictions.dim(), axis)
        labels = as_like(labels, predictions)
        # The summed axes as one axis of rows: (*lead, N, K).
        rows = (*predictions.shape[:first], -1, predictions.shape[-1])
        if weights is not None:
            weights = as_like(weights, predictions)
            weights = weights.detach().reshape(rows[:-1]).unsqueeze(-1)
        return OverlapSums.apply(labels.reshape(rows), predictions.reshape(rows), weights)

    class SoftConfusionCounts(torch.autograd.Function):
        # (TP, FN, FP, TN) from three sums of the amplified predictions; the
        # backward pass writes each input's gradient in one product chain
        # from the amplified predictions it keeps.

        @staticmethod
        def forward(ctx, labels, predictions, weights, scale, from_logits, axis):
            probabilities = torch.sigmoid(predictions) if from_logits else predictions
            amplified = (probabilities - 0.5).mul_(scale).sigmoid_()
            weighted_labels = labels if weights is None else labels * weights
            weighted_amplified = amplified if weights is None else amplified * weights
            if axis is None:
                tp = torch.dot(weighted_labels.reshape(-1), amplified.reshape(-1))
                predicted, actual = weighted_amplified.sum(), weighted_labels.sum()
                total = labels.numel() if weights is None else weights.sum()
            else:
                tp = row_sums(weighted_labels * amplified)
                predicted, actual = row_sums(weighted_amplified), row_sums(weighted_labels)
                total = labels.shape[0] if weights is None else row_sums(weights)
            fp = predicted - tp
            missed = actual - tp
            # (total - actual) - fp, as the reference rounds it, without
            # torch's Python-level reflected subtraction from a number.
            rejected = actual.neg().add_(total).sub_(fp)
            ctx.save_for_backward(
                labels,
                predictions,
                amplified,
                weights,
                probabilities if from_logits else None,
                maximum_gate(missed),
                maximum_gate(rejected),
            )
            ctx.scale, ctx.from_logits = scale, from_logits
            return tp, missed.clamp_min(0.0), fp, rejected.clamp_min(0.0)

        @staticmethod
        def backward(ctx, tp, fn, fp, tn):
            saved = ctx.saved_tensors
            labels, predictions, amplified, weights, probabilities, fn_gate, tn_gate = saved
            if torch.is_grad_enabled():
                # A backward pass that is differentiated itself (create_graph):
                # the amplified predictions again, as functions of the predictions.
                probabilities = torch.sigmoid(predictions) if ctx.from_logits else None
                source = predictions if probabilities is None else probabilities
                amplified = ((source - 0.5) * ctx.scale).sigmoid()
            # FN = max(actual - TP, 0), FP = predicted - TP,
            # TN = max(total - actual - predicted + TP, 0).
            fn, tn = fn * fn_gate, tn * tn_gate
            tp = tp - fn - fp + tn
            label_gradient = prediction_gradient = None
            if ctx.needs_input_grad[1]:
                # d yhat / d p = L yhat (1 - yhat); d p / d logits = p (1 - p):
                # the derivative of a sigmoid from its output, aten's sigmoid_backward.
                scale = ctx.scale
                prediction_gradient = torch.addcmul((fp - tn) * scale, labels, tp, value=scale)
                prediction_gradient = sigmoid_backward(prediction_gradient, amplified)
                if probabilities is not None:
                    prediction_gradient = sigmoid_backward(prediction_gradient, probabilities)
                if weights is not None:
                    prediction_gradient.mul_(weights)
            if ctx.needs_input_grad[0]:
                label_gradient = torch.addcmul(fn - tn, amplified, tp)
                if weights is not None:
                    label_gradient.mul_(weights)
            return label_gradient, prediction_gradient, None, None, None, None

    sigmoid_backward = torch.ops.aten.sigmoid_backward

    def maximum_gate(values):
        # d max(x, 0) / dx as torch.maximum's backward pass: 0 below 0, 1/2 at 0, 1 above.
        return torch.heaviside(values, values.new_full((), 0.5))

    def soft_confusion_counts(labels, predictions, amplifying_scale, from_logits, weights, axis):
        predictions = as_tensor(predictions, None)
        labels = as_like(labels, predictions)
        if weights is not None:
            weights = torch.as_tensor(weights, device=predictions.device)
            weights = weights.to(predictions.dtype).detach().expand_as(predictions)
        return SoftConfusionCounts.apply(
            labels, predictions, weights, float(amplifying_scale), bool(from_logits), axis
        )

    def sort_descending(values, *carried):
        values = as_tensor(values, None)
        carried = tuple(torch.as_tensor(tensor, device=values.device) for tensor in carried)
        sorted_values, order = torch.sort(values, dim=-1, descending=True, stable=True)
        return (
            sorted_values,
            *(torch.gather(tensor, -1, order).detach() for tensor in carried),
        )

    def pairwise_where(mask, function, first, second, fill):
        device = as_tensor(keras.tree.flatten(first)[0], None).device
        mask = torch.as_tensor(mask, device=device).bool()
        batch, rows, columns = torch.nonzero(mask, as_tuple=True)
        first_rows = keras.tree.map_structure(
            lambda tensor: torch.as_tensor(tensor, device=device)[batch, rows], first
        )
        second_rows = keras.tree.map_structure(
            lambda tensor: torch.as_tensor(tensor, device=device)[batch, columns], second
        )
        return _each_output(
            function(first_rows, second_rows),
            fill,
            lambda values, value: values.new_full(mask.shape, value).index_put(
                (batch, rows, columns), values
            ),
        )

    def rowwise_where(mask, function, *rows, fill):
        device = as_tensor(rows[0], None).device
        mask = torch.as_tensor(mask, device=device).bool()
        where = torch.nonzero(mask, as_tuple=True)
        values = function(*(torch.as_tensor(tensor, device=device)[where] for tensor in rows))
        return values.new_full(mask.shape, fill).index_put(where, values)

    def safe_divide(numerator, denominator, empty_value):
        numerator = as_tensor(numerator, None)
        denominator = as_tensor(denominator, None)
        divisible = (denominator > 0) | numerator.isnan() | denominator.isnan()
        ratio = numerator / torch.where(divisible, denominator, torch.ones_like(denominator))
        return torch.where(divisible, ratio, float(empty_value))

    def mean(values, axis):
        values = as_tensor(values, None)
        axes, count = averaged_axes(values, axis)
        if count is None:
            return values.mean(dim=axes)
        return values.sum(dim=axes) * (1.0 / count)

    class PairwiseEuclidean(torch.autograd.Function):
        # ||x_i||^2 + ||x_j||^2 - 2 x_i . x_j, clamped at 0 with a zero diagonal,
        # or its square root. From the gradient R of the squared distances, the
        # embeddings' gradient is 2 (diag(rowsum(S)) - S) X with S = R + R^T.

        @staticmethod
        def forward(ctx, embeddings, root):
            squared_norm = embeddings.square().sum(-1)
            gram = torch.mm(embeddings, embeddings.T)
            squared = (squared_norm[:, None] + squared_norm[None, :]).sub_(gram, alpha=2.0)
            if root:
                distances = squared.clamp_min_(0.0).fill_diagonal_(0.0).sqrt_()
                ctx.save_for_backward(embeddings, distances)
            else:
                # d max(s, 0) / ds as torch.maximum's backward pass: 1/2 at 0.
                gate = maximum_gate(squared).fill_diagonal_(0.0)
                distances = squared.clamp_min_(0.0).fill_diagonal_(0.0)
                ctx.save_for_backward(embeddings, gate)
            ctx.root = root
            return distances

        @staticmethod
        def backward(ctx, gradient):
            embeddings, saved = ctx.saved_tensors
            if ctx.root:
                # d sqrt(s) / ds = 1 / (2 sqrt(s)) where s > 0, and 0 where the
                # distance is 0; the 1/2 is taken out of the factor 2 below.
                incoming = (gradient / saved).masked_fill_(saved == 0.0, 0.0)
                scale = 1.0
            else:
                incoming = gradient * saved
                scale = 2.0
            symmetric = incoming + incoming.T
            spread = embeddings * symmetric.sum(-1, keepdim=True)
            return torch.addmm(spread, symmetric, embeddings, beta=scale, alpha=-scale), None

    def pairwise_distances(embeddings, distance):
        embeddings = as_tensor(embeddings, None)
        if distance != "cosine":
            return PairwiseEuclidean.apply(embeddings, distance == "euclidean")
        norms = torch.linalg.vector_norm(embeddings, dim=-1, keepdim=True)
        unit = embeddings / norms.clamp_min(NORM_EPSILON)
        return torch.mm(unit, unit.T).neg_().add_(1.0)

    class BlockwiseSoftplusSums(torch.autograd.Function):
        # The rows' gradient is summed in the forward pass, block by block;
        # the backward pass recomputes the blocks only for the columns'.

        @staticmethod
        def forward(ctx, rows, columns, scale, bias, block_size):
            sums = rows.new_zeros(rows.shape[0])
            row_gradient = torch.zeros_like(rows) if ctx.needs_input_grad[0] else None
            for start in range(0, columns.shape[0], block_size):
                block = columns[start : start + block_size]
                logits = logits_of(rows @ block.T, scale, bias)
                sums += functional.softplus(logits).sum(-1)
                if row_gradient is not None:
                    row_gradient.addmm_(logits.sigmoid_(), block)
            ctx.save_for_backward(rows, columns, row_gradient)
            ctx.scale, ctx.bias, ctx.block_size = scale, bias, block_size
            return sums

        @staticmethod
        def backward(ctx, gradient):
            rows, columns, row_gradient = ctx.saved_tensors
            scale, bias, block_size = ctx.scale, ctx.bias, ctx.block_size
            weights = (gradient if scale is None else gradient * scale)[:, None]
            row_result = column_result = None
            blocks = [
                columns[start : start + block_size] for start in range(0, len(columns), block_size)
            ]
            if ctx.needs_input_grad[0]:
                if torch.is_grad_enabled():
                    # A backward pass that is differentiated itself (create_graph):
                    # the row gradient again, as a function of the rows and columns.
                    row_gradient = sum(
                        logits_of(rows @ block.T, scale, bias).sigmoid() @ block for block in blocks
                    )
                row_result = row_gradient * weights
            if ctx.needs_input_grad[1]:
                weighted_rows = rows * weights
                column_result = torch.cat(
                    [
                        logits_of(rows @ block.T, scale, bias).sigmoid().T @ weighted_rows
                        for block in blocks
                    ]
                )
            return row_result, column_result, None, None, None

    def blockwise_softplus_sums(rows, columns, scale, bias, block_size):
        rows = as_tensor(rows, None)
        columns = as_like(columns, rows)
        return BlockwiseSoftplusSums.apply(rows, columns, scale, bias, int(block_size))

    def lgamma(x):
        return torch.lgamma(as_tensor(x, None))

    def lgamma_increment(x, increment):
        # float64 keeps the difference of two values near x log x at float32 precision.
        x = as_tensor(x, None)
        wide = x.double()
        if not isinstance(increment, float | int):
            increment = as_like(increment, wide)
        return (torch.lgamma(wide + increment) - torch.lgamma(wide)).to(x.dtype)

    def l2_normalize(values):
        # functional.normalize's computation, without its Python-level norm dispatch.
        values = as_tensor(values, None)
        norms = torch.linalg.vector_norm(values, dim=-1, keepdim=True)
        return values / norms.clamp_min(NORM_EPSILON)

    return {
        "as_tensor": as_tensor,
        "lgamma": lgamma,
        "lgamma_increment": lgamma_increment,
        "mean": mean,
        "safe_divide": safe_divide,
        "l2_normalize": l2_normalize,
        "blockwise_softplus_sums": blockwise_softplus_sums,
        "softmax_cross_entropy": softmax_cross_entropy,
        "sigmoid_cross_entropy": sigmoid_cross_entropy,
        "pairwise_distances": pairwise_distances,
        "pairwise_where": pairwise_where,
        "rowwise_where": rowwise_where,
        "huber": huber,
        "huber_mean": huber_mean,
        "lovasz_absolute_errors": lovasz_absolute_errors,
        "overlap_sums": overlap_sums,
        "soft_confusion_counts": soft_confusion_counts,
        "sort_descending": sort_descending,
    }


def _keras_device_test(torch: Any) -> Callable[[Any], bool]:
    """Returns ``test(tensor)``: whether ``keras.ops.convert_to_tensor`` leaves it where it is.

    Keras moves a tensor that is not on its current device (its default, or
    the one of a ``keras.device`` scope); ``"cuda"`` without an index is the
    current CUDA device. Keras has no public accessor of its device: where
    its backend module does not have the one this reads, every tensor is
    handed to Keras' conversion.
    """
    try:
        from keras.src.backend.torch.core import get_device
    except ImportError:
        return lambda tensor: False
    devices: dict[Any, Any] = {}
    # Where torch has no device but the CPU, Keras leaves every CPU tensor
    # where it is (it moves only meta tensors, which have no values).
    only_cpu = not (
        torch.cuda.is_available()
        or torch.backends.mps.is_available()
        or (hasattr(torch, "xpu") and torch.xpu.is_available())
    )

    def test(tensor: Any) -> bool:
        if only_cpu:
            return tensor.device.type == "cpu"
        name = get_device()
        target = devices.get(name)
        if target is None:
            target = devices[name] = torch.device(name)
        device = tensor.device
        if device == target:
            return True
        if target.index is not None or device.type != target.type:
            return False
        return device.type != "cuda" or device.index == torch.cuda.current_device()

    return test
