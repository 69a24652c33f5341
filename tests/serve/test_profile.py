"""`runway-models profile` (serve/profile.py): the variants it measures, the choice it makes from measured rows,
and the catalog copy `--write` leaves (valid, the settings set, every other key as it was); the fixture families
for the command itself, the real YOLO once (slow)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
from PIL import Image

from serve import profile as prof
from serve.catalog import Batching, Threads, load_catalog, parse_catalog
from serve.cli import main
from serve.profile import Measurement, Profile, choose, default_device, thread_layouts
from tests.helpers.inprocess import fixture_entry
from tests.helpers.paths import MODELS_JSON, REPO

CHANGED = ("batching", "threads")  # and autoscaling.target_ongoing_requests


def row(batches: int, intra_op: int | None, size: int, p50_ms: float, throughput: float) -> Measurement:
    return Measurement(batches=batches, intra_op=intra_op, batch_size=size, calls=6, latency_p50_s=p50_ms / 1e3,
                       latency_mean_s=p50_ms / 1e3, throughput=throughput)


ROWS = [row(1, 1, 1, 40, 25), row(1, 1, 4, 120, 33), row(2, 1, 1, 50, 40), row(2, 1, 4, 180, 44),
        row(2, 1, 8, 700, 60)]


def test_the_best_throughput_within_the_latency_share_is_chosen():
    choice = choose(ROWS, latency_budget_s=2.0)  # limit 0.5 s: the 700 ms batch of 8 is out, though fastest
    assert choice.latency_limit_s == pytest.approx(prof.LATENCY_SHARE * 2.0)
    assert choice.within_limit and choice.chosen == ROWS[3]
    assert choice.batching == Batching(max_batch_size=4, batch_wait_timeout_s=round(prof.WAIT_SHARE * 0.050, 4))
    assert choice.threads == Threads(batches=2, intra_op=1)
    assert choice.target_ongoing_requests == 8  # batches x max_batch_size


def test_a_larger_budget_admits_the_larger_batch():
    assert choose(ROWS, latency_budget_s=4.0).chosen == ROWS[4]


def test_near_ties_go_to_the_lower_latency():
    rows = [row(2, 1, 1, 50, 100), row(2, 1, 2, 90, 103)]  # 3 % more images/s for almost twice the latency
    choice = choose(rows, latency_budget_s=2.0)
    assert choice.chosen == rows[0]
    assert choice.batching.batch_wait_timeout_s == 0  # batches of one: nothing to wait for


def test_when_nothing_fits_the_fastest_batch_is_chosen():
    choice = choose(ROWS, latency_budget_s=0.1)  # limit 25 ms: every batch is slower
    assert not choice.within_limit and choice.chosen == ROWS[0]


def test_layouts_fit_the_cores_and_the_models_own_limit():
    assert thread_layouts(2, torch=True, concurrent_batches=None) == [(1, 1), (1, 2), (2, 1)]
    assert thread_layouts(2, torch=False, concurrent_batches=None) == [(1, None), (2, None)]
    assert thread_layouts(4, torch=True, concurrent_batches=1) == [(1, 1), (1, 2), (1, 4)]
    assert all(b * i <= 6 for b, i in thread_layouts(6, torch=True, concurrent_batches=None))


def test_the_device_is_cuda_only_for_a_gpu_family_wanting_one_where_cuda_is(monkeypatch):
    catalog = load_catalog(MODELS_JSON)
    assert default_device(catalog.get("yolo")) == "cpu"  # this machine's torch is the CPU build
    monkeypatch.setattr(prof, "cuda_available", lambda: True)
    assert default_device(catalog.get("yolo")) == "cuda"
    assert default_device(catalog.get("object-detection")) == "cpu"  # TFLite: CPU whatever is there


@pytest.fixture
def photo_file(tmp_path) -> Path:
    path = tmp_path / "plain.png"
    Image.new("RGB", (32, 24), (10, 200, 30)).save(path)
    return path


def test_a_model_computing_one_batch_at_a_time_is_measured_so(fixture_families, photo_file):
    entry = fixture_entry("slow", "test-slow", options={"delay_s": 0.01, "concurrent_batches": 1})
    result = prof.profile(entry, REPO, photo_file, max_batch=8, seconds=0.1)
    assert {r.batch_size for r in result.rows} == {1, 2, 4, 8}
    assert {r.batches for r in result.rows} == {1}  # a second batch would only wait for the model
    assert all(r.calls >= prof.MIN_CALLS for r in result.rows)
    # The fixture takes 10 ms per batch whatever its size: batches of 8 answer 8x what batches of 1 do.
    assert result.choice.batching.max_batch_size == 8 and result.choice.threads.batches == 1


def test_a_failing_model_fails_the_profile_instead_of_hanging(fixture_families, photo_file):
    entry = fixture_entry("raises", "test-raises")
    with pytest.raises(RuntimeError):
        prof.profile(entry, REPO, photo_file, max_batch=2, seconds=0.05)


def slow_entry() -> dict:
    """A served entry in the original's written forms (string port, size pair, lower-case method), with
    autoscaling and batching of its own."""
    return {"containerId": "slow", "tag": "runway/slow:cpu", "name": "slow", "specs": {"cpu": True, "gpu": False},
            "port": "33998", "query": {"http": {"route": "query_once", "method": "post", "type": "JSON"},
                                       "format": {"data": "data:image/jpg;base64,"}},
            "size": ["0.1", "GB"], "inputs": ["Image"],
            "serving": {"implementation": "test-slow", "options": {"delay_s": 0.005},
                        "batching": {"max_batch_size": 16, "batch_wait_timeout_s": 0.01},
                        "autoscaling": {"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 2},
                        "latency_budget_s": 3.0}}


def without_settings(entry: dict) -> dict:
    serving = {k: v for k, v in entry["serving"].items() if k not in CHANGED}
    serving["autoscaling"] = {k: v for k, v in serving["autoscaling"].items() if k != "target_ongoing_requests"}
    return {**entry, "serving": serving}


def test_write_sets_the_chosen_settings_and_keeps_the_rest(fixture_families, photo_file, tmp_path, capsys):
    source, written, figures = tmp_path / "models.json", tmp_path / "tuned.json", tmp_path / "profile.json"
    original = json.loads(MODELS_JSON.read_text()) + [slow_entry()]
    source.write_text(json.dumps(original, indent=2) + "\n")
    assert main(["profile", "slow", "--catalog", str(source), "--image", str(photo_file), "--seconds", "0.1",
                 "--max-batch", "4", "--write", str(written), "--json", str(figures)]) == 0
    out = capsys.readouterr().out
    assert "<- chosen" in out and "serving.batching" in out

    result = Profile.model_validate_json(figures.read_text())
    choice = result.choice
    entry = load_catalog(written).get("slow")  # the copy loads, fixture family options and all
    assert entry.serving.batching == choice.batching and entry.serving.threads == choice.threads
    assert entry.serving.autoscaling.target_ongoing_requests == choice.target_ongoing_requests
    assert choice.target_ongoing_requests == choice.threads.batches * choice.batching.max_batch_size
    assert choice.batching.max_batch_size <= 4

    tuned = json.loads(written.read_text())
    assert tuned[:-1] == original[:-1]  # the other entries as they were
    assert without_settings(tuned[-1]) == without_settings(original[-1])  # and the rest of this one
    assert list(tuned[-1]) == list(original[-1])  # keys in their places, the new section beside batching
    assert list(tuned[-1]["serving"]) == ["implementation", "options", "batching", "threads", "autoscaling",
                                          "latency_budget_s"]
    assert tuned[-1]["port"] == "33998" and tuned[-1]["size"] == ["0.1", "GB"]
    # The file differs from the source only in the lines of those settings (diff's view).
    diff = [line for line in difflib.unified_diff(source.read_text().splitlines(), written.read_text().splitlines(),
                                                   lineterm="", n=0) if line[:1] in "+-" and line[:3] not in "+++---"]
    settings = ("max_batch_size", "batch_wait_timeout_s", '"threads": {', "batches", "intra_op",
                "target_ongoing_requests", "}")
    assert diff and all(any(key in line for key in settings) for line in diff), diff


def test_sections_an_entry_lacks_are_added_together_at_its_end():
    raw = {"models": [{"name": "m", "serving": {"implementation": "x", "limits": {"max_bytes": 10}}}]}
    choice = choose([row(1, None, 2, 30, 60)], latency_budget_s=2.0)
    serving = prof.with_settings(raw, "m", choice)["models"][0]["serving"]
    assert serving == {"implementation": "x", "limits": {"max_bytes": 10},
                       "batching": {"max_batch_size": 2, "batch_wait_timeout_s": 0.0008},
                       "threads": {"batches": 1}, "autoscaling": {"target_ongoing_requests": 2}}
    assert list(serving) == ["implementation", "limits", "batching", "threads", "autoscaling"]


def test_an_unknown_model_is_an_error(capsys):
    assert main(["profile", "nope", "--catalog", str(MODELS_JSON)]) == 1
    assert "no model 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_profiling_the_real_yolo_measures_it(shared, tmp_path):
    catalog = load_catalog(MODELS_JSON)
    entry = catalog.get("yolo")
    result = prof.profile(entry, catalog.base_dir, shared / "images/dog.jpg", device="cpu", max_batch=2,
                          seconds=0.5)
    assert result.device == "cpu" and result.image_size == (768, 576)
    assert {r.batch_size for r in result.rows} == {1, 2}
    for r in result.rows:
        assert r.intra_op is not None and r.batches * r.intra_op <= result.cores  # torch: intra-op is a knob
        assert r.calls >= prof.MIN_CALLS * r.batches and 0 < r.latency_p50_s
        # images/s over the run can be at most what `batches` threads answer back to back at the mean latency
        # (the threads' busy time fits in the wall time) and not far below it (only start and end stagger).
        back_to_back = r.batches * r.batch_size / r.latency_mean_s
        assert 0.3 * back_to_back < r.throughput <= 1.01 * back_to_back
    choice = result.choice
    assert choice.chosen in result.rows
    assert choice.threads.batches * choice.threads.intra_op <= result.cores
    assert choice.target_ongoing_requests == choice.threads.batches * choice.batching.max_batch_size
    written = tmp_path / "models.json"
    prof.write_catalog(MODELS_JSON, "yolo", choice, written)
    assert load_catalog(written).get("yolo").serving.batching == choice.batching
