"""The hosted endpoints proven with Runway's own JavaScript client (npm @runwayml/hosted-models 0.3.0, unchanged)
against a real local server behind a real HAProxy front (tests/hosted_client/front.py): tokens, info, a query on
a real photo, waking a model that scaled to zero (isAwake, waitUntilAwake, the first query after sleep), 429 on
overload, and the original routes protected when the catalog asks. Figures are printed, not asserted."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import socketio

from loadtest.servers import REPO, LocalServer
from serve.tokens import token_env_name
from tests.hosted_client.front import TEST_MODEL as MODEL
from tests.hosted_client.front import HostedFront, hosted_url, hosts_line, resolves_to_front

pytestmark = pytest.mark.slow
PORT, METRICS_PORT = 18440, 18441
CLIENT = REPO / "tests/hosted_client"


def sleepy_entry() -> dict:
    """object-detection as in models.json, allowed to sleep after 2 s idle, one request at a time (so a burst
    overloads it), its original routes protected too."""
    entry = copy.deepcopy(next(e for e in json.loads((REPO / "models.json").read_text()) if e["name"] == MODEL))
    entry["serving"].update(autoscaling={"min_replicas": 0, "max_replicas": 1, "downscale_to_zero_delay_s": 2,
                                         "downscale_delay_s": 2},
                            max_ongoing_requests=1, batching={"max_batch_size": 1, "batch_wait_timeout_s": 0},
                            hosted={"public": False, "protect_original_routes": True})
    return entry


@pytest.fixture(scope="module")
def token() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def served(tmp_path_factory, token):
    if not resolves_to_front(MODEL):
        pytest.fail(f"{hosts_line(MODEL)!r} is not in /etc/hosts; .ci/run adds it (as root)")
    if not (CLIENT / "node_modules/@runwayml/hosted-models").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENT, check=True)
    workdir = tmp_path_factory.mktemp("hosted")
    server = LocalServer([sleepy_entry()], workdir, port=PORT, metrics_port=METRICS_PORT,
                         env={token_env_name(MODEL): token}).start()
    front = HostedFront(PORT, workdir)
    try:
        front.start()
        server.wait_loaded()
        yield server
    finally:
        front.stop()
        server.stop()
        for log in (server.log_path, front.log):  # tokens are never logged
            assert token not in log.read_text(), f"the token appears in {log}"


@pytest.fixture(scope="module")
def photo(shared) -> Path:
    return shared / "images/dog.jpg"


def drive(mode: str, token: str, photo: Path, timeout_s: float = 300) -> dict:
    """Run tests/hosted_client/drive.js; no proxy settings reach axios (it would send the request there)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    data_header = sleepy_entry()["query"]["format"]["data"]
    done = subprocess.run([shutil.which("node"), "drive.js", mode, hosted_url(MODEL), data_header, str(photo)],
                          cwd=CLIENT, env={**env, "HOSTED_TOKEN": token}, capture_output=True, text=True,
                          timeout=timeout_s)
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr
    return json.loads(done.stdout)


def state(server: LocalServer) -> str:
    return httpx.get(server.url + "/readyz", timeout=10).json()["models"][MODEL]["state"]


def wait_asleep(server: LocalServer, timeout_s: float = 180) -> float:
    start = time.monotonic()
    while state(server) != "asleep":
        assert time.monotonic() - start < timeout_s, f"{MODEL} never scaled to zero: {state(server)}"
        time.sleep(1)
    return time.monotonic() - start


def labels(output: dict) -> set[str]:
    return {d["label"] for d in output["detections"]}


def test_wrong_or_missing_token_is_permission_denied(served, token, photo):
    assert drive("denied", token, photo) == {"noToken": "PermissionDeniedError", "wrongToken": "PermissionDeniedError",
                                             "wrongTokenAwake": "PermissionDeniedError"}
    for headers in ({}, {"Authorization": "Bearer not-" + token}, {"Authorization": token}):
        response = httpx.get(f"{served.url}/{MODEL}/v1/info", headers=headers, timeout=30)
        assert response.status_code == 401 and response.headers["content-type"] == "application/json"
        assert response.headers["www-authenticate"] == "Bearer" and response.json()["error"] == "unauthorized"
        assert token not in response.text


