"""DenseCap as a served family: run_model.lua's pre-processing, the network, and regions in input pixels."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from pydantic import BaseModel, Field

from models.densecap.checkpoint import build_from_checkpoint, read_t7
from models.densecap.family import FAMILY, DenseCapOptions
from models.densecap.network import TestArgs
from models.outputs import Box
from models.torch_device import torch_device
from serve.model import Model, ModelSpec

#: VGG-16's Caffe mean, BGR, subtracted from 0..255 pixels (run_model.lua)
VGG_MEAN_BGR = (103.939, 116.779, 123.68)
MIN_SIDE = 32


class Region(BaseModel):
    """One region and its caption."""

    box: Box
    score: float = Field(description="objectness score (the recognition network's raw logit; higher is better)")
    caption: str = Field(description="words from the checkpoint's vocabulary, space-separated")


class Regions(BaseModel):
    """Regions of one image, best first."""

    regions: list[Region]
    width: int = Field(description="input image width, pixels")
    height: int = Field(description="input image height, pixels")


def scale_longer_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) float -> longer side `size`, aspect kept (image.scale(img, size)): bilinear through pixel
    centres at the corners when enlarging, as torch7's image.scale; antialiased when shrinking, where torch7
    averaged the source pixels. The shorter side is kept at MIN_SIDE at least: VGG's four poolings need 16
    pixels for one feature row (the original failed on thinner images)."""
    _, h, w = image.shape
    scale = size / max(h, w)
    out = (max(MIN_SIDE, round(h * scale)), max(MIN_SIDE, round(w * scale)))
    if scale >= 1:
        return F.interpolate(image[None], out, mode="bilinear", align_corners=True)[0]
    return F.interpolate(image[None], out, mode="bilinear", antialias=True, align_corners=False)[0]


class DenseCapModel(Model[Regions]):
    """Weights and options: models/densecap/family.py."""

    family = FAMILY
    output_type = Regions
    options: DenseCapOptions

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.args = TestArgs(self.options.rpn_nms_thresh, self.options.num_proposals,
                             self.options.final_nms_thresh, self.options.max_regions)
        self.net = None
        self.words: list[str] = []

    def load_weights(self) -> None:
        self.device = torch_device(self.spec.name, self.spec.device)
        net, self.words = build_from_checkpoint(read_t7(self.spec.weights["checkpoint"]))
        self.net = net.to(self.device)

    def preprocess(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)
        x = scale_longer_side(x, self.options.image_size)[[2, 1, 0]]  # RGB -> BGR, 0..255
        x -= torch.tensor(VGG_MEAN_BGR).view(3, 1, 1)
        return x, (w, h, x.shape[2], x.shape[1])

    def predict(self, inputs: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Each image through the trunk, localization and recognition (sizes differ); the language model then
        captions the kept regions of the whole batch at once."""
        with torch.inference_mode():
            detected = [self.net.detect(x.to(self.device), self.args) for x in inputs]
            codes = torch.cat([c for _, _, c in detected])
            seqs = self.net.language_model.sample(codes).cpu().split([len(c) for _, _, c in detected])
        return [(boxes.cpu(), scores.cpu(), seq) for (boxes, scores, _), seq in zip(detected, seqs)]

    def caption(self, seq: torch.Tensor) -> str:
        """decodeSequence: words up to the first END (or 0)."""
        end, words = self.net.language_model.end_token, []
        for token in seq.tolist():
            if token in (0, end):
                break
            words.append(self.words[token - 1])
        return " ".join(words)

    def postprocess(self, raw, meta: tuple[int, int, int, int]) -> Regions:
        boxes, scores, seqs = raw
        w, h, sw, sh = meta
        regions = []
        for (xc, yc, bw, bh), score, seq in zip(boxes.tolist(), scores.tolist(), seqs):
            # 1-based pixel centres of the scaled image -> 0-based pixel edges of the input, clipped to it
            x1, x2 = ((xc - bw / 2 - 0.5) * w / sw, (xc + bw / 2 - 0.5) * w / sw)
            y1, y2 = ((yc - bh / 2 - 0.5) * h / sh, (yc + bh / 2 - 0.5) * h / sh)
            box = Box(x1=min(max(x1, 0.0), w), y1=min(max(y1, 0.0), h), x2=min(max(x2, 0.0), w),
                      y2=min(max(y2, 0.0), h))
            regions.append(Region(box=box, score=score, caption=self.caption(seq)))
        return Regions(regions=regions, width=w, height=h)

    def render(self, image: np.ndarray, output: Regions) -> np.ndarray:
        canvas = Image.fromarray(np.ascontiguousarray(image[..., :3], dtype=np.uint8))
        draw = ImageDraw.Draw(canvas)
        for region in output.regions:
            b = region.box
            draw.rectangle([b.x1, b.y1, b.x2, b.y2], outline=(255, 200, 0), width=2)
            left, top, right, bottom = draw.textbbox((b.x1 + 3, b.y1 + 2), region.caption)
            draw.rectangle([left - 2, top - 1, right + 2, bottom + 1], fill=(0, 0, 0))
            draw.text((b.x1 + 3, b.y1 + 2), region.caption, fill=(255, 255, 255))
        return np.asarray(canvas)
