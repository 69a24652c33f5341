"""End to end against a real local Ray Serve: HTTP and socket.io round trips with the real models, bad input,
frame dropping, overload, metrics, and a model whose weights fail to load while the others keep serving."""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import socketio
from PIL import Image

from loadtest.servers import REPO, LocalServer
from tests.helpers.im2txt import WORDS, write_random_im2txt
from tests.helpers.original_clients import original_payload

pytestmark = pytest.mark.slow
CATALOG = json.loads((REPO / "models.json").read_text())
DENSECAP_URL = next(e for e in CATALOG if e["name"] == "densecap")["serving"]["weights"]["checkpoint"]["url"]
DENSECAP_FILE = "weights/densecap/densecap-pretrained-vgg16.t7"


def entry(name: str) -> dict:
    return copy.deepcopy(next(e for e in CATALOG if e["name"] == name))


def test_catalog(tmp_path: Path, shared: Path) -> list[dict]:
    """The repository catalog plus yolo variants (truncated weights, tight on concurrency, two replicas, quick
    autoscaling) and examples/im2txt.json's captioner with a random-weight checkpoint."""
    broken = entry("yolo")
    broken.update(name="yolo-broken", containerId="yolo-broken", port=33301)
    truncated = tmp_path / "truncated.weights"
    truncated.write_bytes((shared / "weights/yolo/yolo-fastest-1.1-xl.weights").read_bytes()[:100_000])
    broken["serving"]["weights"]["weights"] = {"path": str(truncated), "format": "darknet-weights"}
    broken["serving"]["resources"]["num_cpus"] = 0.05
    tight = entry("yolo")
    tight.update(name="yolo-tight", containerId="yolo-tight", port=33302)
    tight["serving"].update(max_ongoing_requests=1, max_queued_requests=-1,
                            batching={"max_batch_size": 1, "batch_wait_timeout_s": 0},
                            autoscaling={"min_replicas": 1, "max_replicas": 1},
                            resources={"num_cpus": 0.05})
    pair = entry("yolo")
    pair.update(name="yolo-pair", containerId="yolo-pair", port=33303)
    pair["serving"].update(autoscaling={"min_replicas": 2, "max_replicas": 2}, resources={"num_cpus": 0.05})
    auto = entry("yolo")
    auto.update(name="yolo-auto", containerId="yolo-auto", port=33304)
    auto["serving"].update(autoscaling={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1,
                                        "upscale_delay_s": 1, "downscale_delay_s": 5},
                           resources={"num_cpus": 0.05})
    captioner = json.loads((REPO / "examples/im2txt.json").read_text())[0]
    captioner.update(name="im2txt-random", containerId="im2txt-random", port=33305)
    captioner["serving"]["resources"] = {"num_cpus": 0.05}
    checkpoint, vocab = write_random_im2txt(tmp_path)
    captioner["serving"]["weights"]["checkpoint"]["path"] = str(checkpoint)
    captioner["serving"]["weights"]["vocab"]["path"] = str(vocab)
    return CATALOG + [broken, tight, pair, auto, captioner]


test_catalog.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared):
    workdir = tmp_path_factory.mktemp("server")
    with LocalServer(test_catalog(workdir, shared), workdir) as srv:
        yield srv


def labels(body: dict) -> set[str]:
    return {d["label"] for d in body["result"]["detections"]}


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == code, body
    assert "Traceback" not in response.text


# --- HTTP ------------------------------------------------------------------------------------------


