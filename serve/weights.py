"""Weight files: resolve local paths, download URL-only files into a cache, check sha256 when given.

Tests and the local server read files under RUNWAY_SHARED; a `url` is used only when the local file is absent
(users without the shared folder), so nothing downloads where the files are present.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable

from serve.catalog import WeightsFile, resolve_path

CACHE = Path(os.environ.get("RUNWAY_CACHE", Path.home() / ".cache" / "runway-models"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: on_bytes(bytes_done, bytes_total or None): called as a download proceeds (serve/progress.py reports it).
OnBytes = Callable[[int, int | None], None]
CHUNK = 1 << 20


def download(url: str, target: Path, on_bytes: OnBytes | None = None) -> Path:
    """Fetch `url` to `target` atomically (a partial download never looks complete)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        with urllib.request.urlopen(url, timeout=60) as response:
            length = response.headers.get("Content-Length")
            total, done = (int(length) if length and length.isdigit() else None), 0
            while chunk := response.read1(CHUNK):
                tmp.write(chunk)
                done += len(chunk)
                if on_bytes:
                    on_bytes(done, total)
    os.replace(tmp.name, target)
    return target


class WeightsNotFetched(FileNotFoundError):
    """A weight file that is not here and is not downloaded on load: the model is not available, not broken."""


def local_weights(model: str, role: str, weights: WeightsFile, base_dir: Path,
                  on_bytes: OnBytes | None = None) -> Path:
    """The file for one role: its local path when the file is there, else its URL downloaded into the cache
    (the rule `weights_problems` validates by); checked against sha256 when the catalog gives one."""
    path = resolve_path(weights.path, base_dir) if weights.path else None
    if path is None or not path.is_file():
        if not weights.url:
            raise FileNotFoundError(f"weights {role!r} of {model}: file not found: {path}")
        if not weights.download_on_load:
            size = f" ({weights.size})" if weights.size else ""
            raise WeightsNotFetched(f"weights {role!r} of {model} are not at {path}: download {weights.url}{size} "
                                    f"to that path to serve it (not fetched automatically: download_on_load is false)")
        path = CACHE / model / f"{role}-{Path(weights.url).name}"
        if not path.is_file():
            download(weights.url, path, on_bytes)
    if weights.sha256 and (digest := sha256_of(path)) != weights.sha256:
        raise ValueError(f"weights {role!r} of {model}: sha256 of {path} is {digest}, "
                         f"the catalog expects {weights.sha256}")
    return path
