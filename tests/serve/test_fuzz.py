"""schemathesis against every served model's OpenAPI document on a real local server: generated and mutated
requests (wrong types, odd strings, missing fields, bad bodies) must never get a 5xx or a traceback, and the
server must keep answering real requests. CI runs >= 2,000 cases; a release runs `RUNWAY_FUZZ_CASES=2500`
(>= 10,000 over the four models)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from loadtest.servers import REPO, LocalServer

pytestmark = pytest.mark.slow
MODELS = ["yolo", "object-detection", "openpose", "movenet"]
CASES_PER_MODEL = int(os.environ.get("RUNWAY_FUZZ_CASES", "600"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared):
    catalog = [e for e in json.loads((REPO / "models.json").read_text()) if e["name"] in MODELS]
    with LocalServer(catalog, tmp_path_factory.mktemp("fuzz"), port=18340, metrics_port=18399) as srv:
        yield srv


def fuzz(url: str, model: str) -> tuple[int, str]:
    run = subprocess.run([str(SCHEMATHESIS), "run", f"{url}/{model}/openapi.json", "--url", f"{url}/{model}",
                          "--max-examples", str(CASES_PER_MODEL), "--checks", "not_a_server_error",
                          "--phases", "coverage,fuzzing", "--continue-on-failure", "--seed", "20261201"],
                         capture_output=True, text=True, timeout=900)
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated, run.stdout[-3000:] + run.stderr[-2000:]
    assert "Traceback" not in run.stdout
    failed = run.returncode != 0 and ("FAILURES" in run.stdout or "failed" in run.stdout.split("Test cases:")[-1])
    return int(generated.group(1)), run.stdout[-4000:] if failed else ""


def test_no_generated_request_gets_a_server_error(server, shared):
    total, failures = 0, {}
    for model in MODELS:
        cases, failure = fuzz(server.url, model)
        total += cases
        if failure:
            failures[model] = failure
        print(f"schemathesis {model}: {cases} cases{' FAILED' if failure else ', 0 server errors'}")
    assert not failures, "\n".join(f"== {m}\n{text}" for m, text in failures.items())
    assert total >= 2000, total
    dog = "data:image/jpeg;base64," + base64.b64encode((shared / "images/dog.jpg").read_bytes()).decode()
    assert httpx.post(f"{server.url}/yolo/query_once", json={"data": dog}, timeout=30).status_code == 200
