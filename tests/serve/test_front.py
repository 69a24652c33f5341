"""The front end choice (serve/front.py): the environment Ray gets, and HAProxy kept on loopback locally."""

from __future__ import annotations

import jinja2
import pytest

from serve.front import HAPROXY_ENV, HAPROXY_PORT_ENVS, front_env, local_front_env, replica_middlewares


def test_front_env_names_the_haproxy_switch_both_ways():
    assert front_env("haproxy") == {HAPROXY_ENV: "1"}
    assert front_env("python") == {HAPROXY_ENV: "0"}  # explicit: an inherited "1" does not leak in
    with pytest.raises(ValueError, match="front must be one of"):
        front_env("nginx")


def test_a_local_haproxy_front_takes_free_distinct_ports_and_drains_quickly():
    env = local_front_env("haproxy", "127.0.0.1")
    ports = [int(env[name]) for name in HAPROXY_PORT_ENVS]
    assert len(set(ports)) == len(ports) and all(p > 0 for p in ports)
    assert float(env["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"]) < 9  # the stop deadline of serve/local.py
    assert local_front_env("python", "127.0.0.1") == {HAPROXY_ENV: "0"}


def test_the_replica_runs_the_proxy_middlewares_only_without_the_python_proxy(monkeypatch):
    from serve.protocols.proxy_errors import ProxyErrors

    app = object()
    monkeypatch.setenv(HAPROXY_ENV, "0")
    assert replica_middlewares(app) is app
    monkeypatch.setenv(HAPROXY_ENV, "1")
    wrapped = replica_middlewares(app)
    assert isinstance(wrapped, ProxyErrors) and wrapped.app.app is app


def test_haproxy_config_listens_on_loopback_only_after_the_patch(monkeypatch):
    from ray.serve._private import haproxy

    from serve.local_only import bind_haproxy_to_loopback

    monkeypatch.setattr(haproxy, "HAPROXY_CONFIG_TEMPLATE", haproxy.HAPROXY_CONFIG_TEMPLATE)
    bind_haproxy_to_loopback()
    bind_haproxy_to_loopback()  # idempotent: every Ray worker runs the hook once, some modules twice
    binds = [line.strip() for line in haproxy.HAPROXY_CONFIG_TEMPLATE.splitlines() if line.strip().startswith("bind")]
    assert binds and all("{{ config.frontend_host }}" in b or "{{ config.grpc_frontend_host }}" in b
                         or "127.0.0.1:" in b for b in binds), binds
    jinja2.Environment().parse(haproxy.HAPROXY_CONFIG_TEMPLATE)  # still a template


def test_the_patch_refuses_a_template_it_does_not_know(monkeypatch):
    from ray.serve._private import haproxy

    from serve.local_only import bind_haproxy_to_loopback

    monkeypatch.setattr(haproxy, "HAPROXY_CONFIG_TEMPLATE", "listen stats\n  bind *:8404\n")
    with pytest.raises(RuntimeError, match="template changed"):
        bind_haproxy_to_loopback()


def test_haproxy_answers_its_own_failures_in_json_like_the_proxy(tmp_path, monkeypatch):
    """The error file local mode gives HAProxy: a raw HTTP 503 with Retry-After and our JSON error body."""
    import json

    from ray.serve._private import haproxy

    from serve.front import answer_haproxy_errors_in_json, haproxy_error_response

    raw = haproxy_error_response()
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    assert lines[0] == "HTTP/1.1 503 Service Unavailable" and headers["retry-after"]
    assert headers["content-type"] == "application/json" and int(headers["content-length"]) == len(body)
    assert json.loads(body)["error"] == "model_unavailable"

    class Api:  # what Ray's method reads and writes: cfg.error_file_path
        class cfg:
            error_file_path = str(tmp_path / "500.http")

    def ray_writes_plain_text(self):
        (tmp_path / "500.http").write_text("HTTP/1.1 500 Internal Server Error\r\n\r\nInternal Server Error")

    monkeypatch.setattr(haproxy.HAProxyApi, "_initialize_directories_and_error_files", ray_writes_plain_text)
    answer_haproxy_errors_in_json()
    answer_haproxy_errors_in_json()  # once per process
    haproxy.HAProxyApi._initialize_directories_and_error_files(Api())
    assert (tmp_path / "500.http").read_bytes() == raw
