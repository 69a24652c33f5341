"""Darknet `.cfg` parser and `.weights` reader that build a plain `torch.nn.Module`.

Covers the layers YOLOv2, YOLOv3, YOLOv3-tiny and YOLO-Fastest use. Each detection head returns its
predictions decoded to the network input's pixels, rows = (cx, cy, w, h, objectness, class probs...),
ordered cell by cell (row-major) and anchor within cell, as OpenCV's darknet importer orders them, so
outputs can be compared row for row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = {"net", "convolutional", "maxpool", "route", "shortcut", "upsample", "dropout", "reorg", "yolo", "region"}


@dataclass
class Section:
    kind: str
    options: dict[str, str] = field(default_factory=dict)
    line: int = 0  # 1-based line of the `[kind]` header, for error messages

    def get(self, key: str, default, cast=int):
        return cast(self.options[key]) if key in self.options else default

    def ints(self, key: str, default: list[int] | None = None) -> list[int]:
        if key not in self.options:
            if default is None:
                raise ValueError(f"[{self.kind}] at line {self.line} needs `{key}`")
            return default
        return [int(v) for v in self.options[key].split(",") if v.strip()]

    def floats(self, key: str) -> list[float]:
        return [float(v) for v in self.options.get(key, "").split(",") if v.strip()]


def parse_cfg(text: str) -> list[Section]:
    """Darknet's ini-like format: `[section]` headers, `key=value` lines, `#`/`;` comments."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ValueError(f"line {number}: malformed section header {raw!r}")
            sections.append(Section(line[1:-1].strip().lower(), {}, number))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1].options[key.strip()] = value.strip()
        else:
            raise ValueError(f"line {number}: expected `[section]` or `key=value`, got {raw!r}")
    if not sections or sections[0].kind not in ("net", "network"):
        raise ValueError("a darknet cfg must start with a [net] section")
    for s in sections[1:]:
        if s.kind not in SUPPORTED:
            raise ValueError(f"line {s.line}: unsupported darknet layer [{s.kind}]")
    return sections


# --- layers -------------------------------------------------------------------------------------------


def _mish(x):
    return x * torch.tanh(F.softplus(x))


ACTIVATIONS = {
    "linear": lambda x: x,
    "leaky": lambda x: F.leaky_relu(x, 0.1),  # darknet's leaky slope is 0.1, not torch's 0.01
    "relu": F.relu,
    "relu6": F.relu6,
    "mish": _mish,
    "swish": lambda x: x * torch.sigmoid(x),
    "logistic": torch.sigmoid,
    "tanh": torch.tanh,
}


def _activation(section: Section):
    name = section.options.get("activation", "linear" if section.kind == "shortcut" else "logistic")
    if name not in ACTIVATIONS:
        raise ValueError(f"line {section.line}: unsupported activation {name!r}")
    return name


class DarknetBatchNorm(nn.Module):
    """Darknet's inference batch norm: (x - mean) / (sqrt(var) + 1e-6) * scale + bias.
    torch's BatchNorm2d puts eps inside the sqrt, so it is written out to match darknet exactly."""

    EPS = 1e-6

    def __init__(self, n: int):
        super().__init__()
        for name in ("bias", "weight", "running_mean", "running_var"):
            self.register_buffer(name, torch.ones(n) if name in ("weight", "running_var") else torch.zeros(n))

    def factor(self) -> torch.Tensor:
        return self.weight / (self.running_var.sqrt() + self.EPS)

    def forward(self, x):
        k = self.factor().view(1, -1, 1, 1)
        return (x - self.running_mean.view(1, -1, 1, 1)) * k + self.bias.view(1, -1, 1, 1)


class Conv(nn.Module):
    def __init__(self, s: Section, in_channels: int):
        super().__init__()
        filters, size, stride = s.get("filters", 1), s.get("size", 1), s.get("stride", 1)
        groups = s.get("groups", 1)
        # darknet: `pad=1` means "same" padding (size/2) and overrides an explicit `padding`
        padding = size // 2 if s.get("pad", 0) else s.get("padding", 0)
        if in_channels % groups or filters % groups:
            raise ValueError(f"line {s.line}: groups={groups} must divide {in_channels} inputs and {filters} filters")
        bn = bool(s.get("batch_normalize", 0))
        self.conv = nn.Conv2d(in_channels, filters, size, stride, padding, groups=groups, bias=not bn)
        self.bn = DarknetBatchNorm(filters) if bn else None
        self.act = _activation(s)

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return ACTIVATIONS[self.act](x)

    def fuse(self) -> None:
        """Fold the batch norm into the conv: one op less per layer at inference, same numbers."""
        if self.bn is None:
            return
        k = self.bn.factor()
        conv = self.conv
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                          groups=conv.groups, bias=True)
        with torch.no_grad():
            fused.weight.copy_(conv.weight * k.view(-1, 1, 1, 1))
            fused.bias.copy_(self.bn.bias - self.bn.running_mean * k)
        self.conv, self.bn = fused.to(conv.weight.device), None


