"""Box arithmetic of jcjohnson/densecap (box_utils.lua, modules/ApplyBoxTransform.lua, MakeAnchors.lua,
BoxToAffine.lua + stnbhwd's bilinear sampler), in torch.

Coordinates follow the original: Torch's 1-based pixels (the first pixel's centre is 1, the last W), boxes
as (xc, yc, w, h) unless a name says x1y1x2y2, and NMS with Girshick's "+1" areas.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def xcycwh_to_x1y1x2y2(boxes: torch.Tensor) -> torch.Tensor:
    xc, yc, w, h = boxes.unbind(-1)
    return torch.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], -1)


def x1y1x2y2_to_xcycwh(boxes: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)


def apply_box_transform(boxes: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
    """ApplyBoxTransform: (xc, yc, w, h) moved by (tx, ty, tw, th) as in Faster R-CNN:
    xc + tx * w, yc + ty * h, w * exp(tw), h * exp(th)."""
    xc, yc, w, h = boxes.unbind(-1)
    tx, ty, tw, th = trans.unbind(-1)
    return torch.stack([xc + tx * w, yc + ty * h, w * tw.exp(), h * th.exp()], -1)


def make_anchors(x0: float, y0: float, sx: float, sy: float, anchors: torch.Tensor, height: int,
                 width: int) -> torch.Tensor:
    """MakeAnchors + ReshapeBoxFeatures: one (xc, yc, w, h) per anchor and feature-map cell, in the order
    ReshapeBoxFeatures lays the RPN's outputs out: anchor-major, then row, then column (k * H * W rows).
    `anchors` is the checkpoint's 2 x k (widths, heights); cell (i, j), 0-based, is centred on
    (x0 + sx * j, y0 + sy * i), the receptive-field centres the original computed for its conv layers."""
    k = anchors.shape[1]
    ys = y0 + sy * torch.arange(height, dtype=anchors.dtype, device=anchors.device)
    xs = x0 + sx * torch.arange(width, dtype=anchors.dtype, device=anchors.device)
    yc, xc = torch.meshgrid(ys, xs, indexing="ij")
    out = torch.empty(k, height, width, 4, dtype=anchors.dtype, device=anchors.device)
    out[..., 0], out[..., 1] = xc, yc
    out[..., 2] = anchors[0].view(k, 1, 1)
    out[..., 3] = anchors[1].view(k, 1, 1)
    return out.view(k * height * width, 4)


def reshape_box_features(x: torch.Tensor, k: int) -> torch.Tensor:
    """ReshapeBoxFeatures: (k * D, H, W) conv output -> (k * H * W, D), anchor-major."""
    kd, h, w = x.shape
    return x.view(k, kd // k, h, w).permute(0, 2, 3, 1).reshape(k * h * w, kd // k)


def clip_boxes(boxes: torch.Tensor, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """box_utils.clip_boxes for (xc, yc, w, h) boxes inside a W x H image with bounds 1..W, 1..H: x1 into
    [1, W - 1], x2 into [2, W] (likewise y); returns the clipped boxes and which stayed non-empty."""
    x1, y1, x2, y2 = xcycwh_to_x1y1x2y2(boxes).unbind(-1)
    x1, x2 = x1.clamp(1, width - 1), x2.clamp(2, width)
    y1, y2 = y1.clamp(1, height - 1), y2.clamp(2, height)
    valid = (x2 > x1) & (y2 > y1)
    return x1y1x2y2_to_xcycwh(torch.stack([x1, y1, x2, y2], -1)), valid


def nms(boxes: torch.Tensor, scores: torch.Tensor, overlap: float, max_boxes: int | None = None) -> torch.Tensor:
    """box_utils.nms: greedy, highest score first; a box is dropped when its IoU with a kept one exceeds
    `overlap`, areas counted Girshick's way ((x2 - x1 + 1) * (y2 - y1 + 1)). `boxes` are x1y1x2y2. Returns the
    kept indices, best first, at most `max_boxes`. Runs in numpy on the CPU: a thousand small steps cost
    ~30 ms each as torch operations on this machine and well under one in numpy."""
    x1, y1, x2, y2 = boxes.detach().double().cpu().numpy().T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores.detach().double().cpu().numpy(), kind="stable")
    keep: list[int] = []
    while order.size and (max_boxes is None or len(keep) < max_boxes):
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.clip(np.minimum(x2[rest], x2[i]) - np.maximum(x1[rest], x1[i]) + 1, 0, None)
        h = np.clip(np.minimum(y2[rest], y2[i]) - np.maximum(y1[rest], y1[i]) + 1, 0, None)
        inter = w * h
        order = rest[inter / (area[rest] + area[i] - inter) <= overlap]
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def box_to_affine(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """BoxToAffine: (xc, yc, w, h) in image pixels -> 2 x 3 matrices taking the output grid's [-1, 1] to the
    image's [-1, 1] (row 0: y, row 1: x, as stnbhwd's BHWD grids):
    [[h / H, 0, (2 yc - H - 1) / (H - 1)], [0, w / W, (2 xc - W - 1) / (W - 1)]]."""
    xc, yc, w, h = boxes.unbind(-1)
    out = boxes.new_zeros(boxes.shape[0], 2, 3)
    out[:, 0, 0] = h / height
    out[:, 0, 2] = (2 * yc - height - 1) / (height - 1)
    out[:, 1, 1] = w / width
    out[:, 1, 2] = (2 * xc - width - 1) / (width - 1)
    return out


def bilinear_roi_pool(features: torch.Tensor, boxes: torch.Tensor, image_height: int, image_width: int,
                      out_height: int, out_width: int) -> torch.Tensor:
    """BilinearRoiPooling: each box of the image sampled from the (D, Hf, Wf) feature map on an out_height x
    out_width grid spanning the box, bilinearly, corners outside the map counting as zero. stnbhwd's grid runs
    -1..1 over the output cells and maps -1..1 onto feature pixels 0..Hf-1: grid_sample with align_corners."""
    n = boxes.shape[0]
    if n == 0:
        return features.new_zeros(0, features.shape[0], out_height, out_width)
    theta = box_to_affine(boxes, image_height, image_width)
    v = torch.linspace(-1, 1, out_height, dtype=features.dtype, device=features.device)
    u = torch.linspace(-1, 1, out_width, dtype=features.dtype, device=features.device)
    ys = theta[:, 0, 0, None] * v + theta[:, 0, 2, None]  # (n, out_height)
    xs = theta[:, 1, 1, None] * u + theta[:, 1, 2, None]  # (n, out_width)
    grid = torch.stack([xs[:, None, :].expand(n, out_height, out_width),
                        ys[:, :, None].expand(n, out_height, out_width)], -1)  # grid_sample wants (x, y)
    return F.grid_sample(features[None].expand(n, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=True)
