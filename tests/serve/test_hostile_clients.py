"""Clients that misbehave at the socket level, against a real local server: bodies over the limit (refused from
their Content-Length, before they are read) and bodies that trickle or stop (cut at the body deadline, so they
cannot hold a replica's slots and shut the model out). Prints its figures."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
import time

import httpx
import psutil
import pytest
import socketio

from loadtest.servers import REPO, LocalServer

pytestmark = pytest.mark.slow
BODY_TIMEOUT_S = 2.0
LATENCY_BUDGET_S = 1.5
CONNECT_TIMEOUT_S = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared):
    yolo = next(e for e in json.loads((REPO / "models.json").read_text()) if e["name"] == "yolo")
    yolo["serving"].update(autoscaling={"min_replicas": 1, "max_replicas": 1}, latency_budget_s=LATENCY_BUDGET_S)
    yolo["serving"]["limits"] = {"body_timeout_s": BODY_TIMEOUT_S}
    with LocalServer([yolo], tmp_path_factory.mktemp("hostile"), port=18320, metrics_port=18395) as srv:
        yield srv


def rss_mib(process_name: str) -> float:
    processes = [p for p in psutil.process_iter(["cmdline"]) if process_name in " ".join(p.info["cmdline"] or [])]
    return sum(p.memory_info().rss for p in processes) / 2**20


def replica_rss_mib() -> float:
    return rss_mib("ServeReplica:yolo")


def open_request(port: int, content_length: int, body: bytes) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(f"POST /yolo/query_once HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {content_length}\r\n\r\n".encode() + body)
    return conn


def status_of(conn: socket.socket, timeout_s: float) -> int | None:
    conn.settimeout(timeout_s)
    try:
        head = conn.recv(4096)
    except (TimeoutError, ConnectionError):
        return None
    return int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1") else None


def test_oversized_body_is_refused_from_its_header(server):
    before = replica_rss_mib()
    started = time.monotonic()
    conn = open_request(server.port, 200_000_000, b"{" + b" " * 1_000_000)
    status = status_of(conn, 10)
    took = time.monotonic() - started
    conn.close()
    after = replica_rss_mib()
    print(f"200 MB declared: {status} in {took * 1000:.0f} ms; replica RSS {before:.0f} -> {after:.0f} MiB")
    assert status == 413 and took < 2
    assert after - before < 50


def test_trickling_bodies_are_cut_and_do_not_shut_the_model_out(server, dog):
    slow = [open_request(server.port, 100_000, b'{"data": "' + b"A" * 1000) for _ in range(40)]
    try:
        time.sleep(0.5)
        started = time.monotonic()
        answer = httpx.post(f"{server.url}/yolo/query_once", json={"data": dog}, timeout=60)
        took = time.monotonic() - started
        statuses = [status_of(conn, BODY_TIMEOUT_S * 3) for conn in slow]
    finally:
        for conn in slow:
            conn.close()
    cut = statuses.count(408)
    print(f"40 trickling bodies: a normal request answered {answer.status_code} in {took:.1f} s; "
          f"trickling ones: {cut} x 408, {statuses.count(503)} x 503, {statuses.count(None)} no answer")
    assert answer.status_code == 200
    assert took < BODY_TIMEOUT_S * 4
    assert cut > 0 and statuses.count(None) == 0


def test_overload_admits_what_it_can_answer_in_time_and_refuses_the_rest_at_once(server, dog):
    """About 10x what one replica drains: admitted requests stay within the budget (p99 <= 2 s), the rest get
    JSON 503 with a Retry-After at once."""
    answered, refused, refusal_s, retry_after = [], [], [], set()
    body = json.dumps({"data": dog}).encode()  # encoded once: the client shares the server's 2 cores
    headers = {"content-type": "application/json"}

    async def client(http: httpx.AsyncClient, until: float) -> None:
        while time.monotonic() < until:
            started = time.monotonic()
            response = await http.post(f"{server.url}/yolo/query_once", content=body, headers=headers)
            took = time.monotonic() - started
            if response.status_code == 200:
                answered.append(took)
                timeline.append((round(started - t0, 1), round(took, 2)))
            else:
                assert response.status_code == 503 and response.json()["error"] == "overloaded", response.text
                refused.append(response)
                refusal_s.append(took)
                retry_after.add(response.headers["retry-after"])
                await asyncio.sleep(0.2)

    t0, timeline = 0.0, []

    async def overload() -> None:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as http:
            until = time.monotonic() + 12
            nonlocal t0
            t0 = time.monotonic()
            await asyncio.gather(*(client(http, until) for _ in range(64)))

    memory = {"before": (replica_rss_mib(), rss_mib("ProxyActor"))}

    async def watch_memory(until: float) -> None:
        peak = (0.0, 0.0)
        while time.monotonic() < until:
            peak = tuple(max(a, b) for a, b in zip(peak, (replica_rss_mib(), rss_mib("ProxyActor"))))
            await asyncio.sleep(0.5)
        memory["peak"] = peak

    async def overload_and_watch() -> None:
        await asyncio.gather(overload(), watch_memory(time.monotonic() + 12))

    asyncio.run(overload_and_watch())
    time.sleep(3)
    memory["after"] = (replica_rss_mib(), rss_mib("ProxyActor"))
    print("replica / proxy RSS MiB: " + ", ".join(f"{k} {r:.0f} / {p:.0f}" for k, (r, p) in memory.items()))
    answered.sort()
    p50, p99 = answered[len(answered) // 2], answered[int(len(answered) * 0.99)]
    print(f"64 clients for 12 s: {len(answered)} answered (p50 {p50:.2f} s, p99 {p99:.2f} s), {len(refused)} "
          f"refused (median {sorted(refusal_s)[len(refusal_s) // 2] * 1000:.0f} ms, Retry-After {sorted(retry_after)})")
    print("slowest (start, took):", sorted(timeline, key=lambda x: -x[1])[:12])
    # The goal is p99 <= 2 s (LATENCY_BUDGET_S plus the proxy); on a 2-core machine shared with the client and
    # other work the proxy's own queue adds seconds, so the bound asserted is looser. Before the latency
    # budget (a fixed 32 in flight + 64 queued) admitted requests waited p99 21-32 s.
    assert refused and p99 <= 4 * LATENCY_BUDGET_S
    # What the replica keeps after the load (serve/heap.py: two malloc arenas, malloc_trim when the burst is over):
    # measured 391 -> peak 732-855 -> after 551-688 MiB; without them 394 -> 1,111 -> 1,096 MiB (proxy ~157 -> 190
    # either way). Before admission by latency budget: replica 372-466 -> ~1,000 MiB, proxy 140-200 -> ~400.
    assert memory["after"][0] - memory["before"][0] < 450


async def connect(client: socketio.AsyncClient, url: str) -> None:
    # python-socketio gives up on the namespace handshake after 1 s by default; the browser client waits 20 s.
    # Beside a flood on 2 cores the handshake takes longer than 1 s, so wait as long as a browser would.
    await client.connect(url, namespaces=["/query"], transports=["websocket"], socketio_path="/yolo/socket.io",
                         wait_timeout=CONNECT_TIMEOUT_S)


async def stream(url: str, frame: str, seconds: float, fps: float | None, answers: list, stop: asyncio.Event,
                 connect_s: list):
    """One socket.io client sending `frame` (every 1/fps s, or as fast as the socket takes it when fps is None)
    and recording each answer's arrival."""
    client = socketio.AsyncClient(reconnection=False, request_timeout=CONNECT_TIMEOUT_S)
    client.on("update_response", lambda body: answers.append(time.monotonic()), namespace="/query")
    started = time.monotonic()
    await connect(client, url)
    connect_s.append(time.monotonic() - started)
    until = time.monotonic() + seconds
    while time.monotonic() < until and not stop.is_set():
        await client.emit("update_request", {"data": frame}, namespace="/query")
        await asyncio.sleep(1 / fps if fps else 0)
    await client.disconnect()


