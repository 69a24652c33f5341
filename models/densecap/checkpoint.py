"""Reads DenseCap's released checkpoint (`densecap-pretrained-vgg16.t7`: `torch.save` of {model = the
DenseCapModel, ...} after `model:float()`) with `torchfile`, and fills the torch network module by module.

Where each tensor lives in the saved module tree (DenseCapModel.lua, LocalizationLayer.lua, LanguageModel.lua):
- `model.nets.conv_net1`, `conv_net2`: VGG-16 layers 1-10 and 11-30 as loadcaffe built them
  (`nn.SpatialConvolution` (or `...MM`, `cudnn.`) weight nOut x nIn x kH x kW (MM: nOut x nIn*kH*kW), bias; ReLU;
  `nn.SpatialMaxPooling`); the trunk is rebuilt from this list, so its widths come from the file;
- `model.nets.localization_layer.nets.rpn`: a 3 x 3 conv + ReLU, then a ConcatTable of the box branch (1 x 1
  conv to 4k, RegularizeLayer, `nn.MakeAnchors` holding x0, y0, sx, sy and the 2 x k anchors, ...) and the
  objectness branch (1 x 1 conv to 2k); `nn.BilinearRoiPooling` holds output_height / output_width;
- `model.nets.recog_base`: View + VGG's fc6, ReLU, Dropout, fc7, ReLU, Dropout (`nn.Linear` weight out x in);
- `model.nets.objectness_branch` (Linear fc -> 1), `model.nets.box_reg_branch` (Linear fc -> 4);
- `model.nets.language_model`: `image_encoder` (Linear fc -> W, ReLU, View), `lookup_table` (`nn.LookupTable`
  weight (V + 2) x W), `rnn` (`nn.LSTM` layers: weight (D + H) x 4H, bias 4H; View; Linear H -> V + 1; View),
  `idx_to_token` (1..V -> word), `seq_length`.
The same modules are also reachable through `model.net` (shared references, stored once). Gradients and
activation buffers (gradWeight, output, ...) in the file are ignored; every module holding a `weight` in
`model.nets` must be consumed, or loading fails naming it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn
import torchfile

from models.densecap.network import DenseCapNet, LanguageModel, LocalizationLayer, RecognitionNetwork

NETS = ("conv_net1", "conv_net2", "localization_layer", "recog_base", "objectness_branch", "box_reg_branch",
        "language_model")


class CheckpointError(ValueError):
    """The file is not a DenseCap checkpoint this loader understands; the message names the module."""


def read_t7(path: str | Path) -> Any:
    """The checkpoint's object tree. A zip archive of it (what the release's URL serves, under any name) is
    unpacked once into `.unpacked/` beside it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DenseCap checkpoint not found: {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.endswith(".t7")]
            if len(members) != 1:
                raise CheckpointError(f"{path}: expected one .t7 file in the archive, found {members}")
            target = path.parent / ".unpacked" / members[0]
            if not target.is_file():
                archive.extract(members[0], path.parent / ".unpacking")
                target.parent.mkdir(parents=True, exist_ok=True)
                (path.parent / ".unpacking" / members[0]).replace(target)  # never a half-written file
            path = target
    return torchfile.load(str(path), utf8_decode_strings=True)


def typename(obj: Any) -> str:
    return obj.torch_typename().decode() if isinstance(obj, torchfile.TorchObject) else type(obj).__name__


def is_a(obj: Any, *names: str) -> bool:
    """Class test ignoring the backend prefix (nn., cudnn.)."""
    return typename(obj).rsplit(".", 1)[-1] in names


def fields(obj: Any) -> dict:
    return obj._obj if isinstance(obj, torchfile.TorchObject) else obj


