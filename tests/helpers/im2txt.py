"""im2txt checkpoints in the released format with random weights (no released weights on this machine): a TF1
`tf.train.Saver` checkpoint with im2txt's variable names and the real InceptionV3 / 512-unit shapes, and a reduced
vocabulary. Used by the family's tests and by the served captioner of the slow server tests."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from models.im2txt.inception_v3 import InceptionV3

WORDS = ["a", "<S>", "</S>", "on", "of", "the", "in", "with", "and", "is", "man", "to", "sitting", "an", "two",
         "at", "standing", "people", "are", "next", "white", "woman", "table", "street", "holding", "large",
         "person", "down", "top", "group", "cat", "dog", "plate", "field", "tennis", "red", "black", "train",
         "pizza", "room", "bed", "water", "riding", "front", "small", "near", "young", "playing", "food", "up"]
VOCAB = len(WORDS) + 1 + 2  # + <UNK>, + 2 ids past the word list (the released model has 12000 > words)
EMBED = UNITS = 512

def random_variables(seed=0) -> dict[str, np.ndarray]:
    return dict(_random_variables(seed))  # a fresh dict; the (read-only) arrays are shared


@functools.cache
def _random_variables(seed: int) -> dict[str, np.ndarray]:
    """im2txt's variables with plausible random values (He-scaled convs so 94 layers neither vanish nor blow up)."""
    rng = np.random.default_rng(seed)
    out = {}
    for layer in InceptionV3().convs():
        o, i, kh, kw = layer.conv.weight.shape
        out[f"{layer.tf_name}/weights"] = rng.normal(0, math.sqrt(2 / (i * kh * kw)), (kh, kw, i, o))
        out[f"{layer.tf_name}/BatchNorm/beta"] = rng.normal(0, 0.1, o)
        out[f"{layer.tf_name}/BatchNorm/moving_mean"] = rng.normal(0, 0.1, o)
        out[f"{layer.tf_name}/BatchNorm/moving_variance"] = rng.uniform(0.8, 1.2, o)
    out["image_embedding/weights"] = rng.normal(0, 0.05, (2048, EMBED))
    out["seq_embedding/map"] = rng.normal(0, 0.5, (VOCAB, EMBED))
    out["lstm/basic_lstm_cell/kernel"] = rng.normal(0, 0.05, (EMBED + UNITS, 4 * UNITS))
    out["lstm/basic_lstm_cell/bias"] = rng.normal(0, 0.1, 4 * UNITS)
    out["logits/weights"] = rng.normal(0, 0.2, (UNITS, VOCAB))
    out["logits/biases"] = rng.normal(0, 0.5, VOCAB)
    out = {k: v.astype(np.float32) for k, v in out.items()}
    out["global_step"] = np.int64(2000000)
    return out


def write_checkpoint(prefix, variables: dict[str, np.ndarray]) -> None:
    """A TF1 Saver checkpoint, written in graph mode as im2txt's training did."""
    import tensorflow as tf

    with tf.Graph().as_default():
        tf_vars = {name: tf.compat.v1.Variable(tf.compat.v1.placeholder_with_default(value, np.shape(value)),
                                               name=f"v{n}") for n, (name, value) in enumerate(variables.items())}
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver(tf_vars).save(sess, str(prefix), write_meta_graph=False)


def write_random_im2txt(folder: Path) -> tuple[Path, Path]:
    """A checkpoint and word_counts.txt in `folder`; returns (the checkpoint's .index file, the vocabulary)."""
    write_checkpoint(folder / "model.ckpt-2000000", random_variables())
    (folder / "word_counts.txt").write_text("".join(f"{w} {1000 - i}\n" for i, w in enumerate(WORDS)))
    return folder / "model.ckpt-2000000.index", folder / "word_counts.txt"