def test_yolo_over_http(server, dog):
    response = httpx.post(f"{server.url}/yolo/query_once", json={"data": dog, "id": 7}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "yolo" and body["id"] == 7 and body["batch_size"] >= 1
    assert {"dog", "bicycle", "car"} <= labels(body)
    assert body["result"]["width"] == 768 and body["result"]["height"] == 576


def test_object_detection_openpose_movenet_over_http(server, dog, shared):
    response = httpx.post(f"{server.url}/object-detection/query_once", json={"data": dog}, timeout=60)
    assert response.status_code == 200, response.text
    assert {"dog", "bicycle", "car"} <= labels(response.json())
    p1 = "data:image/jpeg;base64," + base64.b64encode((shared / "images/p1.jpg").read_bytes()).decode()
    response = httpx.post(f"{server.url}/openpose/query_once", json={"data": p1}, timeout=60)
    assert response.status_code == 200, response.text
    people = response.json()["result"]["people"]
    assert len(people) == 1 and people[0]["part_count"] >= 15
    assert response.json()["image"] is None
    drawn = httpx.post(f"{server.url}/openpose/query_once", json={"data": p1, "render": True}, timeout=60).json()
    picture = Image.open(io.BytesIO(base64.b64decode(drawn["image"].split(",", 1)[1])))
    assert picture.size == (drawn["result"]["width"], drawn["result"]["height"])
    original = np.asarray(Image.open(shared / "images/p1.jpg").convert("RGB"), dtype=np.int16)
    assert np.abs(np.asarray(picture.convert("RGB"), dtype=np.int16) - original).max() > 100  # skeleton drawn
    assert_error(httpx.post(f"{server.url}/yolo/query_once", json={"data": p1, "render": True}, timeout=60),
                 422, "invalid_payload")
    squat = "data:image/bmp;base64," + base64.b64encode((shared / "images/squat.bmp").read_bytes()).decode()
    response = httpx.post(f"{server.url}/movenet/query_once", json={"data": squat}, timeout=60)
    assert response.status_code == 200, response.text
    keypoints = response.json()["result"]["keypoints"]
    assert sum(k["score"] > 0.3 for k in keypoints.values()) >= 12


def test_im2txt_captions_over_http(server, dog):
    """The captioner's full path through Serve on a real photo; its weights are random, so only the shape of the
    answer is checked: captions of vocabulary words, best first."""
    response = httpx.post(f"{server.url}/im2txt-random/query_once", json={"data": dog}, timeout=120)
    assert response.status_code == 200, response.text
    captions = response.json()["result"]["captions"]
    assert captions and all(set(c["tokens"]) <= set(WORDS) | {"</S>", "<UNK>"} for c in captions)
    assert [c["log_prob"] for c in captions] == sorted((c["log_prob"] for c in captions), reverse=True)


def test_catalog_listing_readiness_and_descriptions(server):
    listing = {m["name"]: m for m in httpx.get(server.url + "/", timeout=30).json()}
    for name in ("yolo", "openpose", "object-detection", "movenet"):
        assert listing[name]["status"]["state"] == "ready", listing[name]["status"]
    assert listing["yolo"]["output_schema"]["title"].startswith("QueryResponse")
    assert listing["im2txt"]["status"]["state"] == "not_available"
    assert "docker run -p 33100:33000 runway/im2txt:cpu" in listing["im2txt"]["status"]["detail"]  # what to do
    # Served, but its released checkpoint is not on this machine (download_on_load false): the replica says why.
    densecap = listing["densecap"]["status"]
    assert densecap["state"] == "not_available" and DENSECAP_FILE in densecap["detail"], densecap
    assert DENSECAP_URL in densecap["detail"] and listing["densecap"]["implementation"] == "densecap"
    assert listing["yolo-broken"]["status"]["state"] == "failed"

    ready = httpx.get(server.url + "/readyz", timeout=30)
    assert ready.status_code == 503  # one available model failed to load (densecap's absent file holds none up)
    detail = ready.json()["models"]["yolo-broken"]["detail"]
    assert "ValueError" in detail and "weights" in detail
    assert ready.json()["models"]["densecap"] == densecap
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}

    one = httpx.get(server.url + "/yolo", timeout=30).json()
    assert one["http"] == {"method": "POST", "path": "/yolo/query_once", "format": "data:image/jpg;base64,"}
    assert one["socket"]["path"] == "/yolo/socket.io"
    assert "detections" in json.dumps(one["output_schema"])
    openapi = httpx.get(server.url + "/yolo/openapi.json", timeout=30).json()
    assert "/query_once" in openapi["paths"]