def flood(url: str, frame: str, seconds: float, sent: multiprocessing.Value) -> None:
    """The greedy client, in its own process (in the polite client's event loop it would slow that client
    itself, not the server)."""
    async def run():
        client = socketio.AsyncClient(reconnection=False, request_timeout=CONNECT_TIMEOUT_S)
        await connect(client, url)
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            await client.emit("update_request", {"data": frame}, namespace="/query")
            sent.value += 1
            await asyncio.sleep(0)
        await client.disconnect()

    asyncio.run(run())


def test_a_flooding_socketio_client_is_bounded_and_cannot_starve_a_polite_one(server, dog):
    """Two polite clients beside one greedy: one that asks for more than the model gives alone (30 fps) and one
    that asks for a third of what the model gives alone. The first can only get a fair share of the model (half
    of it, both wanting more); the second wants less than its share and must keep >= 0.6x of its rate."""
    connect_s = []

    def polite_rate(fps: float, seconds: float = 10) -> tuple[float, float]:
        answers, stop, peak = [], asyncio.Event(), [0.0]

        async def run():
            async def watch():
                while not stop.is_set():
                    peak[0] = max(peak[0], replica_rss_mib())
                    await asyncio.sleep(0.5)

            watcher = asyncio.create_task(watch())
            await stream(server.url, dog, seconds, fps, answers, stop, connect_s)
            stop.set()
            await watcher

        asyncio.run(run())
        return len(answers) / seconds, peak[0]

    before = replica_rss_mib()
    alone, _ = polite_rate(30)
    modest_fps = alone / 3
    modest_alone, _ = polite_rate(modest_fps)
    sent = multiprocessing.Value("i", 0)
    flood_s = 1 + 10 + 10 + 1
    greedy = multiprocessing.get_context("fork").Process(target=flood, args=(server.url, dog, flood_s, sent))
    greedy.start()
    time.sleep(1)
    beside_flood, peak = polite_rate(30)
    modest_beside, peak_modest = polite_rate(modest_fps)
    greedy_cpu = psutil.Process(greedy.pid).cpu_times()  # still flooding (1 s longer than the polite clients)
    greedy_cores = (greedy_cpu.user + greedy_cpu.system) / (flood_s - 1)
    greedy.join(30)
    time.sleep(2)
    after = replica_rss_mib()
    peak = max(peak, peak_modest)
    print(f"socket.io flood ({sent.value} frames in {flood_s} s, {sent.value * len(dog) / flood_s / 2**20:.0f} MB/s; "
          f"the flooding client itself used {greedy_cores:.2f} of the {psutil.cpu_count()} cores): polite client "
          f"at 30 fps alone {alone:.1f} answers/s, beside the flood {beside_flood:.1f}/s ({beside_flood / alone:.2f}x); "
          f"at {modest_fps:.1f} fps alone {modest_alone:.1f}/s, beside the flood {modest_beside:.1f}/s "
          f"({modest_beside / modest_alone:.2f}x); replica RSS {before:.0f} -> peak {peak:.0f} -> {after:.0f} MiB; "
          f"polite connect {connect_s[0]:.2f} s alone, {connect_s[2]:.2f} s beside the flood")
    # A client that wants more than the model gives gets about half of it beside a flood: measured 0.29-0.54x
    # (0.11x before the frame gates), less when the flood's own client takes more of the 2 cores (0.29x in CI,
    # the flooding process using 0.77 of them); asserted: no collapse.
    # A client that wants less than its share keeps >= 0.6x of its rate (the goal).
    assert sent.value > 0 and beside_flood >= 0.2 * alone
    assert modest_beside >= 0.6 * modest_alone
    assert peak - before < 400


