"""DenseCap's network in torch, sized by the checkpoint it is built from (checkpoint.py fills it).

The test-time path of DenseCapModel.lua: the conv trunk (VGG-16's conv1_1..relu5_3, conv_net1 + conv_net2),
the localization layer (RPN conv + box and objectness branches over the anchors, clipping, proposal NMS,
bilinear RoI sampling), the recognition network (VGG's fc6/fc7 as recog_base, objectness and final box
regression branches), the final NMS, and the LSTM language model decoding greedily (sample_argmax, as the
release ran). One difference in order, not in answers: the language model runs after the final NMS, on the
regions kept, where the original captioned every proposal and then dropped the suppressed ones (each region
is decoded independently, so the kept captions are the same).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from models.densecap.boxes import (apply_box_transform, bilinear_roi_pool, clip_boxes, make_anchors, nms,
                                   reshape_box_features, xcycwh_to_x1y1x2y2)


@dataclass(frozen=True)
class TestArgs:
    """run_model.lua's settings: -rpn_nms_thresh 0.7, -num_proposals 1000, -final_nms_thresh 0.3."""

    rpn_nms_thresh: float = 0.7
    num_proposals: int = 1000
    final_nms_thresh: float = 0.3
    max_regions: int | None = None  # keep the best N after the final NMS (None: all, as the JSON output)


class LocalizationLayer(nn.Module):
    """LocalizationLayer.lua at test time."""

    def __init__(self, in_channels: int, num_filters: int, filter_size: int, anchors: torch.Tensor,
                 field_centers: tuple[float, float, float, float], output_size: tuple[int, int]):
        super().__init__()
        k = anchors.shape[1]
        self.conv = nn.Conv2d(in_channels, num_filters, filter_size, padding=filter_size // 2)
        self.box_conv = nn.Conv2d(num_filters, 4 * k, 1)
        self.score_conv = nn.Conv2d(num_filters, 2 * k, 1)  # positive / negative per anchor
        self.register_buffer("anchors", anchors.clone().float())  # 2 x k: widths, heights
        self.field_centers = field_centers  # x0, y0, sx, sy
        self.output_size = output_size

    def forward(self, features: torch.Tensor, image_height: int, image_width: int, args: TestArgs):
        """features (D, Hf, Wf) of one image -> (RoI features (n, D, oh, ow), proposals (n, 4) xcycwh)."""
        k = self.anchors.shape[1]
        hidden = torch.relu(self.conv(features[None]))[0]
        _, hf, wf = hidden.shape
        anchors = make_anchors(*self.field_centers, self.anchors, hf, wf)
        trans = reshape_box_features(self.box_conv(hidden[None])[0], k)
        scores = reshape_box_features(self.score_conv(hidden[None])[0], k)
        boxes, valid = clip_boxes(apply_box_transform(anchors, trans), image_width, image_height)
        boxes, scores = boxes[valid], scores[valid]
        positive = torch.softmax(scores, 1)[:, 0]  # exp(pos) / (exp(pos) + exp(neg))
        keep = nms(xcycwh_to_x1y1x2y2(boxes), positive, args.rpn_nms_thresh, args.num_proposals)
        proposals = boxes[keep]
        pooled = bilinear_roi_pool(features, proposals, image_height, image_width, *self.output_size)
        return pooled, proposals


class RecognitionNetwork(nn.Module):
    """recog_base (VGG's fully connected layers, each followed by ReLU; dropout is off at test time) and the
    objectness and final box regression branches."""

    def __init__(self, fc_sizes: list[tuple[int, int]]):
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(i, o) for i, o in fc_sizes)
        dim = fc_sizes[-1][1]
        self.objectness = nn.Linear(dim, 1)
        self.box_reg = nn.Linear(dim, 4)

    def forward(self, roi_features: torch.Tensor, proposals: torch.Tensor):
        codes = roi_features.flatten(1)
        for fc in self.fcs:
            codes = torch.relu(fc(codes))
        return codes, self.objectness(codes)[:, 0], apply_box_transform(proposals, self.box_reg(codes))


