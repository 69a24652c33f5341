"""Weight files: local paths, checksum mismatches, and URL-only files downloaded into the cache
(from a real HTTP server on loopback)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import pytest

import serve.weights as weights_module
from serve.catalog import WeightsFile
from serve.weights import local_weights


def test_local_path_and_checksum(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    good = WeightsFile(path=str(path), format="raw", sha256=hashlib.sha256(b"weights").hexdigest())
    assert local_weights("m", "w", good, tmp_path) == path
    bad = WeightsFile(path=str(path), format="raw", sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        local_weights("m", "w", bad, tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        local_weights("m", "w", WeightsFile(path="missing.bin", format="raw"), tmp_path)


def test_url_only_weights_are_downloaded_once(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "model.weights").write_bytes(b"\x01\x02" * 1000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(weights_module, "CACHE", tmp_path / "cache")
    try:
        url = f"http://127.0.0.1:{server.server_port}/model.weights"
        spec = WeightsFile(url=url, format="raw", sha256=hashlib.sha256(b"\x01\x02" * 1000).hexdigest())
        seen: list[tuple[int, int | None]] = []
        path = local_weights("m", "weights", spec, tmp_path, on_bytes=lambda done, total: seen.append((done, total)))
        assert path.read_bytes() == b"\x01\x02" * 1000
        assert seen and seen[-1] == (2000, 2000)  # progress: the bytes so far, of Content-Length
        (site / "model.weights").unlink()
        assert local_weights("m", "weights", spec, tmp_path) == path  # cached: no second download
        with_path = WeightsFile(path=str(tmp_path / "absent.weights"), url=url, format="raw", sha256=spec.sha256)
        assert local_weights("m", "weights", with_path, tmp_path) == path  # absent local file: the URL's copy
    finally:
        server.shutdown()


def test_weights_not_downloaded_on_load_are_reported_not_fetched(tmp_path, monkeypatch):
    """A large file marked download_on_load: false is never fetched by a replica (nothing listens on the URL: a
    download attempt would fail differently); the error names the path, the URL and its size, and validation
    lists it as a file to fetch, not as a problem of the catalog."""
    from serve.catalog import parse_catalog, weights_problems, weights_to_fetch
    from serve.weights import WeightsNotFetched

    monkeypatch.setattr(weights_module, "CACHE", tmp_path / "cache")
    spec = WeightsFile(path=str(tmp_path / "big.t7"), url="http://127.0.0.1:9/big.t7.zip", format="torch7",
                       size="1.1 GB", download_on_load=False)
    with pytest.raises(WeightsNotFetched, match=r"big\.t7: download http://127.0.0.1:9/big\.t7\.zip \(1\.1 GB\)"):
        local_weights("m", "checkpoint", spec, tmp_path)
    assert not (tmp_path / "cache").exists()
    entry = {"containerId": "m", "name": "m", "port": 1, "query": {"http": {"route": "/q"}},
             "serving": {"implementation": "densecap", "weights": {"checkpoint": spec.model_dump()}}}
    catalog = parse_catalog([entry])
    assert weights_problems(catalog.entries[0], tmp_path) == []
    assert weights_to_fetch(catalog.entries[0], tmp_path) == [
        f"m.serving.weights.checkpoint: not at {tmp_path / 'big.t7'}; download http://127.0.0.1:9/big.t7.zip "
        f"(1.1 GB) there to serve m"]
    (tmp_path / "big.t7").write_bytes(b"t7")
    assert local_weights("m", "checkpoint", spec, tmp_path) == tmp_path / "big.t7"
    assert weights_problems(catalog.entries[0], tmp_path) == weights_to_fetch(catalog.entries[0], tmp_path) == []
