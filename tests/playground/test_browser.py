"""The playground in a real Chromium (Debian's, driven by Playwright) against a real local Ray Serve with the
real yolo and movenet: a weight download's progress while the server starts, the catalog's states, a photo's boxes
and a pose's skeleton (in the DOM and in the screenshot's pixels), the camera
streaming over socket.io (Chromium's fake camera playing a video made of real photos), and a bad file.
A screenshot per test goes to build/test-artifacts/playground/ (CI keeps it)."""

from __future__ import annotations

import copy
import http.server
import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageOps

from loadtest.servers import REPO, LocalServer
from tests.helpers.browser import CHROMIUM, watched_page

pytestmark = pytest.mark.slow
PORT, METRICS_PORT, WEIGHTS_PORT = 18430, 18431, 18434
YOLO_WEIGHTS = "weights/yolo/yolo-fastest-1.1-xl.weights"
VIDEO_SIZE, VIDEO_FPS, SECONDS_PER_PHOTO = (640, 480), 10, 2


def catalog(workdir: Path, shared: Path) -> list[dict]:
    """models.json plus a yolo whose weights are truncated (it fails to load: the page must say why) and one
    whose weights have only a URL (downloaded from GatedWeights while the server starts)."""
    entries = json.loads((REPO / "models.json").read_text())
    yolo = next(e for e in entries if e["name"] == "yolo")
    broken, downloaded = copy.deepcopy(yolo), copy.deepcopy(yolo)
    broken.update(name="yolo-broken", containerId="yolo-broken", port=33401)
    truncated = workdir / "truncated.weights"
    truncated.write_bytes((shared / YOLO_WEIGHTS).read_bytes()[:100_000])
    broken["serving"]["weights"]["weights"] = {"path": str(truncated), "format": "darknet-weights"}
    downloaded.update(name="yolo-download", containerId="yolo-download", port=33402)
    downloaded["serving"]["weights"]["weights"] = {"url": f"http://127.0.0.1:{WEIGHTS_PORT}/yolo.weights",
                                                   "format": "darknet-weights"}
    for entry in (broken, downloaded):
        entry["serving"]["resources"]["num_cpus"] = 0.05
    return entries + [broken, downloaded]


class GatedWeights(http.server.ThreadingHTTPServer):
    """Serves the real yolo weights: the first half at once, the rest once `gate` is set, so a test sees a
    download in progress for as long as it needs."""

    def __init__(self, data: bytes):
        self.data, self.gate = data, threading.Event()
        super().__init__(("127.0.0.1", WEIGHTS_PORT), self.Handler)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data, half = self.server.data, len(self.server.data) // 2
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:half])
            self.wfile.flush()
            self.server.gate.wait(300)
            self.wfile.write(data[half:])


@dataclass
class Startup:
    """A server started in the background: tests may look at it while it loads."""

    server: LocalServer
    weights: GatedWeights
    thread: threading.Thread
    error: list[BaseException] = field(default_factory=list)

    def finish(self) -> LocalServer:
        self.weights.gate.set()
        self.thread.join(300)
        if self.error:
            raise self.error[0]
        self.server.wait_loaded()
        return self.server


