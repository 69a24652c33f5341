"""DenseCap served end to end by a real local Ray Serve: examples/densecap.json as written (the released
checkpoint is not on this machine: not_available, with the path and URL, and the rest of the server ready) and the
same entry with a checkpoint written in the released Torch7 format (a caption planted in its weights), over HTTP
and socket.io on a real photo."""

from __future__ import annotations

import asyncio
import base64
import copy
import json

import httpx
import pytest
import socketio

from loadtest.servers import REPO, LocalServer
from tests.models.densecap_files import write_checkpoint

pytestmark = pytest.mark.slow
EXAMPLE = json.loads((REPO / "examples/densecap.json").read_text())[0]
PLANTED = ["a", "black", "dog", "on", "the", "grass"]
PORT, METRICS_PORT = 18420, 18421


def densecap_catalog(folder) -> list[dict]:
    """The example unchanged (no file at its path), and a copy serving a test-written checkpoint."""
    absent = copy.deepcopy(EXAMPLE)
    absent["serving"]["resources"] = {"num_cpus": 0.1}
    written = copy.deepcopy(EXAMPLE)
    written.update(name="densecap-random", containerId="densecap-random", port=33501)
    written["serving"]["resources"] = {"num_cpus": 0.1}
    checkpoint = folder / "densecap-test.t7"
    write_checkpoint(checkpoint, caption=PLANTED)
    written["serving"]["weights"]["checkpoint"]["path"] = str(checkpoint)
    return [absent, written]


densecap_catalog.__test__ = False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("densecap-server")
    srv = LocalServer(densecap_catalog(workdir), workdir, port=PORT, metrics_port=METRICS_PORT).start()
    try:
        srv.wait_loaded(timeout_s=180)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def dog(shared) -> str:
    return "data:image/jpg;base64," + base64.b64encode((shared / "images/dog.jpg").read_bytes()).decode()


def test_absent_release_is_not_available_with_its_url_and_the_server_is_ready(server, dog):
    listing = {m["name"]: m for m in httpx.get(server.url + "/", timeout=30).json()}
    status = listing["densecap"]["status"]
    assert status["state"] == "not_available", status
    assert "densecap-pretrained-vgg16.t7" in status["detail"] and EXAMPLE["serving"]["weights"]["checkpoint"]["url"] \
        in status["detail"]
    assert listing["densecap-random"]["status"]["state"] == "ready"
    ready = httpx.get(server.url + "/readyz", timeout=30)
    assert ready.status_code == 200 and ready.json()["models"]["densecap"]["state"] == "not_available"
    refused = httpx.post(server.url + "/densecap/query_once", json={"data": dog}, timeout=30)
    assert refused.status_code == 503 and "densecap-pretrained-vgg16.t7" in refused.json()["detail"]


def test_regions_with_the_planted_caption_over_http(server, dog, photo):
    image = photo("dog.jpg")
    response = httpx.post(server.url + "/densecap-random/query_once", json={"data": dog, "render": True}, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    result = body["result"]
    assert (result["width"], result["height"]) == (image.shape[1], image.shape[0])
    assert 1 <= len(result["regions"]) <= EXAMPLE["serving"]["options"]["max_regions"]
    for region in result["regions"]:
        assert region["caption"] == " ".join(PLANTED)
        box = region["box"]
        assert 0 <= box["x1"] < box["x2"] <= result["width"] and 0 <= box["y1"] < box["y2"] <= result["height"]
    assert body["image"].startswith("data:image/jpeg;base64,")
    print(f"densecap-random over HTTP: {body['timings']}")


def test_regions_over_socketio(server, dog):
    async def one_frame() -> dict:
        answers: asyncio.Queue = asyncio.Queue()
        client = socketio.AsyncClient(reconnection=False)
        client.on("update_response", answers.put_nowait, namespace="/query")
        client.on("error", answers.put_nowait, namespace="/query")
        await client.connect(server.url, namespaces=["/query"], transports=["websocket"],
                             socketio_path="/densecap-random/socket.io", wait_timeout=30)
        try:
            await client.emit("update_request", {"data": dog, "id": "frame-1"}, namespace="/query")
            return await asyncio.wait_for(answers.get(), 120)
        finally:
            await client.disconnect()

    answer = asyncio.run(one_frame())
    assert answer.get("id") == "frame-1", answer
    assert {r["caption"] for r in answer["result"]["regions"]} == {" ".join(PLANTED)}
