"""`runway-models profile MODEL`: measure one model on the machine it runs on and choose its serving settings.

The model is loaded in this process as a replica loads it (`serve.runner.build_model`, `Model.load`), one real
photo is decoded once, and `Model.infer` is timed for each variant: a thread layout BxI (B batches computing at
once, each in a Python thread of its own, as the replica's BatchQueue with concurrency B runs them; torch ops on I
threads; B x I at most the cores this process may use, B at most what the model computes at once) and a batch size
(1, 2, 4, 8 up to `--max-batch`). Each variant reports its batch latency (p50) and throughput (images/s, all
threads together). The choice: the best throughput whose batch latency fits a share of the entry's
`latency_budget_s` (`choose`), written into a copy of the catalog (`write_catalog`) as `serving.batching`,
`serving.threads` and `serving.autoscaling.target_ongoing_requests`.

No HTTP, no Ray cluster, no event loop: the family's own `infer` on plain threads, so the figures are the model's
on this machine (a GPU node and a laptop each get settings measured for them), not the serving path's.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from serve.catalog import Batching, Entry, Threads, parse_catalog
from serve.codecs import decode_bytes
from serve.device import cuda_available
from serve.errors import ServeError
from serve.model import Model
from serve.registry import GPU_FAMILIES
from serve.runner import build_model
from serve.threads import set_intra_op_threads, usable_cores

BATCH_SIZES = (1, 2, 4, 8)
#: A chosen batch may take at most this share of `latency_budget_s`. A request that arrives while every batch
#: slot computes waits for one batch and then computes in the next: two batch latencies. Half the budget again is
#: headroom for decoding, the batch wait and a loaded machine (shared machines here ran 2x slower some days), so
#: that at steady load admission (serve/admission.py) does not start refusing requests the budget allows.
LATENCY_SHARE = 0.25
#: `batch_wait_timeout_s` as a share of the chosen layout's batch-1 latency. A batch waits while another request
#: is still decoding (serve/batching.py, `arriving`), and every request already in it pays that wait: 5 % keeps
#: that cost within issue 12's margin (p50 at most 1.05x a plain server's). Under load batches fill from the queue
#: while others compute, so a longer wait buys little.
WAIT_SHARE = 0.05
#: Throughputs within this share of the best are ties (one short run on a shared machine measures no closer); of
#: those the variant with the lowest batch latency wins.
THROUGHPUT_TIE = 0.05
#: Measured calls per thread in each variant, whatever the time budget (a p50 needs a few).
MIN_CALLS = 3


class ProfileError(Exception):
    """What keeps a model from being profiled, said for the command line."""


class Measurement(BaseModel):
    """One variant measured: `batches` threads each calling `Model.infer` with `batch_size` images at once."""

    model_config = ConfigDict(extra="forbid")
    batches: int = Field(ge=1, description="batches computing at once (threads.batches)")
    intra_op: int | None = Field(ge=1, description="torch threads per op (threads.intra_op); None: the family "
                                 "does not run on torch and sets its threads in `options`")
    batch_size: int = Field(ge=1, description="images per infer call")
    calls: int = Field(ge=1, description="measured infer calls, all threads together (warm-up calls excluded)")
    latency_p50_s: float = Field(gt=0, description="median time of one infer call (one batch)")
    latency_mean_s: float = Field(gt=0, description="mean time of one infer call")
    throughput: float = Field(gt=0, description="images per second, all threads together, over the measured calls")

    @property
    def layout(self) -> str:
        return f"{self.batches}x{self.intra_op or '-'}"


class Choice(BaseModel):
    """The settings chosen from the measurements; `batching` and `threads` are the catalog's own types."""

    model_config = ConfigDict(extra="forbid")
    batching: Batching
    threads: Threads
    target_ongoing_requests: int = Field(ge=1, description="serving.autoscaling.target_ongoing_requests: "
                                         "threads.batches x max_batch_size, what one replica computes at once")
    chosen: Measurement = Field(description="the variant these settings come from")
    latency_limit_s: float = Field(gt=0, description=f"{LATENCY_SHARE} x latency_budget_s: the longest batch "
                                   "latency a variant may have to be chosen")
    within_limit: bool = Field(description="false: no variant was within the limit, the fastest batch was chosen")


