"""One model's HTTP app (serve/protocols/asgi.py: FastAPI behind the body limits and the admission gate) in
process, through httpx's ASGI transport, with the fixture families: answers, the JSON 4xx of every kind of bad
input, 405/404, 413/408 on bodies, overload 503 with Retry-After, a model that failed to load, a family error.
The same requests against the real models through Ray Serve's proxy are in test_server.py (slow)."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import httpx
import pytest
from PIL import Image

from serve.catalog import load_catalog
from tests.helpers.inprocess import asgi_client, fixture_entry, image_uri, loaded_runner, model_app, \
    uvicorn_serving
from tests.helpers.paths import MODELS_JSON

QUERY = "/echo/query_once"


def call(runner, method: str, path: str, **kwargs) -> httpx.Response:
    async def one():
        async with asgi_client(runner) as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(one())


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == code, body
    assert "Traceback" not in response.text
    return body


@pytest.fixture
def echo(fixture_families):
    return loaded_runner(fixture_entry("echo", "test-echo", limits={"max_bytes": 200_000, "max_pixels": 1_000_000}))


def test_query_once_answers_the_model_with_id_and_timings(echo):
    response = call(echo, "POST", QUERY, json={"data": image_uri(32, 16, (0, 255, 0)), "id": 7})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "echo" and body["id"] == 7 and body["batch_size"] == 1 and body["image"] is None
    assert body["result"] == {"width": 32, "height": 16, "mean_rgb": [0.0, 255.0, 0.0]}
    assert set(body["timings"]) == {"queue_ms", "inference_ms", "total_ms"}


def test_the_original_clients_payloads_are_answered(echo):
    """format.data verbatim (`data:image/jpg;base64,`), base64 with line breaks, bare base64, an unknown field
    (ignored, as the original clients may send more), render drawn by a family that can draw."""
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), (90, 90, 90)).save(buffer, "JPEG")
    b64 = base64.b64encode(buffer.getvalue()).decode()
    wrapped = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    for data in ("data:image/jpg;base64," + b64, "data:image/jpeg;base64," + wrapped, b64):
        response = call(echo, "POST", QUERY, json={"data": data, "extra": {"ignored": True}})
        assert response.status_code == 200, response.text
        assert (response.json()["result"]["width"], response.json()["result"]["height"]) == (20, 10)
    drawn = call(echo, "POST", QUERY, json={"data": image_uri(), "render": True}).json()
    picture = Image.open(io.BytesIO(base64.b64decode(drawn["image"].split(",", 1)[1])))
    assert picture.size == (64, 48)


def test_the_model_describes_itself_and_its_openapi(echo):
    for path in ("/echo", "/echo/"):
        info = call(echo, "GET", path).json()
        assert info["name"] == "echo" and info["status"]["state"] == "ready"
        assert info["http"] == {"method": "POST", "path": QUERY, "format": "data:image/jpeg;base64,"}
        assert info["socket"]["path"] == "/echo/socket.io" and "mean_rgb" in json.dumps(info["output_schema"])
    openapi = call(echo, "GET", "/echo/openapi.json").json()
    answer = openapi["paths"]["/query_once"]["post"]["responses"]
    assert {"200", "400", "405", "408", "413", "415", "422", "503"} <= set(answer)


def bomb() -> str:
    buffer = io.BytesIO()
    Image.new("1", (2000, 2000)).save(buffer, "PNG")  # a few kB that decode to 4 Mpx, over max_pixels
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize("send, status, code", [
    (dict(content=b'{"data": "abc"', headers={"content-type": "application/json"}), 400, "invalid_json"),
    (dict(content=b"", headers={"content-type": "application/json"}), 400, "invalid_json"),
    (dict(content=b"[" * 100_000 + b"]" * 100_000, headers={"content-type": "application/json"}), 400,
     "invalid_json"),
    (dict(content=b'{"data": "abc"}', headers={"content-type": "text/plain"}), 415, "unsupported_media_type"),
    (dict(content=b'{"data": "abc"}'), 415, "unsupported_media_type"),
    (dict(json={"data": "abc", "id": "x" * 129}), 422, "invalid_payload"),
    (dict(json={}), 422, "invalid_payload"),
    (dict(json={"data": ""}), 422, "invalid_payload"),
    (dict(json={"data": 123}), 422, "invalid_payload"),
    (dict(json={"data": "abc", "render": "sometimes"}), 422, "invalid_payload"),
    (dict(json={"data": "abc", "id": [1]}), 422, "invalid_payload"),
    (dict(json=["data"]), 422, "invalid_payload"),
    (dict(json={"data": "data:image/jpeg;base64,!!!"}), 422, "invalid_payload"),
    (dict(json={"data": "data:text/plain;base64,aGVsbG8="}), 422, "invalid_payload"),
    (dict(json={"data": "data:image/jpeg;base64," + base64.b64encode(b"plain text").decode()}), 422,
     "invalid_image"),
    (dict(json={"data": "data:image/jpeg;base64," + "A" * 300_000}), 413, "payload_too_large"),
    (dict(json={"data": bomb()}), 413, "payload_too_large"),
])
def test_bad_input_is_a_json_4xx_and_the_model_keeps_answering(echo, send, status, code):
    body = assert_error(call(echo, "POST", QUERY, **send), status, code)
    print(status, code, body["detail"][:100])
    assert call(echo, "POST", QUERY, json={"data": image_uri()}).status_code == 200
    assert echo.admission.in_flight == 0


def test_the_detail_names_the_field(echo):
    detail = assert_error(call(echo, "POST", QUERY, json={"data": 123}), 422, "invalid_payload")["detail"]
    assert detail.startswith("data:")


def test_wrong_method_is_405_with_allow_and_unknown_route_404(echo):
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
        response = call(echo, method, QUERY)
        assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "POST"
    assert call(echo, "POST", "/echo", json={}).headers["allow"] == "GET"
    assert_error(call(echo, "POST", "/echo/elsewhere", json={"data": image_uri()}), 404, "not_found")


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(echo):
    read = []

    async def body():
        read.append(True)
        yield b"{}"

    response = call(echo, "POST", QUERY, content=body(),
                    headers={"content-type": "application/json", "content-length": str(10**9)})
    body_json = assert_error(response, 413, "payload_too_large")
    assert str(echo.entry.serving.limits.max_body_bytes) in body_json["detail"] and read == []


def test_a_body_streamed_past_the_limit_is_cut_with_413(echo):
    chunk = b" " * 65536

    async def endless():
        yield b'{"data": "'
        while True:
            yield chunk

    response = call(echo, "POST", QUERY, content=endless(), headers={"content-type": "application/json"})
    assert_error(response, 413, "payload_too_large")


def test_a_body_that_stops_arriving_is_answered_408(fixture_families):
    runner = loaded_runner(fixture_entry("echo", "test-echo", limits={"body_timeout_s": 0.3}))

    async def stalls():
        yield b'{"data": "'
        await asyncio.sleep(30)
        yield b'"}'

    async def scenario():
        async with asgi_client(runner) as client:
            return await asyncio.wait_for(client.post(QUERY, content=stalls(),
                                                      headers={"content-type": "application/json"}), 10)

    body = assert_error(asyncio.run(scenario()), 408, "body_timeout")
    assert "0.3 s" in body["detail"]


def slow_entry(**serving):
    return fixture_entry("slow", "test-slow", options={"delay_s": 0.3}, max_ongoing_requests=1,
                         batching={"max_batch_size": 1, "batch_wait_timeout_s": 0}, **serving)


def test_overload_is_a_json_503_with_retry_after(fixture_families):
    runner = loaded_runner(slow_entry())

    async def burst():
        async with asgi_client(runner) as client:
            return await asyncio.gather(*(client.post("/slow/query_once", json={"data": image_uri()})
                                          for _ in range(6)))

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    print("statuses:", statuses)
    assert statuses.count(200) >= 1 and 503 in statuses and set(statuses) <= {200, 503}
    for refused in (r for r in responses if r.status_code == 503):
        assert_error(refused, 503, "overloaded")
        assert int(refused.headers["retry-after"]) >= 1
    assert runner.admission.in_flight == 0


def test_overload_is_refused_before_the_body_is_read(fixture_families):
    """While the one slot is busy, a request whose body never comes is refused at once (503), not held until the
    body deadline (408): the gate runs before the body is read."""
    runner = loaded_runner(slow_entry(limits={"body_timeout_s": 5}))

    async def never():
        await asyncio.sleep(30)
        yield b"{}"

    async def scenario():
        async with asgi_client(runner) as client:
            busy = asyncio.ensure_future(client.post("/slow/query_once", json={"data": image_uri()}))
            for _ in range(1000):  # until the first request holds the slot (10 s at most)
                if runner.admission.in_flight:
                    break
                await asyncio.sleep(0.01)
            refused = await asyncio.wait_for(client.post("/slow/query_once", content=never(),
                                                         headers={"content-type": "application/json"}), 3)
            return refused, await busy

    refused, busy = asyncio.run(scenario())
    assert_error(refused, 503, "overloaded")
    assert busy.status_code == 200


@pytest.mark.parametrize("drain_refused", [True, False])
def test_a_client_sending_straight_to_the_replica_reads_its_503_when_bodies_are_drained(fixture_families,
                                                                                          drain_refused):
    """With HAProxy's direct ingress the client's connection ends in the replica. A refusal answered without
    reading the body closes a socket holding unread bytes, and the kernel resets the connection: the client sees a
    reset, not the 503 (what the overload test saw with HAProxy). Draining the refused body first lets it read
    the 503. The body (6 MB) is more than loopback's socket buffers hold, so the reset shows without draining."""
    runner = loaded_runner(slow_entry())
    body = json.dumps({"data": "data:image/png;base64," + "A" * 6_000_000}).encode()

    async def scenario():
        async with uvicorn_serving(model_app(runner, drain_refused=drain_refused)) as url:
            host, port = url.removeprefix("http://").split(":")
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                busy = asyncio.ensure_future(client.post("/slow/query_once", json={"data": image_uri()}))
                while not runner.admission.in_flight:
                    await asyncio.sleep(0.01)
                reader, writer = await asyncio.open_connection(host, int(port))
                try:
                    writer.write(f"POST /slow/query_once HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                 f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
                    await writer.drain()
                    answer = await asyncio.wait_for(reader.read(), 10)
                except ConnectionError as error:
                    answer = error
                writer.close()
                await busy
                return answer

    answer = asyncio.run(scenario())
    if not drain_refused:
        assert isinstance(answer, ConnectionResetError), answer
        return
    head, _, reply = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), head
    assert json.loads(reply)["error"] == "overloaded"


