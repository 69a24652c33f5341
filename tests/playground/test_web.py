"""serve/playground/web.py without Ray: who gets HTML at GET /, and the page's assets all being served from
the package (the page works offline: no script or style from another host)."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serve.catalog import PLAYGROUND_PATH
from serve.playground.web import STATIC_DIR, install_playground, page, wants_html

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize("accept, html", [
    (BROWSER, True),
    ("text/html", True),
    (None, False),  # no header: JSON, as before the playground
    ("*/*", False),  # curl
    ("application/json", False),  # the page's own fetch, scripts
    ("application/json, text/html;q=0.5", False),
    ("text/html;q=0.5, application/json", False),
    ("text/*, application/json;q=0.1", True),
    ("text/html;q=bogus, */*", False),
])
def test_wants_html(accept, html):
    assert wants_html(accept) is html


def test_assets_are_served_from_the_package():
    app = FastAPI()
    install_playground(app)
    client = TestClient(app)
    html = page().body.decode()
    links = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assets = [link for link in links if not link.startswith("data:")]  # the empty favicon: no request at all
    assert len(assets) == 3, assets  # style, the vendored socket.io client, the app module
    for asset in assets:
        assert asset.startswith(PLAYGROUND_PATH + "/"), f"{asset} is not shipped with the package"
        response = client.get(asset)
        assert response.status_code == 200, asset
    modules = re.findall(r'from "\./([\w.]+)"', (STATIC_DIR / "app.js").read_text())
    assert sorted(modules) == ["draw.js", "stream.js"]
    for module in modules:
        assert client.get(f"{PLAYGROUND_PATH}/{module}").status_code == 200
    assert client.get(f"{PLAYGROUND_PATH}/missing.js").status_code == 404


def test_vendored_socket_io_client_is_recorded():
    """`make vendor-js` writes VERSION from the npm package it unpacked; the script must be that version."""
    vendor = STATIC_DIR / "vendor"
    name_version, licence = (vendor / "VERSION").read_text().split()[:2]
    assert name_version.startswith("socket.io-client@4.") and licence == "MIT"
    version = name_version.split("@")[1]
    assert f"Socket.IO v{version}" in (vendor / "socket.io.min.js").read_text()[:200]
    assert "MIT License" in (vendor / "socket.io-client.LICENSE").read_text()