class TorchRnnLSTM(nn.Module):
    """densecap's LSTM (from torch-rnn): one weight (D + H) x 4H applied to [x, h], gates i, f, o, g."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight = nn.Parameter(torch.zeros(input_size + hidden_size, 4 * hidden_size))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        gates = self.bias + x @ self.weight[: self.input_size] + h @ self.weight[self.input_size :]
        i, f, o, g = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class LanguageModel(nn.Module):
    """LanguageModel.lua. Token ids are the original's, 1-based: words 1..V, V + 1 is both START and END,
    V + 2 NULL; the lookup table has V + 2 rows, the output layer V + 1 scores (END last)."""

    def __init__(self, image_dim: int, encoding_size: int, rnn_size: int, vocab_size: int, num_layers: int,
                 seq_length: int):
        super().__init__()
        self.vocab_size, self.seq_length = vocab_size, seq_length
        self.image_encoder = nn.Linear(image_dim, encoding_size)
        self.lookup_table = nn.Embedding(vocab_size + 2, encoding_size)
        self.lstms = nn.ModuleList(TorchRnnLSTM(encoding_size if n == 0 else rnn_size, rnn_size)
                                   for n in range(num_layers))
        self.output = nn.Linear(rnn_size, vocab_size + 1)

    @property
    def end_token(self) -> int:
        return self.vocab_size + 1

    def step(self, x: torch.Tensor, states: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """One time step through every LSTM layer (states updated in place) -> word scores (N, V + 1)."""
        for n, lstm in enumerate(self.lstms):
            states[n] = lstm(x, states[n])
            x = states[n][0]
        return self.output(x)

    def sample(self, image_vectors: torch.Tensor) -> torch.Tensor:
        """LM:sample with sample_argmax: the encoded image first (its output ignored), then START, then each
        argmax word fed back, seq_length steps. Returns (N, seq_length) 1-based ids; after a region's END the
        rest is 0 (decodeSequence stops at the first END either way)."""
        n = image_vectors.shape[0]
        seq = torch.zeros(n, self.seq_length, dtype=torch.long, device=image_vectors.device)
        if n == 0:
            return seq
        zeros = image_vectors.new_zeros(n, self.lstms[0].hidden_size)
        states = [(zeros, zeros) for _ in self.lstms]
        self.step(torch.relu(self.image_encoder(image_vectors)), states)
        words = torch.full((n,), self.end_token, dtype=torch.long, device=image_vectors.device)  # START
        done = torch.zeros(n, dtype=torch.bool, device=image_vectors.device)
        for t in range(self.seq_length):
            words = self.step(self.lookup_table(words - 1), states).argmax(1) + 1
            seq[:, t] = words.masked_fill(done, 0)
            done |= words == self.end_token
            if bool(done.all()):
                break
        return seq


class DenseCapNet(nn.Module):
    def __init__(self, trunk: nn.Sequential, localization: LocalizationLayer, recognition: RecognitionNetwork,
                 language_model: LanguageModel):
        super().__init__()
        self.trunk, self.localization = trunk, localization
        self.recognition, self.language_model = recognition, language_model

    def detect(self, image: torch.Tensor, args: TestArgs):
        """One preprocessed image (3, H, W) -> final boxes (n, 4) xcycwh in its pixels, objectness scores (n,)
        and region codes (n, fc) after the final NMS, best first."""
        _, height, width = image.shape
        features = self.trunk(image[None])[0]
        pooled, proposals = self.localization(features, height, width, args)
        codes, scores, boxes = self.recognition(pooled, proposals)
        if args.final_nms_thresh > 0:
            keep = nms(xcycwh_to_x1y1x2y2(boxes), scores, args.final_nms_thresh, args.max_regions)
        else:
            keep = scores.argsort(descending=True)[: args.max_regions]
        return boxes[keep], scores[keep], codes[keep]
