"""TF-slim InceptionV3 (`inception_v3_base` up to Mixed_7c, then a global average pool) in torch, laid out
by slim's variable names so an im2txt checkpoint maps onto it by name.

The network is a table (STEM, BLOCKS) rather than code: the loader, the tests' TensorFlow reference and the
module below all walk the same table, so a layer's name, kernel, stride and padding are written once.

What slim does and this mirrors (tensorflow/models research/slim/nets/inception_v3.py, with im2txt's
ops/image_embedding.py arg scope):
- every conv is `slim.conv2d` with `normalizer_fn=slim.batch_norm`: no conv bias, and batch norm with
  `scale=False` (beta, moving_mean, moving_variance; no gamma), epsilon 0.001, then ReLU;
- the stem is VALID except Conv2d_2b_3x3; inside the Mixed blocks stride-1 convs and pools are SAME, the
  stride-2 (grid-reduction) convs and max pools VALID. Every SAME op here has stride 1 and an odd kernel,
  so TF's SAME padding is symmetric and equals torch's `padding=k // 2`;
- the 3x3 SAME average pools of Branch_3 divide by the number of real (unpadded) pixels, as TF's avg_pool
  does: `count_include_pad=False`;
- slim's own naming quirks are kept verbatim: Mixed_5c/Branch_1 is `Conv2d_0b_1x1` + `Conv_1_0c_5x5`, and
  Mixed_6a's stride-2 convs are named `Conv2d_1a_1x1` although their kernels are 3x3 (both names appear in
  the released im2txt checkpoint's variable list);
- im2txt pools the 8x8x2048 Mixed_7c map with a VALID average pool as large as the map, i.e. a mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

SCOPE = "InceptionV3"
BN_EPSILON = 0.001
FEATURES = 2048


@dataclass(frozen=True)
class Conv:
    """slim.conv2d + batch_norm(scale=False) + ReLU. Stride-2 convs are VALID, the others SAME, except where
    `padding` says otherwise (the stem)."""

    name: str
    out: int
    kh: int
    kw: int
    stride: int = 1
    padding: str = ""  # "" = the default: VALID when stride 2, SAME otherwise

    @property
    def same(self) -> bool:
        return (self.padding or ("VALID" if self.stride == 2 else "SAME")) == "SAME"


@dataclass(frozen=True)
class Pool:
    """3x3 pool: "max" is the stride-2 VALID reduction pool, "avg" the stride-1 SAME pool of Branch_3."""

    kind: str


@dataclass(frozen=True)
class Fork:
    """Parallel convs on the same input, concatenated (the 1x3 / 3x1 pairs of Mixed_7b and Mixed_7c)."""

    convs: tuple[Conv, ...]


def c(name: str, out: int, k: int | tuple[int, int], stride: int = 1, padding: str = "") -> Conv:
    kh, kw = (k, k) if isinstance(k, int) else k
    return Conv(name, out, kh, kw, stride, padding)


MAX, AVG = Pool("max"), Pool("avg")

STEM: list[Conv | Pool] = [
    c("Conv2d_1a_3x3", 32, 3, stride=2),  # 299 -> 149
    c("Conv2d_2a_3x3", 32, 3, padding="VALID"),  # -> 147
    c("Conv2d_2b_3x3", 64, 3, padding="SAME"),
    MAX,  # MaxPool_3a_3x3 -> 73
    c("Conv2d_3b_1x1", 80, 1, padding="VALID"),
    c("Conv2d_4a_3x3", 192, 3, padding="VALID"),  # -> 71
    MAX,  # MaxPool_5a_3x3 -> 35
]


def _block_35(b3: int, quirk: bool = False):
    b1 = [c("Conv2d_0b_1x1", 48, 1), c("Conv_1_0c_5x5", 64, 5)] if quirk else \
         [c("Conv2d_0a_1x1", 48, 1), c("Conv2d_0b_5x5", 64, 5)]
    return [[c("Conv2d_0a_1x1", 64, 1)], b1,
            [c("Conv2d_0a_1x1", 64, 1), c("Conv2d_0b_3x3", 96, 3), c("Conv2d_0c_3x3", 96, 3)],
            [AVG, c("Conv2d_0b_1x1", b3, 1)]]


def _block_17(c7: int):
    return [[c("Conv2d_0a_1x1", 192, 1)],
            [c("Conv2d_0a_1x1", c7, 1), c("Conv2d_0b_1x7", c7, (1, 7)), c("Conv2d_0c_7x1", 192, (7, 1))],
            [c("Conv2d_0a_1x1", c7, 1), c("Conv2d_0b_7x1", c7, (7, 1)), c("Conv2d_0c_1x7", c7, (1, 7)),
             c("Conv2d_0d_7x1", c7, (7, 1)), c("Conv2d_0e_1x7", 192, (1, 7))],
            [AVG, c("Conv2d_0b_1x1", 192, 1)]]


def _block_8(b1_second: str):
    return [[c("Conv2d_0a_1x1", 320, 1)],
            [c("Conv2d_0a_1x1", 384, 1), Fork((c("Conv2d_0b_1x3", 384, (1, 3)), c(b1_second, 384, (3, 1))))],
            [c("Conv2d_0a_1x1", 448, 1), c("Conv2d_0b_3x3", 384, 3),
             Fork((c("Conv2d_0c_1x3", 384, (1, 3)), c("Conv2d_0d_3x1", 384, (3, 1))))],
            [AVG, c("Conv2d_0b_1x1", 192, 1)]]


# (block name, branches); branch i lives under scope Branch_i; branch outputs concatenate in order.
BLOCKS: list[tuple[str, list[list[Conv | Pool | Fork]]]] = [
    ("Mixed_5b", _block_35(32)),  # 35x35x256
    ("Mixed_5c", _block_35(64, quirk=True)),  # 35x35x288
    ("Mixed_5d", _block_35(64)),  # 35x35x288
    ("Mixed_6a", [[c("Conv2d_1a_1x1", 384, 3, stride=2)],  # 17x17x768
                  [c("Conv2d_0a_1x1", 64, 1), c("Conv2d_0b_3x3", 96, 3), c("Conv2d_1a_1x1", 96, 3, stride=2)],
                  [MAX]]),
    ("Mixed_6b", _block_17(128)),
    ("Mixed_6c", _block_17(160)),
    ("Mixed_6d", _block_17(160)),
    ("Mixed_6e", _block_17(192)),
    ("Mixed_7a", [[c("Conv2d_0a_1x1", 192, 1), c("Conv2d_1a_3x3", 320, 3, stride=2)],  # 8x8x1280
                  [c("Conv2d_0a_1x1", 192, 1), c("Conv2d_0b_1x7", 192, (1, 7)), c("Conv2d_0c_7x1", 192, (7, 1)),
                   c("Conv2d_1a_3x3", 192, 3, stride=2)],
                  [MAX]]),
    ("Mixed_7b", _block_8("Conv2d_0b_3x1")),  # 8x8x2048
    ("Mixed_7c", _block_8("Conv2d_0c_3x1")),  # 8x8x2048
]


class ConvBN(nn.Module):
    """Conv (no bias) -> inference batch norm without gamma -> ReLU. `tf_name` is the slim scope."""

    def __init__(self, tf_name: str, cin: int, spec: Conv):
        super().__init__()
        self.tf_name = tf_name
        pad = (spec.kh // 2, spec.kw // 2) if spec.same else (0, 0)
        self.conv = nn.Conv2d(cin, spec.out, (spec.kh, spec.kw), spec.stride, pad, bias=False)
        self.beta = nn.Parameter(torch.zeros(spec.out))
        self.register_buffer("moving_mean", torch.zeros(spec.out))
        self.register_buffer("moving_variance", torch.ones(spec.out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = F.batch_norm(x, self.moving_mean, self.moving_variance, None, self.beta, False, 0.0, BN_EPSILON)
        return F.relu(x)


def pool(kind: str, x: torch.Tensor) -> torch.Tensor:
    if kind == "max":
        return F.max_pool2d(x, 3, 2)
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class Chain(nn.Module):
    """A sequence of table steps (a stem or a branch)."""

    def __init__(self, scope: str, cin: int, steps):
        super().__init__()
        self.steps, self.layers, self.out = [], nn.ModuleList(), cin
        for step in steps:
            if isinstance(step, Conv):
                self.layers.append(ConvBN(f"{scope}/{step.name}", self.out, step))
                self.steps.append(("conv", len(self.layers) - 1))
                self.out = step.out
            elif isinstance(step, Fork):
                first = len(self.layers)
                self.layers.extend(ConvBN(f"{scope}/{s.name}", self.out, s) for s in step.convs)
                self.steps.append(("fork", range(first, len(self.layers))))
                self.out = sum(s.out for s in step.convs)
            else:
                self.steps.append((step.kind, None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for kind, idx in self.steps:
            if kind == "conv":
                x = self.layers[idx](x)
            elif kind == "fork":
                x = torch.cat([self.layers[i](x) for i in idx], 1)
            else:
                x = pool(kind, x)
        return x


class Mixed(nn.Module):
    def __init__(self, scope: str, cin: int, branches):
        super().__init__()
        self.branches = nn.ModuleList(Chain(f"{scope}/Branch_{i}", cin, b) for i, b in enumerate(branches))
        self.out = sum(b.out for b in self.branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class InceptionV3(nn.Module):
    """(B, 3, 299, 299) images in [-1, 1] -> (B, 2048) pooled Mixed_7c features."""

    def __init__(self):
        super().__init__()
        self.stem = Chain(SCOPE, 3, STEM)
        blocks, cin = [], self.stem.out
        for name, branches in BLOCKS:
            blocks.append(Mixed(f"{SCOPE}/{name}", cin, branches))
            cin = blocks[-1].out
        self.blocks = nn.Sequential(*blocks)
        assert cin == FEATURES, cin

    def convs(self) -> list[ConvBN]:
        """Every conv layer, in network order; each knows its slim scope (`tf_name`)."""
        return [m for m in self.modules() if isinstance(m, ConvBN)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x)).mean((2, 3))