class Profile(BaseModel):
    """Everything `runway-models profile` measured and chose (what `--json` writes)."""

    model_config = ConfigDict(extra="forbid")
    model: str
    device: Literal["cpu", "cuda"]
    cores: int = Field(ge=1, description="cores this process could use (affinity and cgroup quota)")
    image: str = Field(description="the photo every batch is made of")
    image_size: tuple[int, int] = Field(description="its width and height")
    seconds: float = Field(description="wall time of the measurements, warm-up included")
    rows: list[Measurement]
    choice: Choice


def default_device(entry: Entry) -> str:
    """"cuda" when the entry wants a GPU, its family can use one and this torch has CUDA, else "cpu"."""
    assert entry.serving is not None
    if entry.specs.gpu and entry.serving.implementation in GPU_FAMILIES and cuda_available():
        return "cuda"
    return "cpu"


def _counts(limit: int) -> list[int]:
    """1, 2, 4, ... up to `limit`, and `limit` itself."""
    return sorted({2 ** k for k in range(limit.bit_length()) if 2 ** k <= limit} | {limit})


def thread_layouts(cores: int, torch: bool, concurrent_batches: int | None) -> list[tuple[int, int | None]]:
    """(batches, intra_op) to measure: powers of two (and `cores`) with batches x intra_op <= cores, batches at
    most `concurrent_batches` when the model caps it (more would only wait for the model); intra_op None where
    the family does not run on torch (set_intra_op_threads would change nothing)."""
    layouts: list[tuple[int, int | None]] = []
    for batches in _counts(min(cores, concurrent_batches or cores)):
        if not torch:
            layouts.append((batches, None))
            continue
        layouts += [(batches, intra_op) for intra_op in _counts(cores // batches)]
    return layouts


def batch_sizes(max_batch: int) -> list[int]:
    return [size for size in BATCH_SIZES if size <= max_batch] or [1]


def measure(model: Model, image: np.ndarray, batches: int, intra_op: int | None, batch_size: int,
            seconds: float) -> Measurement:
    """`batches` threads, each warmed up with one call, then calling `model.infer` on its own batch of
    `batch_size` copies of `image` until `seconds` have passed (at least MIN_CALLS calls each)."""
    if intra_op is not None:
        set_intra_op_threads(intra_op)
    batch = [image] * batch_size
    start = threading.Barrier(batches)

    def work() -> tuple[list[float], float, float]:
        try:
            model.infer(batch)  # the first call of a size allocates; not measured
        except BaseException:
            start.abort()  # the other threads stop waiting and fail too
            raise
        start.wait()
        began = time.perf_counter()
        stop, latencies = began + seconds, []
        while len(latencies) < MIN_CALLS or time.perf_counter() < stop:
            t0 = time.perf_counter()
            model.infer(batch)
            latencies.append(time.perf_counter() - t0)
        return latencies, began, time.perf_counter()

    with ThreadPoolExecutor(batches, thread_name_prefix="profile") as pool:
        runs = [future.result() for future in [pool.submit(work) for _ in range(batches)]]
    latencies = [s for run, _, _ in runs for s in run]
    wall = max(end for _, _, end in runs) - min(began for _, began, _ in runs)
    return Measurement(batches=batches, intra_op=intra_op, batch_size=batch_size, calls=len(latencies),
                       latency_p50_s=statistics.median(latencies), latency_mean_s=statistics.fmean(latencies),
                       throughput=len(latencies) * batch_size / wall)


def choose(rows: list[Measurement], latency_budget_s: float) -> Choice:
    """The variant with the best throughput whose batch latency p50 is within LATENCY_SHARE of the budget
    (near-ties, THROUGHPUT_TIE, go to the lowest latency); when none is, the lowest latency. Its settings:
    `max_batch_size` its batch size, `batch_wait_timeout_s` WAIT_SHARE of its layout's batch-1 latency (0 for
    batches of one: nothing to wait for), threads its layout, `target_ongoing_requests` batches x batch size."""
    if not rows:
        raise ValueError("no measurements to choose from")
    limit = LATENCY_SHARE * latency_budget_s
    fitting = [row for row in rows if row.latency_p50_s <= limit]
    if fitting:
        best = max(row.throughput for row in fitting)
        chosen = min((row for row in fitting if row.throughput >= (1 - THROUGHPUT_TIE) * best),
                     key=lambda row: row.latency_p50_s)
    else:
        chosen = min(rows, key=lambda row: row.latency_p50_s)
    single = [row for row in rows if (row.batches, row.intra_op, row.batch_size) ==
              (chosen.batches, chosen.intra_op, 1)]
    batch_one_s = single[0].latency_p50_s if single else chosen.latency_p50_s / chosen.batch_size
    wait = 0.0 if chosen.batch_size == 1 else min(1.0, round(WAIT_SHARE * batch_one_s, 4))
    return Choice(batching=Batching(max_batch_size=chosen.batch_size, batch_wait_timeout_s=wait),
                  threads=Threads(batches=chosen.batches, intra_op=chosen.intra_op),
                  target_ongoing_requests=chosen.batches * chosen.batch_size, chosen=chosen,
                  latency_limit_s=limit, within_limit=bool(fitting))


def load_image(path: Path, entry: Entry) -> np.ndarray:
    """The photo decoded once, as a replica decodes a request's bytes (the entry's input limits)."""
    assert entry.serving is not None
    limits = entry.serving.limits
    try:
        return decode_bytes(path.read_bytes(), limits.max_bytes, limits.max_pixels)
    except OSError as exc:
        raise ProfileError(f"cannot read the image {path}: {exc.strerror or exc}") from None
    except ServeError as exc:  # not an image, or beyond the entry's limits
        raise ProfileError(f"{path}: {exc}") from None


def profile(entry: Entry, base_dir: Path, image_path: Path, device: str | None = None, max_batch: int = 8,
            seconds: float = 20.0, report: Callable[[Measurement, int, int], None] | None = None) -> Profile:
    """Load the entry's model, measure every variant (about `seconds` in all, warm-up apart) and choose.
    `report(row, done, total)` is called after each variant (the command line prints progress with it)."""
    if entry.serving is None or entry.unservable_reason:
        raise ProfileError(f"{entry.name} is not served by this stack: {entry.unservable_reason}")
    device = device or default_device(entry)
    if device == "cuda" and entry.serving.implementation not in GPU_FAMILIES:
        raise ProfileError(f"{entry.name}: {entry.serving.implementation!r} runs on CPU only; use --device cpu")
    image = load_image(image_path, entry)
    cores = usable_cores()

    def loaded(threads: Threads | None = None) -> Model:
        model = build_model(entry, base_dir, device=device, threads=threads)
        model.load()
        return model

    model = loaded()
    torch = sys.modules.get("torch")  # imported by the family: torch's intra-op threads are a knob
    torch_threads = torch.get_num_threads() if torch else None
    # The catalog refuses max_batch_size above max_ongoing_requests (a batch that could never fill).
    sizes = batch_sizes(min(max_batch, entry.serving.max_ongoing_requests))
    # A family with a pool of its own (TFLite interpreters) sizes it from the layout it is built for
    # (ModelSpec.batches): it is rebuilt for each layout, up to what a pool sized for every core computes at once.
    pooled = torch is None and model.concurrent_batches is not None
    widest = loaded(Threads(batches=cores)).concurrent_batches if pooled else model.concurrent_batches
    variants = [(b, i, n) for b, i in thread_layouts(cores, torch is not None, widest) for n in sizes]
    share = seconds / len(variants)
    rows, began = [], time.perf_counter()
    try:
        for batches, intra_op, size in variants:
            if pooled and size == sizes[0]:  # a new layout: the pool sized for it
                model = loaded(Threads(batches=batches))
            rows.append(measure(model, image, batches, intra_op, size, share))
            if report:
                report(rows[-1], len(rows), len(variants))
    finally:
        if torch is not None:
            torch.set_num_threads(torch_threads)
    height, width = image.shape[:2]
    return Profile(model=entry.name, device=device, cores=cores, image=str(image_path), image_size=(width, height),
                   seconds=time.perf_counter() - began, rows=rows,
                   choice=choose(rows, entry.serving.latency_budget_s))


# --- output -------------------------------------------------------------------------------------------------

HEADER = f"{'layout':>6} {'batch':>5} {'calls':>5} {'p50 ms':>8} {'ms/image':>8} {'images/s':>8}"


def row_line(row: Measurement, chosen: bool = False) -> str:
    return (f"{row.layout:>6} {row.batch_size:5d} {row.calls:5d} {row.latency_p50_s * 1e3:8.1f} "
            f"{row.latency_p50_s * 1e3 / row.batch_size:8.1f} {row.throughput:8.1f}{'  <- chosen' if chosen else ''}")


def settings(choice: Choice) -> dict[str, Any]:
    """The catalog's sections as `write_catalog` sets them (threads without unset fields)."""
    return {"batching": choice.batching.model_dump(), "threads": choice.threads.model_dump(exclude_none=True),
            "autoscaling.target_ongoing_requests": choice.target_ongoing_requests}


def table(result: Profile) -> str:
    """The measurements and the choice, as the command prints them."""
    choice = result.choice
    width, height = result.image_size
    lines = [f"{result.model} on {result.device}, {result.cores} cores, {Path(result.image).name} {width}x{height}: "
             f"{len(result.rows)} variants in {result.seconds:.1f} s (layout BxI: B batches at once, torch ops on "
             f"I threads; '-': not a torch family)", HEADER]
    lines += [row_line(row, row == choice.chosen) for row in result.rows]
    verdict = "best throughput within" if choice.within_limit else "no variant within; the fastest batch for"
    lines.append(f"chosen: {verdict} {choice.latency_limit_s * 1e3:.0f} ms per batch "
                 f"({LATENCY_SHARE} x latency_budget_s)")
    lines += [f"  serving.{key}: {json.dumps(value)}" for key, value in settings(choice).items()]
    return "\n".join(lines)


def _indent(text: str) -> int | str:
    """The catalog's own indentation (its first indented line's), so a rewrite keeps its layout."""
    match = re.search(r"\n([ \t]+)\S", text)
    return match.group(1) if match else 2


def _put(section: dict[str, Any], key: str, value: Any, after: str) -> None:
    """section[key] = value, in place; a new key goes right after `after` (the sections it belongs with)."""
    if key in section or after not in section:
        section[key] = value
        return
    items = list(section.items())
    section.clear()
    for name, old in items:
        section[name] = old
        if name == after:
            section[key] = value


def with_settings(raw: Any, name: str, choice: Choice) -> Any:
    """The decoded catalog with the `name` entry's batching, threads and target_ongoing_requests set; every
    other key keeps its value and place (a new section goes after the one it belongs with)."""
    entries = raw["models"] if isinstance(raw, dict) else raw
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            serving, values = entry["serving"], settings(choice)
            serving["batching"] = values["batching"]
            _put(serving, "threads", values["threads"], after="batching")
            _put(serving, "autoscaling", serving.get("autoscaling", {}), after="threads")
            serving["autoscaling"]["target_ongoing_requests"] = choice.target_ongoing_requests
            return raw
    raise ProfileError(f"no entry named {name!r} in the catalog")


def write_catalog(source: Path, name: str, choice: Choice, dest: Path) -> None:
    """A copy of the catalog at `source` with the chosen settings in the `name` entry, written to `dest` only
    once it validates. JSON written with the source's indentation, escaping and final newline: a catalog laid out
    as `json.dumps` writes it (models.json is) changes only in those keys."""
    text = source.read_text()
    raw = with_settings(json.loads(text), name, choice)
    parse_catalog(raw, str(dest), base=dest.resolve().parent)  # CatalogError naming the field, before writing
    ending = "\n" if text.endswith("\n") else ""
    dest.write_text(json.dumps(raw, indent=_indent(text), ensure_ascii=text.isascii()) + ending)
