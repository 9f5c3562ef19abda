"""Counting a model's training FLOPs: TensorFlow's per-op formulas on the traced step, and the layer shapes.

Used by the efficiency benchmark (not a benchmark of its own).
"""

from __future__ import annotations

import math

from scripts.bench.common import N_CLASSES

DENSE_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul", "DepthwiseConv2dNative")


def analytic_forward_flops(model) -> int:
    """2 x multiply-adds of every Conv2D and Dense layer per image, from the layer shapes alone."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, height, width, _ = layer.output.shape
            total += 2 * height * width * math.prod(layer.kernel.shape)
        elif isinstance(layer, layers.Dense):
            total += 2 * math.prod(layer.input.shape[1:-1]) * math.prod(layer.kernel.shape)
    return total


def counted_flops(concrete_function) -> dict[str, float]:
    """FLOPs by op type of a traced function, by TensorFlow's per-op formulas (those tf.profiler uses).

    Only ops that the function's outputs depend on are counted (the first layer's unused input
    gradient is pruned, as TensorFlow prunes it when it runs).
    """
    from tensorflow.python.framework import ops

    graph = concrete_function.graph
    needed: set[str] = set()
    stack = [tensor.op for tensor in concrete_function.outputs]
    while stack:
        op = stack.pop()
        if op.name not in needed:
            needed.add(op.name)
            stack.extend(tensor.op for tensor in op.inputs)
            stack.extend(op.control_inputs)
    by_type: dict[str, float] = {}
    for op in graph.get_operations():
        if op.name not in needed:
            continue
        try:
            flops = ops.get_stats_for_node_def(graph, op.node_def, "flops").value
        except ValueError:  # an op TensorFlow has no FLOP formula for (reshapes, casts, ...)
            flops = None
        if flops:
            by_type[op.type] = by_type.get(op.type, 0.0) + float(flops)
    return by_type


def count_training_flops(params, model_name: str, size: int, batch: int) -> dict[str, float]:
    """Per-image FLOPs of a training step (loss + gradients) and of the forward pass, counted and analytic."""
    import keras
    import tensorflow as tf

    from bloodcells.architectures import create_model
    from bloodcells.training.recipe import make_loss

    hparams = params.models.get(model_name) or {}
    model = create_model(model_name, (size, size, 3), N_CLASSES, params.augment, hparams)
    loss_fn = make_loss(params.train)
    label_spec = (
        tf.TensorSpec((batch, N_CLASSES), "float32")
        if params.train.label_smoothing
        else tf.TensorSpec((batch,), "int32")
    )
    image_spec = tf.TensorSpec((batch, size, size, 3), "uint8")

    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        return loss, tape.gradient(loss, model.trainable_variables)

    @tf.function
    def forward(images):
        return model(images, training=True)

    step = counted_flops(train_step.get_concrete_function(image_spec, label_spec))
    fwd = counted_flops(forward.get_concrete_function(image_spec))
    analytic = analytic_forward_flops(model)
    keras.backend.clear_session()
    return {
        "train_dense": sum(v for k, v in step.items() if k in DENSE_OPS) / batch,
        "train_all": sum(step.values()) / batch,
        "forward_dense": sum(v for k, v in fwd.items() if k in DENSE_OPS) / batch,
        "forward_analytic": analytic,
        "train_by_op": {k: v / batch for k, v in step.items() if k in DENSE_OPS},
    }
