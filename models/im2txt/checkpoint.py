"""Reads im2txt's released files: a TF1 `tf.train.Saver` checkpoint (model.ckpt-N.index / .data-*) and
`word_counts.txt`, and fills the torch network by variable name.

Variables of tensorflow/models research/im2txt (show_and_tell_model.py), shapes for the released model
(embedding_size = num_lstm_units = 512, vocab_size = 12000 in configuration.py):
- `InceptionV3/...` slim InceptionV3: `<scope>/weights` [kh, kw, in, out] (HWIO),
  `<scope>/BatchNorm/{beta,moving_mean,moving_variance}` [out]; no gamma (slim batch_norm scale=False);
- `image_embedding/weights` [2048, 512]. show_and_tell_model.py builds it with `biases_initializer=None`,
  so the released checkpoint has NO `image_embedding/biases` (the variable list of the released model
  confirms it). A bias is used if a checkpoint has one;
- `seq_embedding/map` [vocab, 512];
- the LSTM (tf.contrib.rnn.BasicLSTMCell under scope "lstm"): kernel [512 + 512, 4 * 512] applied to
  concat(input, h), bias [4 * 512], gates in TF order i, j (new input), f, o, with forget_bias 1.0 added
  to f at run time. Its names changed with TF versions: `lstm/BasicLSTMCell/Linear/{Matrix,Bias}` (the
  original 2016 release, TF <= 0.12), `lstm/basic_lstm_cell/{weights,biases}` (TF 1.0-1.1, from memory of
  that TF era, not seen in a released checkpoint) and
  `lstm/basic_lstm_cell/{kernel,bias}` (TF >= 1.2; what im2txt's README tells users to rename to);
- `logits/weights` [512, vocab], `logits/biases` [vocab];
- `global_step` (ignored).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from models.im2txt.inception_v3 import FEATURES, InceptionV3

START_WORD, END_WORD, UNK_WORD = "<S>", "</S>", "<UNK>"
FORGET_BIAS = 1.0  # BasicLSTMCell's default; im2txt does not change it

LSTM_NAMES = [  # (kernel, bias), newest first
    ("lstm/basic_lstm_cell/kernel", "lstm/basic_lstm_cell/bias"),
    ("lstm/basic_lstm_cell/weights", "lstm/basic_lstm_cell/biases"),
    ("lstm/BasicLSTMCell/Linear/Matrix", "lstm/BasicLSTMCell/Linear/Bias"),
]
#: bookkeeping a training run saves beside the model; never part of the network
IGNORED = {"global_step"}
IGNORED_SUFFIXES = ("/Momentum", "/Adam", "/Adam_1", "/RMSProp", "/RMSProp_1", "/Adagrad",
                    "/ExponentialMovingAverage")


def checkpoint_prefix(path: str | Path) -> str:
    """A checkpoint given as its prefix, its .index or .data-* file, or the folder holding it."""
    path = Path(path)
    if path.is_dir():
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(str(path))
        if latest is None:
            indexes = sorted(path.glob("*.index"))
            if len(indexes) != 1:
                raise ValueError(f"{path}: expected one checkpoint (*.index) in the folder, found {len(indexes)}")
            return str(indexes[0].with_suffix(""))
        return latest
    if path.suffix == ".index":
        return str(path.with_suffix(""))
    if path.suffix.startswith(".data-"):
        return str(path.with_suffix(""))
    return str(path)


def read_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Every variable of a TF checkpoint, by name (TensorFlow reads the TF1 and TF2 formats alike)."""
    prefix = checkpoint_prefix(path)
    if not Path(prefix + ".index").exists():
        raise ValueError(f"checkpoint not found: {prefix}.index does not exist")
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def read_vocab(path: str | Path) -> list[str]:
    """word_counts.txt ("word count" per line) -> id -> word, as im2txt's vocabulary.py: ids in file order,
    then <UNK> appended when absent. The file written by im2txt under Python 3 holds `b'word'` reprs (as reported
    for build_mscoco_data.py run on bytes); those are unwrapped."""
    words = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        word = line.split()[0]
        if len(word) >= 3 and word[:2] in ("b'", 'b"') and word[-1] == word[1]:
            word = word[2:-1]
        words.append(word)
    for required in (START_WORD, END_WORD):
        if required not in words:
            raise ValueError(f"{path}: vocabulary has no {required!r} line")
    if UNK_WORD not in words:
        words.append(UNK_WORD)
    return words


