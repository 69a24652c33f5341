"""im2txt (Show and Tell, Vinyals et al.) image captioning from tensorflow/models' released checkpoint,
run with torch: InceptionV3 features -> LSTM -> beam search, as research/im2txt's inference does."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from pydantic import BaseModel, Field

from models.im2txt.checkpoint import END_WORD, START_WORD, UNK_WORD, build_from_checkpoint, read_checkpoint, \
    read_vocab
from models.im2txt.family import FAMILY, Im2txtOptions
from models.torch_device import torch_device
from serve.model import Model, ModelSpec

IMAGE_SIZE, RESIZE = 299, 346
MIN_PROB = 1e-12  # caption_generator.py skips words less likely than this ("avoid log(0)")


class Caption(BaseModel):
    """One generated sentence."""

    text: str = Field(description="the words, space-separated, without the start and end tokens")
    log_prob: float = Field(le=0.0, description="natural-log probability of the whole token sequence")
    tokens: list[str] = Field(description="the generated tokens after <S>; a finished caption ends with </S>")


class Captions(BaseModel):
    """Captions of one image, best first."""

    captions: list[Caption]
    width: int = Field(description="input image width, pixels")
    height: int = Field(description="input image height, pixels")


def resize_bilinear_legacy(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(C, H, W) -> (C, height, width) as TF1's tf.image.resize_images(BILINEAR) did when im2txt was trained
    (resize_bilinear, align_corners=False, half_pixel_centers=False): source = dest * in / out, no pixel-centre
    offset and no antialiasing, which torch's F.interpolate cannot express."""

    def axis(n_in: int, n_out: int):
        # float32 throughout, as TF's kernel: positions then round the same way (up to 1e-5 otherwise)
        src = torch.arange(n_out, dtype=torch.float32) * (torch.tensor(n_in, dtype=torch.float32) / n_out)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo, hi, src - lo

    y0, y1, fy = axis(x.shape[1], height)
    x0, x1, fx = axis(x.shape[2], width)
    rows = x[:, y0] + (x[:, y1] - x[:, y0]) * fy[None, :, None]
    return rows[:, :, x0] + (rows[:, :, x1] - rows[:, :, x0]) * fx


@dataclass(order=True)
class Beam:
    logprob: float
    sentence: list[int] = field(compare=False)
    state: tuple[torch.Tensor, torch.Tensor] | None = field(compare=False)


class TopN:
    """caption_generator.py's TopN: keeps the n best by score (here: log-probability, no length norm)."""

    def __init__(self, n: int):
        self.n, self.data = n, []

    def push(self, beam: Beam) -> None:
        (heapq.heappush if len(self.data) < self.n else heapq.heappushpop)(self.data, beam)

    def best_first(self) -> list[Beam]:
        return sorted(self.data, reverse=True)


def beam_search(step, initial_states, start_id: int, end_id: int, beam_size: int,
                max_caption_length: int) -> list[list[Beam]]:
    """caption_generator.py's beam search, run for a batch of images at once: every step feeds the last
    word of every partial caption of every image through one batched `step(words, (h, c)) -> (log_probs,
    (h, c))`. `initial_states` is (h, c) with one row per image. Returns each image's captions, best first:
    the finished ones, or the unfinished ones if none finished (never a mixture, as the reference)."""
    h0, c0 = initial_states
    partial = [TopN(beam_size) for _ in range(h0.shape[0])]
    complete = [TopN(beam_size) for _ in range(h0.shape[0])]
    for i, top in enumerate(partial):
        top.push(Beam(0.0, [start_id], (h0[i], c0[i])))
    for _ in range(max_caption_length - 1):
        beams = [(i, b) for i, top in enumerate(partial) for b in top.data]
        if not beams:
            break
        for top in partial:
            top.data = []
        words = torch.tensor([b.sentence[-1] for _, b in beams], device=h0.device)
        state = (torch.stack([b.state[0] for _, b in beams]), torch.stack([b.state[1] for _, b in beams]))
        log_probs, (h, c) = step(words, state)
        top_lp, top_w = log_probs.topk(min(beam_size, log_probs.shape[1]), dim=1)
        top_lp, top_w = top_lp.double().cpu().numpy(), top_w.cpu().numpy()
        for row, (i, beam) in enumerate(beams):
            for lp, w in zip(top_lp[row], top_w[row]):
                if lp < math.log(MIN_PROB):
                    continue
                new = Beam(beam.logprob + float(lp), beam.sentence + [int(w)], (h[row], c[row]))
                (complete if w == end_id else partial)[i].push(new)
    return [(done if done.data else part).best_first() for done, part in zip(complete, partial)]


class Im2txtModel(Model[Captions]):
    """Weights and options: models/im2txt/family.py."""

    family = FAMILY
    output_type = Captions
    options: Im2txtOptions

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.net = None
        self.words: list[str] = []

    def load_weights(self) -> None:
        self.device = torch_device(self.spec.name, self.spec.device)
        self.words = read_vocab(self.spec.weights["vocab"])
        net, _ = build_from_checkpoint(read_checkpoint(self.spec.weights["checkpoint"]))
        vocab_size = net.seq_embedding.num_embeddings
        if vocab_size < len(self.words):
            raise ValueError(f"{self.spec.name}: vocabulary has {len(self.words)} words (with {UNK_WORD}) but "
                             f"the checkpoint only {vocab_size}")
        self.net = net.eval().to(self.device)
        self.start_id, self.end_id = self.words.index(START_WORD), self.words.index(END_WORD)

    def word(self, i: int) -> str:
        # The released model's vocab_size (12000) exceeds its word list; vocabulary.py maps the extra ids to <UNK>
        return self.words[i] if i < len(self.words) else UNK_WORD

    def preprocess(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        # image_processing.process_image (eval): [0, 1] floats, resize to 346x346 ignoring aspect, central crop
        # 299x299 (resize_image_with_crop_or_pad offsets by (346 - 299) // 2), then to [-1, 1]
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)
        x = resize_bilinear_legacy(x, RESIZE, RESIZE)
        o = (RESIZE - IMAGE_SIZE) // 2
        x = x[:, o : o + IMAGE_SIZE, o : o + IMAGE_SIZE]
        return (x - 0.5) * 2.0, (w, h)

    def predict(self, inputs: list[torch.Tensor]) -> list[list[Beam]]:
        with torch.inference_mode():
            state = self.net.initial_state(torch.stack(inputs).to(self.device))
            return beam_search(self.net.step, state, self.start_id, self.end_id,
                               self.options.beam_size, self.options.max_caption_length)

    def postprocess(self, raw: list[Beam], meta: tuple[int, int]) -> Captions:
        captions = []
        for beam in raw:
            tokens = [self.word(i) for i in beam.sentence[1:]]
            words = tokens[:-1] if beam.sentence[-1] == self.end_id else tokens
            captions.append(Caption(text=" ".join(words), log_prob=min(beam.logprob, 0.0), tokens=tokens))
        return Captions(captions=captions, width=meta[0], height=meta[1])
