"""Frozen TF1 GraphDefs shared by the TensorFlow families (OpenPose, TF Object Detection)."""

from __future__ import annotations

from pathlib import Path


def read_graph_def(path: Path):
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(path).read_bytes())
    return graph_def


def isolated_session(graph_def, intra_threads: int, inter_threads: int):
    """The graph imported into a graph of its own and a session with its own thread pools, so several models
    share one process without clashing over names or oversubscribing the cores. Returns (graph, session)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=intra_threads,
                                      inter_op_parallelism_threads=inter_threads, use_per_session_threads=True)
    return graph, tf.compat.v1.Session(graph=graph, config=config)
