"""The playground in a real Chromium (Debian's, driven by Playwright) against a real local Ray Serve with the
real yolo: the catalog's states, a photo's boxes (in the DOM and in the screenshot's pixels), the camera
streaming over socket.io (Chromium's fake camera playing a video made of real photos), and a bad file.
A screenshot per test goes to build/test-artifacts/playground/ (CI keeps it)."""

from __future__ import annotations

import copy
import io
import json
import re
import shutil
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageOps

from loadtest.servers import REPO, LocalServer

pytestmark = pytest.mark.slow
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = REPO / "build" / "test-artifacts" / "playground"
PORT, METRICS_PORT = 18430, 18431
VIDEO_SIZE, VIDEO_FPS, SECONDS_PER_PHOTO = (640, 480), 10, 2


def catalog(workdir: Path, shared: Path) -> list[dict]:
    """models.json plus a yolo whose weights are truncated (it fails to load: the page must say why)."""
    entries = json.loads((REPO / "models.json").read_text())
    broken = copy.deepcopy(next(e for e in entries if e["name"] == "yolo"))
    broken.update(name="yolo-broken", containerId="yolo-broken", port=33401)
    truncated = workdir / "truncated.weights"
    truncated.write_bytes((shared / "weights/yolo/yolo-fastest-1.1-xl.weights").read_bytes()[:100_000])
    broken["serving"]["weights"]["weights"] = {"path": str(truncated), "format": "darknet-weights"}
    broken["serving"]["resources"]["num_cpus"] = 0.05
    return entries + [broken]


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
def server(tmp_path_factory, shared):
    workdir = tmp_path_factory.mktemp("playground")
    srv = LocalServer(catalog(workdir, shared), workdir, port=PORT, metrics_port=METRICS_PORT,
                      models=["yolo", "yolo-broken"]).start()
    try:
        srv.wait_loaded()
        yield srv
    finally:
        srv.stop()


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
def page(browser, server, request):
    context = browser.new_context(viewport={"width": 1000, "height": 1000}, permissions=["camera"])
    tab = context.new_page()
    problems = []
    tab.on("pageerror", lambda exc: problems.append(str(exc)))
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    context.close()
    assert not problems, f"uncaught errors in the page: {problems}"


def answers(page) -> list[str]:
    return page.locator("#answers li").all_inner_texts()


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
    inside = [shot.getpixel((int(box["x1"] + f * (box["x2"] - box["x1"])), int(box["y1"] + g * (box["y2"] - box["y1"]))))
              for f in (0.3, 0.5, 0.7) for g in (0.4, 0.6, 0.8)]
    assert sum(map(near, inside)) <= 2, "the box is an outline, not a fill"


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
