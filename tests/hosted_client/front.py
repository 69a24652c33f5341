"""The hosted front for the client test: HAProxy routes `http://<model>.hosted-models.runwayml.cloud/v1/...` to the
local server's `/<model>/v1/...`, as the chart's host-based Ingress rule does on Kubernetes.

Runway's JavaScript client only accepts URLs shaped `http(s)://<name>....runwayml.cloud/v1` (a port breaks its
pattern), so the test reaches the server under such a name on port 80: a hosts entry points the model's name at a
loopback address of this test's own (so no other :80 listener on the machine is in the way) where HAProxy listens.
`python3 -m tests.hosted_client.front` prints the hosts entry for the test's model; `.ci/run` adds it.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import time
from pathlib import Path

HOSTED_DOMAIN = "hosted-models.runwayml.cloud"
#: The model the client test serves (object-detection: a fast model whose answer on dog.jpg is known).
TEST_MODEL = "object-detection"
FRONT_ADDRESS = "127.0.84.40"  # in 127.0.0.0/8: loopback, and ours alone
HAPROXY = "haproxy"


def model_host(model: str) -> str:
    return f"{model}.{HOSTED_DOMAIN}"


def hosted_url(model: str) -> str:
    return f"http://{model_host(model)}/v1"


def hosts_line(model: str) -> str:
    return f"{FRONT_ADDRESS} {model_host(model)}"


def resolves_to_front(model: str) -> bool:
    try:
        return socket.gethostbyname(model_host(model)) == FRONT_ADDRESS
    except OSError:
        return False


def haproxy_config(server_port: int) -> str:
    # The model's name is the first label of the Host header (model names hold no dots). No log lines: nothing
    # that could carry an Authorization header is written anywhere.
    return f"""global
    maxconn 256

defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s

frontend hosted
    bind {FRONT_ADDRESS}:80
    acl hosted_name hdr(host),field(1,:) -m end .{HOSTED_DOMAIN}
    http-request deny deny_status 404 unless hosted_name
    http-request set-path /%[hdr(host),field(1,.)]%[path]
    default_backend serve

backend serve
    server local 127.0.0.1:{server_port}
"""


class HostedFront:
    def __init__(self, server_port: int, workdir: Path):
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(haproxy_config(server_port))
        self.log = workdir / "haproxy.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 10) -> HostedFront:
        binary = shutil.which(HAPROXY)
        if binary is None:
            raise RuntimeError("haproxy is not installed: apt-get install haproxy (.ci/run does)")
        subprocess.run([binary, "-c", "-q", "-f", str(self.config)], check=True)
        with self.log.open("w") as log:
            self.process = subprocess.Popen([binary, "-db", "-f", str(self.config)], stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited {self.process.returncode}: {self.log.read_text()}")
            with socket.socket() as probe:
                if probe.connect_ex((FRONT_ADDRESS, 80)) == 0:
                    return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"haproxy did not listen on {FRONT_ADDRESS}:80: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="print the hosts entry the hosted client test needs")
    parser.add_argument("--model", default=TEST_MODEL)
    print(hosts_line(parser.parse_args().model))