class Im2txtNet(nn.Module):
    """Show and Tell: InceptionV3 -> image_embedding -> LSTM (fed the image first) -> logits."""

    def __init__(self, vocab_size: int, embedding_size: int = 512, num_units: int = 512,
                 image_bias: bool = False):
        super().__init__()
        self.encoder = InceptionV3()
        self.image_embedding = nn.Linear(FEATURES, embedding_size, bias=image_bias)
        self.seq_embedding = nn.Embedding(vocab_size, embedding_size)
        # torch's LSTMCell gates are i, f, g, o with new c = f*c + i*g and h = o*tanh(c): BasicLSTMCell's
        # equations, so only the gate order and the forget bias need mapping (see fill()).
        self.lstm = nn.LSTMCell(embedding_size, num_units)
        self.logits = nn.Linear(num_units, vocab_size)

    def initial_state(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The image embedding is the LSTM's first input, from a zero state; its output is discarded."""
        return self.lstm(self.image_embedding(self.encoder(images)))

    def step(self, words: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """One word per beam -> (log-probabilities over the vocabulary, new state)."""
        h, c = self.lstm(self.seq_embedding(words), state)
        return torch.log_softmax(self.logits(h), -1), (h, c)


def _take(variables: dict[str, np.ndarray], used: set[str], name: str, shape: tuple[int, ...] | None = None):
    if name not in variables:
        raise ValueError(f"checkpoint has no variable {name!r}")
    value = variables[name]
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"checkpoint variable {name!r} has shape {list(value.shape)}, expected {list(shape)}")
    used.add(name)
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))


def lstm_names(variables: dict[str, np.ndarray]) -> tuple[str, str]:
    for kernel, bias in LSTM_NAMES:
        if kernel in variables:
            return kernel, bias
    raise ValueError(f"checkpoint has no LSTM kernel (looked for {[k for k, _ in LSTM_NAMES]})")


def tf_to_torch_gates(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """BasicLSTMCell's i, j, f, o blocks -> torch's i, f, g(=j), o."""
    i, j, f, o = x.chunk(4, dim)
    return torch.cat([i, f, j, o], dim)


def build_from_checkpoint(variables: dict[str, np.ndarray]) -> tuple[Im2txtNet, set[str]]:
    """A network sized by the checkpoint (vocab, embedding and LSTM sizes) and filled from it; returns the
    set of variable names consumed. Raises ValueError naming any missing, mis-shaped or unexpected one."""
    vocab, embed = _shape(variables, "seq_embedding/map", 2)
    kernel_name, bias_name = lstm_names(variables)
    rows, gates = _shape(variables, kernel_name, 2)
    if gates % 4 or rows != embed + gates // 4:
        raise ValueError(f"checkpoint variable {kernel_name!r} has shape {[rows, gates]}, expected "
                         f"[{embed} + units, 4 * units]")
    net = Im2txtNet(vocab, embed, gates // 4, image_bias="image_embedding/biases" in variables)
    used = fill(net, variables, kernel_name, bias_name)
    unexpected = sorted(n for n in variables
                        if n not in used and n not in IGNORED and not n.endswith(IGNORED_SUFFIXES))
    if unexpected:
        more = f" and {len(unexpected) - 10} more" if len(unexpected) > 10 else ""
        raise ValueError(f"checkpoint has variables the im2txt network does not use: {unexpected[:10]}{more}")
    return net, used


def _shape(variables, name, ndim):
    if name not in variables:
        raise ValueError(f"checkpoint has no variable {name!r}")
    if variables[name].ndim != ndim:
        raise ValueError(f"checkpoint variable {name!r} has shape {list(variables[name].shape)}, "
                         f"expected {ndim} dimensions")
    return variables[name].shape


@torch.no_grad()
def fill(net: Im2txtNet, variables: dict[str, np.ndarray], kernel_name: str, bias_name: str) -> set[str]:
    used: set[str] = set()
    for layer in net.encoder.convs():
        w = layer.conv.weight  # OIHW; TF stores HWIO
        o, i, kh, kw = w.shape
        w.copy_(_take(variables, used, f"{layer.tf_name}/weights", (kh, kw, i, o)).permute(3, 2, 0, 1))
        bn = f"{layer.tf_name}/BatchNorm"
        layer.beta.copy_(_take(variables, used, f"{bn}/beta", (o,)))
        layer.moving_mean.copy_(_take(variables, used, f"{bn}/moving_mean", (o,)))
        layer.moving_variance.copy_(_take(variables, used, f"{bn}/moving_variance", (o,)))

    emb = net.image_embedding
    emb.weight.copy_(_take(variables, used, "image_embedding/weights", (FEATURES, emb.out_features)).T)
    if emb.bias is not None:
        emb.bias.copy_(_take(variables, used, "image_embedding/biases", (emb.out_features,)))
    net.seq_embedding.weight.copy_(_take(variables, used, "seq_embedding/map", net.seq_embedding.weight.shape))

    lstm, n_in = net.lstm, net.lstm.input_size
    kernel = _take(variables, used, kernel_name, (n_in + lstm.hidden_size, 4 * lstm.hidden_size))
    bias = _take(variables, used, bias_name, (4 * lstm.hidden_size,)).clone()
    bias[2 * lstm.hidden_size : 3 * lstm.hidden_size] += FORGET_BIAS  # f is the third TF block
    lstm.weight_ih.copy_(tf_to_torch_gates(kernel[:n_in].T))  # rows of concat(input, h): input first
    lstm.weight_hh.copy_(tf_to_torch_gates(kernel[n_in:].T))
    lstm.bias_ih.copy_(tf_to_torch_gates(bias))
    lstm.bias_hh.zero_()

    logits = net.logits
    logits.weight.copy_(_take(variables, used, "logits/weights", (logits.in_features, logits.out_features)).T)
    logits.bias.copy_(_take(variables, used, "logits/biases", (logits.out_features,)))
    return used