def test_first_query_after_sleep_wakes_the_model(served, token, photo):
    print(f"\n{MODEL} asleep {wait_asleep(served):.1f} s after its last request (downscale_to_zero_delay_s 2)")
    result = drive("cold", token, photo)
    assert {"dog", "bicycle", "car"} <= labels(result["output"])
    print(f"first query after sleep (client, cold): {result['coldQueryMs']:.0f} ms")


def test_info_and_query_wait_for_a_sleeping_model(served, token, photo):
    """Without the client's constructor waking it first: the request itself wakes the model and succeeds."""
    headers = {"Authorization": f"Bearer {token}"}
    image = "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode()
    wait_asleep(served)
    start = time.monotonic()
    response = httpx.post(f"{served.url}/{MODEL}/v1/query", json={"image": image}, headers=headers, timeout=120)
    took = time.monotonic() - start
    assert response.status_code == 200, (response.status_code, response.headers, response.text)
    assert {"dog", "bicycle", "car"} <= labels(response.json())
    wait_asleep(served)
    info = httpx.get(f"{served.url}/{MODEL}/v1/info", headers=headers, timeout=120)
    assert info.status_code == 200 and info.json()["name"] == MODEL, info.text
    print(f"first query after sleep (httpx, cold): {took * 1e3:.0f} ms")


def test_wait_until_awake_info_and_warm_queries(served, token, photo):
    wait_asleep(served)
    result = drive("wake", token, photo)
    assert result["awakeAtFirst"] is False and result["awakeAfter"] is True
    assert {"dog", "bicycle", "car"} <= labels(result["output"])
    info = result["info"]
    assert info["name"] == MODEL and [i["name"] for i in info["inputs"]] == ["image"]
    assert info["inputs"][0]["type"] == "image"
    assert {o["name"]: o["type"] for o in info["outputs"]} == {"detections": "array", "width": "number",
                                                               "height": "number"}
    warm = sorted(result["warmQueryMs"])
    print(f"waitUntilAwake: {result['waitUntilAwakeMs']:.0f} ms; warm query (client) median "
          f"{warm[len(warm) // 2]:.0f} ms, min {warm[0]:.0f}, max {warm[-1]:.0f}")


def test_overload_on_hosted_routes_is_429_with_retry_after(served, token, photo):
    image = "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode()
    headers = {"Authorization": f"Bearer {token}"}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            await client.post(f"{served.url}/{MODEL}/v1/query", json={"image": image}, headers=headers)  # awake
            return await asyncio.gather(*(client.post(f"{served.url}/{MODEL}/v1/query", json={"image": image},
                                                      headers=headers) for _ in range(12)))

    answers = asyncio.run(burst())
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {200, 429} and 429 in statuses and 200 in statuses, statuses
    for response in answers:
        assert response.headers["content-type"] == "application/json"
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1 and response.json()["error"] == "overloaded"
    print(f"12 concurrent /v1/query on one slot: {statuses.count(200)} answered, {statuses.count(429)} got 429")


def test_original_routes_protected_when_asked(served, token, photo):
    image = "data:image/jpg;base64," + base64.b64encode(photo.read_bytes()).decode()
    url = f"{served.url}/{MODEL}/query_once"
    refused = httpx.post(url, json={"data": image}, timeout=120)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    answered = httpx.post(url, json={"data": image}, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    assert answered.status_code == 200 and "dog" in {d["label"] for d in answered.json()["result"]["detections"]}

    async def connect(auth) -> bool:
        client = socketio.AsyncClient()
        try:
            await client.connect(served.url, namespaces=["/query"], socketio_path=f"/{MODEL}/socket.io",
                                 transports=["websocket"], auth=auth, wait_timeout=60)
        except socketio.exceptions.ConnectionError:
            return False
        await client.disconnect()
        return True

    assert asyncio.run(connect({"token": token})) is True
    assert asyncio.run(connect({"token": "not-" + token})) is False
    assert asyncio.run(connect(None)) is False