def write_y4m(path: Path, photos: list[Path]) -> Path:
    """A YUV4MPEG2 video (what Chromium's fake camera plays, looping): each photo held SECONDS_PER_PHOTO."""
    width, height = VIDEO_SIZE
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{VIDEO_FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for photo in photos:
            y, cb, cr = ImageOps.fit(Image.open(photo).convert("RGB"), VIDEO_SIZE).convert("YCbCr").split()
            half = (width // 2, height // 2)
            frame = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
            out.write((b"FRAME\n" + frame) * (VIDEO_FPS * SECONDS_PER_PHOTO))
    return path


@pytest.fixture(scope="module")
def startup(tmp_path_factory, shared):
    workdir = tmp_path_factory.mktemp("playground")
    weights = GatedWeights((shared / YOLO_WEIGHTS).read_bytes())
    threading.Thread(target=weights.serve_forever, daemon=True).start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RUNWAY_CACHE", str(workdir / "cache"))  # nothing cached: yolo-download downloads
        srv = LocalServer(catalog(workdir, shared), workdir, port=PORT, metrics_port=METRICS_PORT,
                          models=["yolo", "yolo-broken", "yolo-download", "movenet"])
        started = Startup(srv, weights, threading.Thread(target=lambda: run(srv.start, started.error)))
        started.thread.start()
        try:
            yield started
        finally:
            weights.gate.set()
            started.thread.join(300)
            srv.stop()
            weights.shutdown()


def run(call, errors: list) -> None:
    try:
        call()
    except BaseException as exc:  # handed to the test thread by Startup.finish
        errors.append(exc)


@pytest.fixture(scope="module")
def server(startup) -> LocalServer:
    return startup.finish()


@pytest.fixture(scope="module")
def browser(tmp_path_factory, shared):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "install Debian's chromium (apt-get install chromium); .ci/run does"
    video = write_y4m(tmp_path_factory.mktemp("camera") / "photos.y4m",
                      [shared / "images/dog.jpg", shared / "images/giraffe.jpg"])
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    with watched_page(browser, request.node.name, permissions=["camera"]) as tab:
        yield tab


def answers(page) -> list[str]:
    return page.locator("#answers li").all_inner_texts()


def test_loading_progress_is_shown(startup, page):
    """While yolo-download waits for the second half of its weights, GET / and the page say so, in bytes; the
    page turns it ready by itself once the rest arrives, and the CLI printed the same progress."""
    url, deadline, status = startup.server.url, time.monotonic() + 240, None
    total = len(startup.weights.data)
    first_half = total // 2 - total // 20  # the share of the file between two progress reports at most

    def stalled(status: dict | None) -> bool:
        return bool(status and status.get("progress") and status["progress"]["bytes_done"] >= first_half)

    while time.monotonic() < deadline and not stalled(status):
        assert not startup.error, startup.error
        try:
            models = httpx.get(url + "/", timeout=10).json()
            status = next(m["status"] for m in models if m["name"] == "yolo-download")
        except (httpx.HTTPError, ValueError, StopIteration, TypeError):
            pass  # the catalog app is not up yet
        time.sleep(0.5)
    print(f"\nyolo-download while its weights stall: {status}")
    assert status["state"] == "loading" and status["progress"]["phase"] == "downloading", status
    assert status["progress"]["bytes_total"] == total and first_half <= status["progress"]["bytes_done"] <= total // 2

    page.goto(url + "/")
    item = page.locator('#models li[data-model="yolo-download"]')
    item.locator('.state[data-state="loading"]').wait_for()
    assert re.search(r"downloading the weights file: 1\.[78] of 3\.7 MB", item.inner_text()), item.inner_text()
    assert item.locator("progress").get_attribute("max") == str(total)
    startup.weights.gate.set()
    item.locator('.state[data-state="ready"]').wait_for(timeout=180_000)  # the page refreshes by itself
    startup.finish()
    log = startup.server.log_path.read_text()
    print("\n".join(line for line in log.splitlines() if line.startswith("runway-models:")))
    assert re.search(r"runway-models: yolo-download: downloading the weights file: [\d.]+ of 3\.7 MB", log), log
    assert re.search(r"runway-models: yolo-download: loaded in [\d.]+ s", log), log
    assert "runway-models: yolo-broken: failed: " in log


def test_lists_models_with_their_states(page, server):
    catalog_json = httpx.get(server.url + "/", timeout=10).json()  # curl and scripts still get JSON
    statuses = {m["name"]: m["status"] for m in catalog_json}
    page.goto(server.url + "/")
    for name, status in statuses.items():
        item = page.locator(f'#models li[data-model="{name}"]')
        item.locator(f'.state[data-state="{status["state"]}"]').wait_for()
        if status.get("detail"):
            assert status["detail"] in item.inner_text()
    assert statuses["yolo"]["state"] == "ready" and statuses["yolo-broken"]["state"] == "failed"
    assert statuses["openpose"]["state"] == "not_available"
    assert "Authors:" not in page.inner_text("#models")  # the list is short; the model's page has the rest

    page.set_viewport_size({"width": 360, "height": 740})  # a phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for _ in range(30):  # the keyboard alone reaches the model and opens its page
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "yolo":
            break
    page.keyboard.press("Enter")
    page.locator("#model-title", has_text="yolo").wait_for()
    assert "Licence:" in page.inner_text("#model-about")
    assert page.get_by_label("Image file").is_enabled()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_photo_boxes_are_listed_and_drawn(page, server, shared):
    page.goto(server.url + "/#/yolo")
    page.locator("#file:enabled").wait_for()
    page.set_input_files("#file", str(shared / "images/dog.jpg"))
    page.locator("#answers li").first.wait_for()
    labels = {re.sub(r" [\d.]+$", "", text) for text in answers(page)}
    assert {"dog", "bicycle", "car"} <= labels
    body = json.loads(page.text_content("#raw"))  # inside the closed <details>: not rendered
    dog = next(d for d in body["result"]["detections"] if d["label"] == "dog")
    swatch = page.locator("#answers li", has_text="dog").first.locator(".swatch")  # the colour it is drawn in
    color = swatch.evaluate("node => getComputedStyle(node).backgroundColor")
    print(f"\nyolo on dog.jpg through the page: {page.inner_text('#latency')}")

    canvas = page.locator("#canvas")
    shot = Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")
    scale = shot.width / body["result"]["width"]
    box = {k: v * scale for k, v in dog["box"].items()}
    want = tuple(int(c) for c in re.findall(r"\d+", color)[:3])

    def near(pixel) -> bool:
        return all(abs(a - b) <= 40 for a, b in zip(pixel, want))

    # The box's left and right edges, between the label and the bottom: the dog's colour along them.
    ys = range(int(box["y1"] + 0.3 * (box["y2"] - box["y1"])), int(box["y2"] - 2), 4)
    for x in (box["x1"], box["x2"]):
        hits = sum(any(near(shot.getpixel((int(x) + dx, y))) for dx in (-1, 0, 1)) for y in ys)
        assert hits >= 0.8 * len(ys), (x, hits, len(ys))
    width, height = box["x2"] - box["x1"], box["y2"] - box["y1"]
    inside = [shot.getpixel((int(box["x1"] + f * width), int(box["y1"] + g * height)))
              for f in (0.3, 0.5, 0.7) for g in (0.4, 0.6, 0.8)]
    assert sum(map(near, inside)) <= 2, "the box is an outline, not a fill"


def test_pose_skeleton_is_drawn(page, server, shared):
    """MoveNet on a real squat: the pose listed, and a dot of the pose's colour on every keypoint it found."""
    page.goto(server.url + "/#/movenet")
    page.locator("#file:enabled").wait_for()
    page.set_input_files("#file", str(shared / "images/squat.bmp"))
    listed = page.locator("#answers li", has_text="pose:")
    listed.wait_for()
    found, of = map(int, re.search(r"(\d+) of (\d+) keypoints", listed.inner_text()).groups())
    assert of == 17 and found >= 12, listed.inner_text()
    body = json.loads(page.text_content("#raw"))
    color = listed.locator(".swatch").evaluate("node => getComputedStyle(node).backgroundColor")
    want = tuple(int(c) for c in re.findall(r"\d+", color)[:3])
    shot = Image.open(io.BytesIO(page.locator("#canvas").screenshot())).convert("RGB")
    scale = shot.width / body["result"]["width"]
    visible = [k for k in body["result"]["keypoints"].values() if k["score"] >= 0.2]
    assert len(visible) == found

    def dot_at(k: dict) -> bool:
        x, y = k["x"] * scale, k["y"] * scale
        return any(all(abs(a - b) <= 40 for a, b in zip(shot.getpixel((int(x) + dx, int(y) + dy)), want))
                   for dx in (-1, 0, 1) for dy in (-1, 0, 1) if 0 <= x + dx < shot.width and 0 <= y + dy < shot.height)

    assert sum(map(dot_at, visible)) >= 0.9 * len(visible)


def test_camera_streams_over_socketio(page, server):
    page.goto(server.url + "/#/yolo")
    page.locator("#camera:enabled").click()
    seen: set[str] = set()
    for _ in range(240):  # the video alternates dog.jpg and giraffe.jpg every SECONDS_PER_PHOTO
        seen |= {re.sub(r" [\d.]+$", "", text) for text in answers(page)}
        if {"dog", "giraffe"} <= seen and int(page.inner_text("#answered")) >= 10:
            break
        page.wait_for_timeout(250)
    stats = {k: page.inner_text(f"#{k}") for k in ("answered", "fps", "dropped", "latency")}
    print(f"\ncamera over socket.io: {stats}, labels seen {sorted(seen)}")
    assert {"dog", "giraffe"} <= seen, seen
    assert int(stats["answered"]) >= 10 and float(stats["fps"]) > 0
    assert int(stats["dropped"]) >= 0 and "ms" in stats["latency"]
    assert page.locator("#error").is_hidden()

    page.click("#camera")
    page.locator("#camera", has_text="Start camera").wait_for()
    stopped_at = int(page.inner_text("#answered"))
    page.wait_for_timeout(1500)
    assert int(page.inner_text("#answered")) == stopped_at, "answers kept arriving after stop"
    assert page.evaluate("document.getElementById('video').srcObject === null")
    assert page.locator("#error").is_hidden(), page.inner_text("#error")


def test_bad_file_shows_the_server_error(page, server, shared):
    page.goto(server.url + "/#/yolo")
    page.locator("#file:enabled").wait_for()
    page.set_input_files("#file", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"})
    error = page.locator("#error")
    error.wait_for()
    assert "422 invalid_image" in error.inner_text() and "not a readable image" in error.inner_text()
    page.set_input_files("#file", str(shared / "images/dog.jpg"))  # the page keeps working
    page.locator("#answers li", has_text="dog").first.wait_for()
    assert error.is_hidden()