class MaxPool(nn.Module):
    """Darknet pads by `padding` (default size-1) in total, `padding // 2` before, and the rest after,
    with -inf. So stride 1 keeps the size (asymmetric for even sizes) and 2x2/2 rounds odd sizes up."""

    def __init__(self, s: Section):
        super().__init__()
        self.size, self.stride = s.get("size", s.get("stride", 1)), s.get("stride", 1)
        self.padding = s.get("padding", self.size - 1)

    def _pads(self, n: int) -> tuple[int, int]:
        out = (n + self.padding - self.size) // self.stride + 1
        before = self.padding // 2
        return before, (out - 1) * self.stride + self.size - n - before  # may be negative: crops

    def forward(self, x):
        (left, right), (top, bottom) = self._pads(x.shape[3]), self._pads(x.shape[2])
        x = F.pad(x, (left, right, top, bottom), value=-math.inf)
        return F.max_pool2d(x, self.size, self.stride)


class Route(nn.Module):
    """Concatenate earlier outputs; with `groups`, take slice `group_id` of each one's channels."""

    def __init__(self, s: Section, index: int, channels: list[int]):
        super().__init__()
        self.sources = [i if i >= 0 else index + i for i in s.ints("layers")]
        for i in self.sources:
            if not 0 <= i < index:
                raise ValueError(f"line {s.line}: route to layer {i} outside 0..{index - 1}")
        self.groups, self.group_id = s.get("groups", 1), s.get("group_id", 0)
        self.out_channels = sum(channels[i] // self.groups for i in self.sources)

    def forward(self, outputs):
        parts = []
        for i in self.sources:
            x = outputs[i]
            n = x.shape[1] // self.groups
            parts.append(x[:, self.group_id * n : (self.group_id + 1) * n])
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


class Shortcut(nn.Module):
    """Residual add of earlier output(s) to the previous one, then an activation."""

    def __init__(self, s: Section, index: int):
        super().__init__()
        if s.options.get("weights_type", "none") != "none":
            raise ValueError(f"line {s.line}: weighted shortcuts are not supported")
        self.sources = [i if i >= 0 else index + i for i in s.ints("from")]
        self.act = _activation(s)

    def forward(self, x, outputs):
        for i in self.sources:
            other = outputs[i]
            if other.shape == x.shape:
                x = x + other
            else:  # darknet adds over the channels both have (sizes must match here)
                c = min(x.shape[1], other.shape[1])
                x = torch.cat([x[:, :c] + other[:, :c], x[:, c:]], 1)
        return ACTIVATIONS[self.act](x)


class Upsample(nn.Module):
    def __init__(self, s: Section):
        super().__init__()
        self.stride, self.scale = s.get("stride", 2), s.get("scale", 1.0, float)
        if self.stride < 1:
            raise ValueError(f"line {s.line}: upsample with negative stride (downsampling) is not supported")

    def forward(self, x):
        x = F.interpolate(x, scale_factor=self.stride, mode="nearest")
        return x * self.scale if self.scale != 1.0 else x


class Reorg(nn.Module):
    """YOLOv2's space-to-depth, with darknet's own (non-standard) channel order: the input memory is read
    as (C/s², H·s, W·s) and written out as (C, H, W), then seen as (C·s², H/s, W/s)."""

    def __init__(self, s: Section):
        super().__init__()
        self.s = s.get("stride", 2)

    def forward(self, x):
        b, c, h, w = x.shape
        s = self.s
        y = x.reshape(b, c // (s * s), h, s, w, s).permute(0, 3, 5, 1, 2, 4)
        return y.reshape(b, c * s * s, h // s, w // s)


class YoloHead(nn.Module):
    """YOLOv3 head: sigmoid offsets within the cell (stretched by scale_x_y), anchors in input pixels,
    independent sigmoid class probabilities."""

    def __init__(self, s: Section):
        super().__init__()
        anchors = s.floats("anchors")
        mask = s.ints("mask", list(range(len(anchors) // 2)))
        if s.get("new_coords", 0):
            raise ValueError(f"line {s.line}: [yolo] new_coords=1 is not supported")
        self.classes = s.get("classes", 20)
        self.scale_xy = s.get("scale_x_y", 1.0, float)
        self.register_buffer("anchors", torch.tensor([anchors[2 * m : 2 * m + 2] for m in mask], dtype=torch.float32))

    def forward(self, x, input_hw):
        p, gx, gy = _split_cells(x, len(self.anchors), self.classes)
        gh, gw = p.shape[1], p.shape[2]
        xy = torch.sigmoid(p[..., :2]) * self.scale_xy - 0.5 * (self.scale_xy - 1)
        cx = (xy[..., 0] + gx) / gw * input_hw[1]
        cy = (xy[..., 1] + gy) / gh * input_hw[0]
        wh = torch.exp(p[..., 2:4]) * self.anchors
        rest = torch.sigmoid(p[..., 4:])
        return _rows(torch.cat([cx[..., None], cy[..., None], wh, rest], -1))


class RegionHead(nn.Module):
    """YOLOv2 head: anchors in grid cells, sigmoid objectness, softmax over classes."""

    def __init__(self, s: Section):
        super().__init__()
        anchors = s.floats("anchors")
        self.num, self.classes = s.get("num", 1), s.get("classes", 20)
        if s.get("coords", 4) != 4 or len(anchors) != 2 * self.num:
            raise ValueError(f"line {s.line}: [region] needs coords=4 and num anchor pairs")
        if s.options.get("tree"):
            raise ValueError(f"line {s.line}: [region] softmax trees (YOLO9000) are not supported")
        self.softmax = bool(s.get("softmax", 0))
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(-1, 2))

    def forward(self, x, input_hw):
        p, gx, gy = _split_cells(x, self.num, self.classes)
        gh, gw = p.shape[1], p.shape[2]
        xy = torch.sigmoid(p[..., :2])
        cx = (xy[..., 0] + gx) / gw * input_hw[1]
        cy = (xy[..., 1] + gy) / gh * input_hw[0]
        cell = torch.tensor([input_hw[1] / gw, input_hw[0] / gh], device=x.device)
        wh = torch.exp(p[..., 2:4]) * self.anchors * cell
        obj = torch.sigmoid(p[..., 4:5])
        cls = torch.softmax(p[..., 5:], -1) if self.softmax else torch.sigmoid(p[..., 5:])
        return _rows(torch.cat([cx[..., None], cy[..., None], wh, obj, cls], -1))


def _split_cells(x, anchors: int, classes: int):
    """[B, A*(5+C), H, W] -> [B, H, W, A, 5+C] plus the cell column/row index grids."""
    b, c, h, w = x.shape
    if c != anchors * (5 + classes):
        raise ValueError(f"head expects {anchors}*(5+{classes}) = {anchors * (5 + classes)} channels, got {c}")
    p = x.reshape(b, anchors, 5 + classes, h, w).permute(0, 3, 4, 1, 2)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    return p, gx[..., None].to(x.dtype), gy[..., None].to(x.dtype)


def _rows(t):
    return t.reshape(t.shape[0], -1, t.shape[-1])


# --- the network --------------------------------------------------------------------------------------


class Darknet(nn.Module):
    """A darknet network built from parsed cfg sections. forward(x) -> one [B, rows, 5+C] tensor per head."""

    def __init__(self, sections: list[Section]):
        super().__init__()
        net = sections[0]
        self.width, self.height, self.channels = net.get("width", 416), net.get("height", 416), net.get("channels", 3)
        self.kinds = [s.kind for s in sections[1:]]
        self.layers = nn.ModuleList()
        channels: list[int] = []  # output channels of every layer, for convs and routes built later
        for index, s in enumerate(sections[1:]):
            prev = channels[-1] if channels else self.channels
            if s.kind == "convolutional":
                layer = Conv(s, prev)
                out = layer.conv.out_channels
            elif s.kind == "route":
                layer = Route(s, index, channels)
                out = layer.out_channels
            elif s.kind == "shortcut":
                layer = Shortcut(s, index)
                out = prev
            elif s.kind == "reorg":
                layer = Reorg(s)
                out = prev * layer.s * layer.s
            else:
                layer = {"maxpool": MaxPool, "upsample": Upsample, "yolo": YoloHead, "region": RegionHead}.get(
                    s.kind, lambda s: nn.Identity()  # dropout: identity at inference
                )(s)
                out = prev
            self.layers.append(layer)
            channels.append(out)
        self.heads = [i for i, k in enumerate(self.kinds) if k in ("yolo", "region")]
        if not self.heads:
            raise ValueError("the cfg has no [yolo] or [region] layer")
        self.classes = self.layers[self.heads[0]].classes
        # only keep outputs that a later route/shortcut reads, so big inputs don't hold every feature map
        self._keep = {i for layer in self.layers for i in getattr(layer, "sources", [])}
        self.header: WeightsHeader | None = None

    def run(self, x, keep_all: bool = False) -> tuple[list, list]:
        """Layer outputs (None where no later layer reads them, unless keep_all) and decoded head outputs."""
        if x.shape[1] != self.channels:
            raise ValueError(f"network expects {self.channels} input channels, got {x.shape[1]}")
        hw = (x.shape[2], x.shape[3])
        outputs, heads = [], []
        for i, (kind, layer) in enumerate(zip(self.kinds, self.layers)):
            if kind == "route":
                x = layer(outputs)
            elif kind == "shortcut":
                x = layer(x, outputs)
            elif kind in ("yolo", "region"):
                heads.append(layer(x, hw))  # x passes on unchanged, as darknet's next layer sees it
            else:
                x = layer(x)
            outputs.append(x if keep_all or i in self._keep else None)
        return outputs, heads

    def forward(self, x):
        return self.run(x)[1]

    def fuse(self) -> "Darknet":
        for layer in self.layers:
            if isinstance(layer, Conv):
                layer.fuse()
        return self


@dataclass(frozen=True)
class WeightsHeader:
    major: int
    minor: int
    revision: int
    seen: int


def read_weights(path: str | Path) -> tuple[WeightsHeader, np.ndarray]:
    """Header (major, minor, revision int32; `seen` int64 for format >= 0.2, else int32) + float32 body."""
    data = Path(path).read_bytes()
    if len(data) < 16:
        raise ValueError(f"{path}: {len(data)} bytes is too short for a darknet weights header")
    major, minor, revision = np.frombuffer(data, "<i4", 3).tolist()
    wide = (major * 10 + minor) >= 2 and major < 1000 and minor < 1000
    seen = int(np.frombuffer(data, "<i8" if wide else "<i4", 1, 12)[0])
    start = 20 if wide else 16
    if (len(data) - start) % 4:
        raise ValueError(f"{path}: body of {len(data) - start} bytes is not a whole number of float32s")
    return WeightsHeader(major, minor, revision, seen), np.frombuffer(data, "<f4", offset=start)


def load_weights(net: Darknet, path: str | Path) -> WeightsHeader:
    """Fill every conv in file order: [bn bias, bn scale, mean, var] or [conv bias], then conv weights."""
    header, body = read_weights(path)
    convs = [layer for layer in net.layers if isinstance(layer, Conv)]
    expected = sum(c.conv.weight.numel() + (4 * c.conv.out_channels if c.bn is not None else c.conv.out_channels)
                   for c in convs)
    if body.size != expected:
        raise ValueError(f"{path}: the cfg needs {expected} floats of weights but the file has {body.size} "
                         f"({'too short' if body.size < expected else 'too long'}; wrong cfg for these weights?)")
    at = 0

    def take(t: torch.Tensor):
        nonlocal at
        with torch.no_grad():
            t.copy_(torch.from_numpy(body[at : at + t.numel()].copy()).view_as(t))
        at += t.numel()

    for c in convs:
        if c.bn is not None:
            for t in (c.bn.bias, c.bn.weight, c.bn.running_mean, c.bn.running_var):
                take(t)
        else:
            take(c.conv.bias)
        take(c.conv.weight)
    return header


def load_darknet(cfg: str | Path, weights: str | Path | None = None) -> Darknet:
    """Build the network from a cfg file and, if given, read its weights."""
    net = Darknet(parse_cfg(Path(cfg).read_text()))
    if weights is not None:
        net.header = load_weights(net, weights)
    return net