def test_failed_model_answers_503_and_others_keep_serving(server, dog):
    response = httpx.post(f"{server.url}/yolo-broken/query_once", json={"data": dog}, timeout=30)
    assert_error(response, 503, "model_unavailable")
    assert response.headers["retry-after"]
    assert_error(httpx.post(f"{server.url}/im2txt/query_once", json={"data": dog}), 503, "model_unavailable")
    refused = httpx.post(f"{server.url}/densecap/query_once", json={"data": dog}, timeout=30)
    assert_error(refused, 503, "model_unavailable")
    assert DENSECAP_FILE in refused.json()["detail"] and DENSECAP_URL in refused.json()["detail"]
    assert httpx.post(f"{server.url}/yolo/query_once", json={"data": dog}, timeout=30).status_code == 200


def bomb_png() -> str:
    buffer = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize("send, status, code", [
    (dict(content=b'{"data": "abc"', headers={"content-type": "application/json"}), 400, "invalid_json"),
    (dict(content=b"", headers={"content-type": "application/json"}), 400, "invalid_json"),
    (dict(content=b"[" * 100_000 + b"]" * 100_000, headers={"content-type": "application/json"}), 400,
     "invalid_json"),
    (dict(content=b'{"data": "abc"}', headers={"content-type": "text/plain"}), 415, "unsupported_media_type"),
    (dict(json={"data": "abc", "id": "x" * 1_000_000}), 422, "invalid_payload"),
    (dict(json={}), 422, "invalid_payload"),
    (dict(json={"data": 123}), 422, "invalid_payload"),
    (dict(json=["data"]), 422, "invalid_payload"),
    (dict(json={"data": "data:image/jpeg;base64,!!!"}), 422, "invalid_payload"),
    (dict(json={"data": "data:image/jpeg;base64," + base64.b64encode(b"plain text").decode()}), 422,
     "invalid_image"),
    (dict(json={"data": "data:image/jpeg;base64," + "A" * 12_000_000}), 413, "payload_too_large"),
    (dict(json={"data": bomb_png()}), 413, "payload_too_large"),
])
def test_bad_input_is_a_json_4xx_and_server_keeps_answering(server, dog, send, status, code):
    assert_error(httpx.post(f"{server.url}/yolo/query_once", timeout=60, **send), status, code)
    assert httpx.post(f"{server.url}/yolo/query_once", json={"data": dog}, timeout=30).status_code == 200


def test_unknown_model_and_route(server, dog):
    assert_error(httpx.post(f"{server.url}/nosuch/query_once", json={"data": dog}), 404, "unknown_model")
    assert_error(httpx.get(f"{server.url}/nosuch"), 404, "unknown_model")
    assert_error(httpx.post(f"{server.url}/yolo/elsewhere", json={"data": dog}), 404, "not_found")
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
        wrong = httpx.request(method, f"{server.url}/yolo/query_once")
        assert_error(wrong, 405, "method_not_allowed")
        assert wrong.headers["allow"] == "POST"


def test_overload_is_503_with_retry_after(server, dog):
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(client.post(f"{server.url}/yolo-tight/query_once", json={"data": dog})
                                          for _ in range(24)))

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert 200 in statuses and 503 in statuses, statuses
    assert set(statuses) <= {200, 503}
    # no proxy queue cap here (-1), so every rejection is the replica's own admission control, in our JSON shape
    for rejected in (r for r in responses if r.status_code == 503):
        assert int(rejected.headers["retry-after"]) >= 1
        assert rejected.json()["error"] == "overloaded"


def replicas(server, name: str) -> int | None:
    listing = {m["name"]: m for m in httpx.get(server.url + "/", timeout=30).json()}
    return listing[name]["status"]["replicas"]