def test_a_model_that_failed_to_load_answers_503_and_says_why(fixture_families):
    runner = loaded_runner(fixture_entry("broken", "test-fails-to-load"))
    response = call(runner, "POST", "/broken/query_once", json={"data": image_uri()})
    body = assert_error(response, 503, "model_unavailable")
    assert "truncated" in body["detail"] and int(response.headers["retry-after"]) >= 1
    info = call(runner, "GET", "/broken").json()
    assert info["status"]["state"] == "failed" and "truncated" in info["status"]["detail"]


def test_shipped_densecap_without_its_checkpoint_answers_503_naming_the_weights(tmp_path, monkeypatch):
    """models.json as shipped, no checkpoint at its path: the replica is up, its model not_available (what GET / and
    /readyz relay from it), and its route a JSON 503 saying which file is missing and where to download it."""
    monkeypatch.setenv("RUNWAY_SHARED", str(tmp_path))  # wherever the shared folder is, no checkpoint here
    entry = load_catalog(MODELS_JSON).get("densecap")
    checkpoint = entry.serving.weights["checkpoint"]
    assert checkpoint.url and not checkpoint.download_on_load
    runner = loaded_runner(entry)
    missing = str(tmp_path / "weights/densecap/densecap-pretrained-vgg16.t7")
    assert runner.status.state == "not_available" and missing in runner.status.detail
    response = call(runner, "POST", "/densecap/query_once", json={"data": image_uri()})
    body = assert_error(response, 503, "model_unavailable")
    assert missing in body["detail"] and checkpoint.url in body["detail"] and "1.1 GB" in body["detail"]
    info = call(runner, "GET", "/densecap").json()
    assert info["status"] == runner.status.model_dump(mode="json"), info["status"]
    assert info["weights"] == [{"role": "checkpoint", "format": "torch7", "path": checkpoint.path,
                                "url": checkpoint.url, "size": "1.1 GB"}]


def test_a_family_error_is_a_bare_500_that_leaks_nothing(fixture_families):
    runner = loaded_runner(fixture_entry("raises", "test-raises"))
    response = call(runner, "POST", "/raises/query_once", json={"data": image_uri()})
    assert_error(response, 500, "internal_error")
    assert "internal detail" not in response.text and "RuntimeError" not in response.text


def test_render_on_a_family_that_cannot_draw_is_422(fixture_families):
    runner = loaded_runner(fixture_entry("plain", "test-cannot-draw"))
    body = assert_error(call(runner, "POST", "/plain/query_once", json={"data": image_uri(), "render": True}),
                        422, "invalid_payload")
    assert "render=false" in body["detail"]


def test_over_a_real_socket_a_declared_oversize_body_gets_413_and_the_connection_closes(echo):
    """uvicorn parses the request as the Serve proxy's would; the refusal comes from the header alone."""
    async def scenario():
        async with uvicorn_serving(model_app(echo)) as url:
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(f"POST {QUERY} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: 200000000\r\n\r\n{{".encode())
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)  # read() returns once the server closes
            writer.close()
            return answer

    answer = asyncio.run(scenario())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower()
    assert json.loads(body)["error"] == "payload_too_large"