def walk(module: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every module of a container tree, depth first in `modules` order, with a readable path."""
    yield path, module
    children = fields(module).get("modules") if isinstance(fields(module), dict) else None
    for i, child in enumerate(children or []):
        yield from walk(child, f"{path}.modules[{i}]<{typename(child)}>")


class Filler:
    """Takes tensors out of the tree, checking shapes, and remembers which modules were consumed."""

    def __init__(self):
        self.used: set[int] = set()

    def tensor(self, module: Any, name: str, shape: tuple[int, ...], where: str) -> torch.Tensor:
        value = fields(module).get(name)
        if not isinstance(value, np.ndarray):
            raise CheckpointError(f"{where}: no tensor {name!r}")
        if tuple(value.shape) != tuple(shape):
            raise CheckpointError(f"{where}.{name} has shape {list(value.shape)}, expected {list(shape)}")
        self.used.add(id(module))
        return torch.from_numpy(np.array(value, dtype=np.float32))

    def linear(self, module: Any, layer: nn.Linear, where: str) -> None:
        with torch.no_grad():
            layer.weight.copy_(self.tensor(module, "weight", tuple(layer.weight.shape), where))
            layer.bias.copy_(self.tensor(module, "bias", tuple(layer.bias.shape), where))

    def conv(self, module: Any, layer: nn.Conv2d, where: str) -> None:
        o, i, kh, kw = layer.weight.shape
        flat = np.ndim(fields(module).get("weight")) == 2  # SpatialConvolutionMM keeps the kernel flattened
        weight = self.tensor(module, "weight", (o, i * kh * kw) if flat else (o, i, kh, kw), where)
        with torch.no_grad():
            layer.weight.copy_(weight.view(o, i, kh, kw))
            layer.bias.copy_(self.tensor(module, "bias", (o,), where))


def _int(module: Any, name: str, where: str, default: int | None = None) -> int:
    value = fields(module).get(name, default)
    if not isinstance(value, (int, float)):
        raise CheckpointError(f"{where}: no number {name!r}")
    return int(value)


def _shape(module: Any, name: str, ndim: int, where: str) -> tuple[int, ...]:
    value = fields(module).get(name) if isinstance(fields(module), dict) else None
    if not isinstance(value, np.ndarray) or value.ndim != ndim:
        raise CheckpointError(f"{where}: no {ndim}-D tensor {name!r}")
    return value.shape


def _conv_shape(module: Any, where: str) -> tuple[int, int, int, int]:
    weight = fields(module).get("weight")
    if not isinstance(weight, np.ndarray) or weight.ndim not in (2, 4):
        raise CheckpointError(f"{where}: a convolution without a 2-D or 4-D weight")
    kh, kw = _int(module, "kH", where), _int(module, "kW", where)
    o = weight.shape[0]
    i = weight.shape[1] if weight.ndim == 4 else weight.shape[1] // (kh * kw)
    return o, i, kh, kw


def build_trunk(nets: dict, filler: Filler) -> tuple[nn.Sequential, int]:
    """conv_net1 + conv_net2 -> one nn.Sequential; returns it and its output channels."""
    layers, channels = [], 3
    for net in ("conv_net1", "conv_net2"):
        for where, module in walk(nets[net], f"model.nets.{net}"):
            if is_a(module, "Sequential"):
                continue
            if is_a(module, "SpatialConvolution", "SpatialConvolutionMM"):
                o, i, kh, kw = _conv_shape(module, where)
                if i != channels:
                    raise CheckpointError(f"{where}: takes {i} channels, the layer before gives {channels}")
                conv = nn.Conv2d(i, o, (kh, kw), (_int(module, "dH", where, 1), _int(module, "dW", where, 1)),
                                 (_int(module, "padH", where, 0), _int(module, "padW", where, 0)))
                filler.conv(module, conv, where)
                layers.append(conv)
                channels = o
            elif is_a(module, "ReLU"):
                layers.append(nn.ReLU(inplace=True))
            elif is_a(module, "SpatialMaxPooling"):
                layers.append(nn.MaxPool2d((_int(module, "kH", where), _int(module, "kW", where)),
                                           (_int(module, "dH", where), _int(module, "dW", where)),
                                           (_int(module, "padH", where, 0), _int(module, "padW", where, 0)),
                                           ceil_mode=bool(fields(module).get("ceil_mode", False))))
            else:
                raise CheckpointError(f"{where}: a {typename(module)} in the conv trunk is not supported")
    if not any(isinstance(layer, nn.Conv2d) for layer in layers):
        raise CheckpointError("model.nets.conv_net1/conv_net2: no convolution")
    return nn.Sequential(*layers), channels


def find(module: Any, path: str, *names: str) -> list[tuple[str, Any]]:
    return [(w, m) for w, m in walk(module, path) if is_a(m, *names)]


def reachable(obj: Any, path: str, seen: set[int] | None = None) -> Iterator[tuple[str, Any]]:
    """Every torch object reachable from `obj` through any field (modules, nets, net, ...), each once."""
    seen = set() if seen is None else seen
    if id(obj) in seen or not isinstance(obj, (torchfile.TorchObject, dict, list)):
        return
    seen.add(id(obj))
    if isinstance(obj, torchfile.TorchObject):
        path = f"{path}<{typename(obj)}>"
        yield path, obj
    items = fields(obj).items() if isinstance(fields(obj), dict) else enumerate(fields(obj) or [])
    for key, value in items:
        yield from reachable(value, f"{path}.{key}", seen)


def build_localization(layer: Any, channels: int, filler: Filler) -> LocalizationLayer:
    path = "model.nets.localization_layer"
    rpn = (fields(fields(layer).get("nets") or {}) or {}).get("rpn")
    if rpn is None:
        raise CheckpointError(f"{path}: no nets.rpn")
    anchors = find(rpn, f"{path}.nets.rpn", "MakeAnchors")
    convs = find(rpn, f"{path}.nets.rpn", "SpatialConvolution", "SpatialConvolutionMM")
    pooling = [(w, m) for w, m in reachable(layer, path) if is_a(m, "BilinearRoiPooling")]
    if len(anchors) != 1 or len(convs) != 3 or len(pooling) < 1:
        raise CheckpointError(f"{path}: expected one MakeAnchors, three convolutions and a BilinearRoiPooling "
                              f"in the RPN, found {len(anchors)}, {len(convs)}, {len(pooling)}")
    where, make = anchors[0]
    raw = fields(make).get("anchors")
    if not isinstance(raw, np.ndarray) or raw.ndim != 2 or raw.shape[0] != 2:
        raise CheckpointError(f"{where}.anchors: expected a 2 x k tensor")
    k = raw.shape[1]
    centers = tuple(float(fields(make)[n]) for n in ("x0", "y0", "sx", "sy"))
    size = (_int(pooling[0][1], "output_height", pooling[0][0]), _int(pooling[0][1], "output_width", pooling[0][0]))
    (w0, conv), (w1, box), (w2, score) = convs
    o, i, kh, kw = _conv_shape(conv, w0)
    if i != channels or kh != kw:
        raise CheckpointError(f"{w0}: expected a square convolution over {channels} channels, got {[o, i, kh, kw]}")
    loc = LocalizationLayer(channels, o, kh, torch.from_numpy(np.array(raw, np.float32)), centers, size)
    filler.conv(conv, loc.conv, w0)
    filler.conv(box, loc.box_conv, w1)  # 4k outputs: checked against the anchors' k
    filler.conv(score, loc.score_conv, w2)
    filler.used.add(id(make))
    assert loc.box_conv.out_channels == 4 * k
    return loc


def build_recognition(nets: dict, in_features: int, filler: Filler) -> RecognitionNetwork:
    linears = find(nets["recog_base"], "model.nets.recog_base", "Linear")
    if not linears:
        raise CheckpointError("model.nets.recog_base: no Linear layer")
    sizes, dim = [], in_features
    for where, module in linears:
        out = _shape(module, "weight", 2, where)[0]
        sizes.append((dim, out))
        dim = out
    net = RecognitionNetwork(sizes)
    for (where, module), fc in zip(linears, net.fcs):
        filler.linear(module, fc, where)
    filler.linear(nets["objectness_branch"], net.objectness, "model.nets.objectness_branch")
    filler.linear(nets["box_reg_branch"], net.box_reg, "model.nets.box_reg_branch")
    return net


def vocabulary(lm: Any, vocab_size: int) -> list[str]:
    """idx_to_token as a list (index 0 = token 1). torchfile turns 1..V tables into lists; a table keyed by
    numbers as strings (the JSON it came from) is accepted too."""
    raw = fields(lm).get("idx_to_token")
    if isinstance(raw, dict):
        raw = {int(k): v for k, v in raw.items()}
        raw = [raw.get(i) for i in range(1, vocab_size + 1)]
    if not isinstance(raw, list) or len(raw) != vocab_size or not all(isinstance(t, str) for t in raw):
        raise CheckpointError(f"model.nets.language_model.idx_to_token: expected {vocab_size} words (vocab_size)")
    return raw


def build_language_model(lm: Any, image_dim: int, filler: Filler) -> tuple[LanguageModel, list[str]]:
    path = "model.nets.language_model"
    vocab_size, seq_length = _int(lm, "vocab_size", path), _int(lm, "seq_length", path)
    encoders = find(fields(lm).get("image_encoder"), f"{path}.image_encoder", "Linear")
    lookup = fields(lm).get("lookup_table")
    lstms = find(fields(lm).get("rnn"), f"{path}.rnn", "LSTM")
    outputs = find(fields(lm).get("rnn"), f"{path}.rnn", "Linear")
    if len(encoders) != 1 or not is_a(lookup, "LookupTable") or not lstms or len(outputs) != 1:
        raise CheckpointError(f"{path}: expected image_encoder with one Linear, a LookupTable, LSTM layers and one "
                              f"output Linear in rnn")
    encoding = _shape(lookup, "weight", 2, f"{path}.lookup_table")[1]
    rnn_size = _shape(lstms[0][1], "bias", 1, lstms[0][0])[0] // 4
    net = LanguageModel(image_dim, encoding, rnn_size, vocab_size, len(lstms), seq_length)
    filler.linear(encoders[0][1], net.image_encoder, encoders[0][0])
    with torch.no_grad():
        net.lookup_table.weight.copy_(filler.tensor(lookup, "weight", (vocab_size + 2, encoding), f"{path}.lookup_table"))
        for (where, module), lstm in zip(lstms, net.lstms):
            lstm.weight.copy_(filler.tensor(module, "weight", tuple(lstm.weight.shape), where))
            lstm.bias.copy_(filler.tensor(module, "bias", tuple(lstm.bias.shape), where))
    filler.linear(outputs[0][1], net.output, outputs[0][0])
    return net, vocabulary(lm, vocab_size)


def build_from_checkpoint(checkpoint: Any) -> tuple[DenseCapNet, list[str]]:
    """The network sized and filled from a read checkpoint, and its vocabulary (idx_to_token)."""
    model = fields(checkpoint).get("model") if isinstance(fields(checkpoint), dict) else None
    model = model if model is not None else checkpoint
    if not is_a(model, "DenseCapModel"):
        raise CheckpointError(f"expected a DenseCapModel under `model`, found {typename(model)}")
    nets = fields(fields(model).get("nets") or {})
    missing = [n for n in NETS if n not in nets]
    if missing:
        raise CheckpointError(f"model.nets lacks {missing}")
    filler = Filler()
    trunk, channels = build_trunk(nets, filler)
    localization = build_localization(nets["localization_layer"], channels, filler)
    oh, ow = localization.output_size
    recognition = build_recognition(nets, channels * oh * ow, filler)
    language_model, words = build_language_model(nets["language_model"], recognition.fcs[-1].out_features, filler)
    unused = [w for n in NETS for w, m in reachable(nets[n], f"model.nets.{n}")
              if isinstance(fields(m), dict) and isinstance(fields(m).get("weight"), np.ndarray)
              and fields(m)["weight"].size and id(m) not in filler.used]
    if unused:
        raise CheckpointError(f"modules with weights the DenseCap network does not use: {unused[:5]}")
    return DenseCapNet(trunk, localization, recognition, language_model).eval(), words
