"""DenseCap served end to end by a real local Ray Serve: examples/densecap.json as written (the released
checkpoint is not on this machine: not_available, with the path and URL, and the rest of the server ready) and the
same entry with a checkpoint written in the released Torch7 format (a caption planted in its weights), over HTTP
and socket.io on a real photo (the payload and names each from the served entry's own description, as the
original clients built them), and in the playground (Chromium): the regions listed with their captions, and a
proxy's error page (not JSON) shown as its HTTP status."""

from __future__ import annotations

import asyncio
import copy
import json

import httpx
import pytest
import socketio

from loadtest.servers import REPO, LocalServer
from tests.helpers.browser import CHROMIUM, watched_page
from tests.helpers.original_clients import original_payload
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


def described(server, name: str) -> dict:
    """GET /<model>: the served entry's own description (HTTP method and path, format.data, socket.io names)."""
    response = httpx.get(f"{server.url}/{name}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_absent_release_is_not_available_with_its_url_and_the_server_is_ready(server, shared):
    listing = {m["name"]: m for m in httpx.get(server.url + "/", timeout=30).json()}
    status = listing["densecap"]["status"]
    assert status["state"] == "not_available", status
    assert "densecap-pretrained-vgg16.t7" in status["detail"] and EXAMPLE["serving"]["weights"]["checkpoint"]["url"] \
        in status["detail"]
    assert listing["densecap-random"]["status"]["state"] == "ready"
    ready = httpx.get(server.url + "/readyz", timeout=30)
    assert ready.status_code == 200 and ready.json()["models"]["densecap"]["state"] == "not_available"
    model = described(server, "densecap")
    refused = httpx.request(model["http"]["method"], server.url + model["http"]["path"],
                            json={"data": original_payload(model, shared, "dog.jpg")}, timeout=30)
    assert refused.status_code == 503 and "densecap-pretrained-vgg16.t7" in refused.json()["detail"]


def test_regions_with_the_planted_caption_over_http(server, shared, photo):
    """The payload the original clients built: the entry's `format.data` verbatim, then base64 of the JPEG."""
    image = photo("dog.jpg")
    model = described(server, "densecap-random")
    payload = original_payload(model, shared, "dog.jpg")
    assert payload.startswith(EXAMPLE["query"]["format"]["data"] + "/9j/")  # as examples/densecap.json writes it
    response = httpx.request(model["http"]["method"], server.url + model["http"]["path"],
                             json={"data": payload, "render": True}, timeout=120)
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


def test_regions_over_socketio(server, shared):
    """The socket.io path, namespace and events as GET /densecap-random names them, the original clients' payload."""
    model = described(server, "densecap-random")
    socket, payload = model["socket"], original_payload(model, shared, "dog.jpg")

    async def one_frame() -> dict:
        answers: asyncio.Queue = asyncio.Queue()
        client = socketio.AsyncClient(reconnection=False)
        client.on(socket["event"], answers.put_nowait, namespace=socket["namespace"])
        client.on("error", answers.put_nowait, namespace=socket["namespace"])
        await client.connect(server.url, namespaces=[socket["namespace"]], transports=["websocket"],
                             socketio_path=socket["path"], wait_timeout=30)
        try:
            await client.emit(socket["emit"], {"data": payload, "id": "frame-1"}, namespace=socket["namespace"])
            return await asyncio.wait_for(answers.get(), 120)
        finally:
            await client.disconnect()

    answer = asyncio.run(one_frame())
    assert answer.get("id") == "frame-1", answer
    assert {r["caption"] for r in answer["result"]["regions"]} == {" ".join(PLANTED)}


# --- the playground ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "install Debian's chromium (apt-get install chromium); .ci/run does"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    with watched_page(browser, request.node.name) as tab:
        yield tab


def upload_dog(page, server, shared) -> None:
    page.goto(server.url + "/#/densecap-random")
    page.locator("#file:enabled").wait_for()
    page.set_input_files("#file", str(shared / "images/dog.jpg"))


def test_playground_lists_the_region_captions(page, server, shared):
    """Each region listed with its caption and score, in a colour of its own (the colour its box is drawn in)."""
    upload_dog(page, server, shared)
    page.locator("#answers li").first.wait_for(timeout=120_000)
    regions = json.loads(page.text_content("#raw"))["result"]["regions"]
    listed = page.locator("#answers li")
    texts = listed.all_inner_texts()
    print(f"\ndensecap-random on dog.jpg through the page: {len(texts)} regions, {page.inner_text('#latency')}")
    assert len(texts) == len(regions) >= 1
    for text, region in zip(texts, regions):
        assert text == f"{' '.join(PLANTED)} (score {region['score']:.2f})"
    colors = [listed.nth(i).locator(".swatch").evaluate("node => getComputedStyle(node).backgroundColor")
              for i in range(min(len(texts), 3))]
    assert len(set(colors)) == len(colors), colors
    assert page.locator("#error").is_hidden()


def test_playground_shows_a_proxy_error_page_as_its_status(page, server, shared):
    """A proxy in front answering HTML (a 413 for a large upload): the page says 413, not a JSON parse error."""
    page.route("**/densecap-random/query_once", lambda route: route.fulfill(
        status=413, content_type="text/html", body="<html><body><h1>413 Request Entity Too Large</h1></body></html>"))
    upload_dog(page, server, shared)
    error = page.locator("#error")
    error.wait_for()
    print(f"\nthe page on a proxy's 413: {error.inner_text()}")
    assert error.inner_text().startswith("413 ") and "answered no JSON" in error.inner_text()
    assert "JSON.parse" not in error.inner_text() and "Unexpected token" not in error.inner_text()