def calm_replicas(server, name: str, timeout_s: float = 120) -> int | None:
    """The replica count once it settles at one (Serve averages load over a look-back window before scaling down),
    or what it is at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and replicas(server, name) != 1:
        time.sleep(1)
    return replicas(server, name)


def test_autoscaling_follows_the_catalog(server, dog):
    """yolo-auto: 1..2 replicas, target 1 ongoing request, upscale after 1 s, downscale after 5 s of calm."""
    assert calm_replicas(server, "yolo-auto") == 1  # earlier tests' requests may have scaled it up

    async def load_until_two(deadline_s: float) -> int | None:
        stop = time.monotonic() + deadline_s
        async with httpx.AsyncClient(timeout=60) as client:
            async def worker():
                while time.monotonic() < stop:
                    await client.post(f"{server.url}/yolo-auto/query_once", json={"data": dog})

            workers = [asyncio.create_task(worker()) for _ in range(6)]
            seen = None
            while time.monotonic() < stop:
                await asyncio.sleep(1)
                seen = await asyncio.to_thread(replicas, server, "yolo-auto")
                if seen == 2:
                    break
            stop = time.monotonic()
            await asyncio.gather(*workers)
        return seen

    assert asyncio.run(load_until_two(90)) == 2
    assert calm_replicas(server, "yolo-auto") == 1


# --- socket.io ---------------------------------------------------------------------------------------


async def stream(url: str, model: str, frames: list, settle_s: float = 3.0):
    """Emit every frame at once over WebSocket, collect answers and errors until the stream settles."""
    answers, errors = [], []
    client = socketio.AsyncClient(reconnection=False)
    client.on("update_response", lambda body: answers.append(body), namespace="/query")
    client.on("error", lambda body: errors.append(body), namespace="/query")
    await client.connect(url, namespaces=["/query"], transports=["websocket"], socketio_path=f"/{model}/socket.io")
    try:
        for frame in frames:
            await client.emit("update_request", frame, namespace="/query")
        deadline = time.monotonic() + 60
        last = (-1, -1)
        while time.monotonic() < deadline:
            await asyncio.sleep(settle_s)
            if (len(answers), len(errors)) == last:
                break
            last = (len(answers), len(errors))
    finally:
        await client.disconnect()
    return answers, errors


def test_socketio_round_trip_over_websocket(server, dog):
    answers, errors = asyncio.run(stream(server.url, "yolo", [{"data": dog, "id": "f1"}], settle_s=1.5))
    assert errors == []
    assert len(answers) == 1 and answers[0]["id"] == "f1"
    assert {"dog", "bicycle", "car"} <= labels(answers[0])


def test_websocket_sessions_across_two_replicas(server, dog):
    """Each WebSocket session stays on one replica for its lifetime, so with two replicas every client gets an
    answer to every frame it waits for (long-polling would not: see the README)."""
    async def client(n: int) -> list[str]:
        got: list[str] = []
        answers: asyncio.Queue = asyncio.Queue()
        sio = socketio.AsyncClient(reconnection=False)
        sio.on("update_response", lambda body: answers.put_nowait(body), namespace="/query")
        sio.on("error", lambda body: answers.put_nowait(body), namespace="/query")
        await sio.connect(server.url, namespaces=["/query"], transports=["websocket"],
                          socketio_path="/yolo-pair/socket.io", wait_timeout=30)
        try:
            for i in range(3):  # one frame at a time, in one session
                while True:
                    await sio.emit("update_request", {"data": dog, "id": f"{n}-{i}"}, namespace="/query")
                    body = await asyncio.wait_for(answers.get(), 60)
                    # On a loaded machine the latency budget may refuse a frame: a client sends it again later.
                    if body.get("error") != "overloaded":
                        break
                    await asyncio.sleep(1)
                got.append(body.get("id", body))
        finally:
            await sio.disconnect()
        return got

    async def everyone():
        return await asyncio.gather(*(client(n) for n in range(6)))

    results = asyncio.run(everyone())
    assert results == [[f"{n}-{i}" for i in range(3)] for n in range(6)]


def test_fast_stream_drops_stale_frames_newest_wins(server, dog):
    frames = [{"data": dog, "id": i} for i in range(40)]
    answers, errors = asyncio.run(stream(server.url, "yolo", frames))
    assert errors == []
    ids = [a["id"] for a in answers]
    assert ids == sorted(ids) and ids[-1] == 39  # in order, and the newest frame is always answered
    assert len(answers) < 40
    assert answers[-1]["dropped_frames"] == 40 - len(answers)


def test_socketio_bad_frame_gets_error_event(server, dog):
    answers, errors = asyncio.run(stream(server.url, "yolo", [{"data": "not base64 !!"}, {"id": 3},
                                                              {"data": dog, "id": 4}], settle_s=1.5))
    # the first two may be dropped by the third (newest wins); whatever is answered is typed
    assert [a["id"] for a in answers] == [4]
    assert all(set(e) == {"error", "detail"} for e in errors)
    answers, errors = asyncio.run(stream(server.url, "yolo", ["@@@"], settle_s=1.5))
    assert answers == [] and errors[0]["error"] == "invalid_payload"


# --- metrics -----------------------------------------------------------------------------------------


def test_metrics_after_traffic(server, dog):
    httpx.post(f"{server.url}/yolo/query_once", json={"data": dog}, timeout=30)
    asyncio.run(stream(server.url, "yolo", [{"data": dog, "id": i} for i in range(10)], settle_s=1.0))
    # Ray prefixes application metrics with ray_
    wanted = ['ray_runway_requests_total{', 'transport="http"', 'transport="socketio"', "ray_runway_batch_size_bucket",
              "ray_runway_inference_seconds_bucket", "ray_runway_queue_wait_seconds_bucket",
              "ray_runway_request_seconds_bucket", "ray_runway_proxy_dropped_frames_total", "ray_runway_model_load_seconds",
              "ray_runway_model_ready", "ray_serve_", "ray_runway_stage_seconds_bucket", 'stage="preprocess"',
              'stage="predict"', 'stage="postprocess"']
    def broken_ready_lines(text: str) -> list[str]:
        return [line for line in text.splitlines()
                if line.startswith("ray_runway_model_ready") and 'model="yolo-broken"' in line]

    deadline, text = time.monotonic() + 60, ""
    while time.monotonic() < deadline:
        text = httpx.get(server.url + "/metrics", timeout=30).text
        if all(w in text for w in wanted) and broken_ready_lines(text):
            break
        time.sleep(2)
    missing = [w for w in wanted if w not in text]
    assert not missing, missing
    ready = broken_ready_lines(text)
    assert ready and ready[0].rstrip().endswith(" 0.0")


# --- the original clients' way -------------------------------------------------------------------------


ORIGINAL_CLIENT_CASES = [("yolo", "dog.jpg"), ("object-detection", "dog.jpg"), ("openpose", "p1.jpg"),
                         ("movenet", "p1.jpg")]


def assert_right_answer(name: str, result: dict) -> None:
    if name in ("yolo", "object-detection"):
        assert {"dog", "bicycle", "car"} <= {d["label"] for d in result["detections"]}, result
    elif name == "openpose":
        assert len(result["people"]) == 1 and result["people"][0]["part_count"] >= 15, result
    else:  # movenet: one person, most keypoints found
        assert sum(k["score"] > 0.3 for k in result["keypoints"].values()) >= 10, result


@pytest.mark.parametrize("name, photo", ORIGINAL_CLIENT_CASES)
def test_original_client_payload_over_http_and_socketio(server, shared, name, photo):
    """Each served model of models.json, driven only by what its own catalog description says: format.data,
    the HTTP method and path, the socket.io path, namespace and events."""
    model = httpx.get(f"{server.url}/{name}", timeout=30).json()
    payload = original_payload(model, shared, photo)
    assert payload.startswith("data:image/jpg;base64,/9j/")  # the original's media type, a complete header

    response = httpx.request(model["http"]["method"], server.url + model["http"]["path"], json={"data": payload},
                             timeout=60)
    assert response.status_code == 200, response.text
    assert_right_answer(name, response.json()["result"])

    socket = model["socket"]

    async def one_frame() -> dict:
        answers: asyncio.Queue = asyncio.Queue()
        client = socketio.AsyncClient(reconnection=False)
        client.on(socket["event"], answers.put_nowait, namespace=socket["namespace"])
        client.on("error", answers.put_nowait, namespace=socket["namespace"])
        await client.connect(server.url, namespaces=[socket["namespace"]], transports=["websocket"],
                             socketio_path=socket["path"])
        try:
            await client.emit(socket["emit"], {"data": payload}, namespace=socket["namespace"])
            return await asyncio.wait_for(answers.get(), 60)
        finally:
            await client.disconnect()

    answer = asyncio.run(one_frame())
    assert "result" in answer, answer
    assert_right_answer(name, answer["result"])