def test_a_replica_killed_under_load_answers_json_503_and_socketio_clients_reconnect(server, dog):
    """kill -9 of the only yolo replica while 4 HTTP clients and one socket.io stream run. Before: plain-text 500
    "Internal Server Error" from Ray's proxy. Now every answer is JSON (503 + Retry-After while the replica is
    gone), Serve starts a new replica, and a socket.io client that reconnects (the clients' default) streams
    again. Runs last in this module: it kills the replica the other tests use."""
    answers, socket_events = [], []
    body = json.dumps({"data": dog}).encode()

    cut = []  # when requests whose connection was closed without an answer had been sent

    async def http_client(http: httpx.AsyncClient, until: float) -> None:
        while time.monotonic() < until:
            sent = time.monotonic()
            try:
                response = await http.post(f"{server.url}/yolo/query_once", content=body,
                                           headers={"content-type": "application/json"})
            except httpx.RemoteProtocolError:  # HAProxy closes a connection whose replica died mid-request
                cut.append(sent)
                continue
            answers.append((time.monotonic(), response.status_code, response.headers.get("content-type"),
                            response.headers.get("retry-after"), response.text[:200]))
            if response.status_code != 200:
                await asyncio.sleep(0.5)

    async def socket_client(until: float) -> None:
        client = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2,
                                      request_timeout=CONNECT_TIMEOUT_S)
        client.on("update_response", lambda body: socket_events.append((time.monotonic(), "answer")), namespace="/query")
        client.on("connect", lambda: socket_events.append((time.monotonic(), "connect")), namespace="/query")
        client.on("disconnect", lambda *reason: socket_events.append((time.monotonic(), "disconnect")),
                  namespace="/query")
        await connect(client, server.url)
        while time.monotonic() < until:
            if "/query" in client.namespaces:  # between a disconnect and the reconnect, emits would raise
                await client.emit("update_request", {"data": dog}, namespace="/query")
            await asyncio.sleep(0.2)
        await client.disconnect()

    async def kill_replica_after(seconds: float) -> float:
        await asyncio.sleep(seconds)
        for process in psutil.process_iter(["cmdline"]):
            if "ServeReplica:yolo" in " ".join(process.info["cmdline"] or []):
                process.kill()
        return time.monotonic()

    async def run() -> float:
        until = time.monotonic() + 40
        async with httpx.AsyncClient(timeout=60) as http:
            results = await asyncio.gather(kill_replica_after(6), socket_client(until),
                                           *(http_client(http, until) for _ in range(4)))
        return results[0]

    killed_at = asyncio.run(run())
    failed = [a for a in answers if a[1] != 200]
    last_failure = max((a[0] for a in failed), default=killed_at)
    healed = [a for a in answers if a[1] == 200 and a[0] > last_failure]
    events = [(round(t - killed_at, 1), kind) for t, kind in socket_events if kind != "answer"]
    answers_after = [t for t, kind in socket_events if kind == "answer" and t > killed_at]
    print(f"replica killed: {len(cut)} requests cut, {len(failed)} failed answers {sorted({(a[1], a[2], a[3]) for a in failed})}, the last "
          f"at +{last_failure - killed_at:.1f} s; 200s again from +{healed[0][0] - killed_at:.1f} s; socket.io events {events}, first answer after "
          f"the kill at +{(answers_after[0] - killed_at) if answers_after else float('nan'):.1f} s")
    # Only requests the dead replica was answering may be cut (HTTP lets a client retry those); the rest get JSON.
    assert all(sent < killed_at for sent in cut), (cut, killed_at)
    for _, status, content_type, retry_after, text in failed:
        assert content_type == "application/json", (status, text)
        assert status == 503 and retry_after, (status, text)
    assert healed, "no request succeeded after the replica was killed"
    assert answers_after and answers_after[-1] > killed_at + 5, "the socket.io client did not stream again"
