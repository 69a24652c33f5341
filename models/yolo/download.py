"""Fetch the public YOLO-Fastest COCO files into a local cache, for users without the shared folder.

Nothing in the service or the tests calls this: serving reads only local files. Every file is pinned by
sha256 (the same files as shared/weights/PROVENANCE.md, section 1), so a changed upstream file fails loudly.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

# Yolo-Fastest (darknet "YOLO LICENSE v2", public domain), pinned to the commit the cached copies came from
_FASTEST = ("https://raw.githubusercontent.com/dog-qiuqiu/Yolo-Fastest/9c62b1c50e024fb73d29a651133b1d63548e63a1/"
            "ModelZoo/yolo-fastest-1.1_coco/")
# the classic darknet COCO label file (old spellings: motorbike, aeroplane, sofa, ...)
_NAMES = "https://raw.githubusercontent.com/pjreddie/darknet/master/data/coco.names"

FILES = {
    "yolo-fastest-1.1.cfg": "f6df5775c1e862998cf69046eba9265be3ae84dfe8b2caab7529823f0795bf70",
    "yolo-fastest-1.1.weights": "1c445c42bbd6df63edea2cc69f99667b5650d663ca11e34b116240740cd42890",
    "yolo-fastest-1.1-xl.cfg": "c458427acc4fbeabceff4528ef7b65b066c0308ce599460f8ba299eba63abad3",
    "yolo-fastest-1.1-xl.weights": "fac5fb41786c1f38f04972a658443b189f48720d7d117f9a044100e98a35b0c5",
    "coco.names": "634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84",
}


def default_cache() -> Path:
    return Path(os.environ.get("RUNWAY_CACHE", Path.home() / ".cache" / "runway-models")) / "yolo"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(name: str, cache_dir: Path, timeout: float = 60.0) -> Path:
    """One pinned file: reuse a cached copy whose hash matches, else download, check, and move into place."""
    if name not in FILES:
        raise ValueError(f"unknown file {name!r}; known: {sorted(FILES)}")
    target = cache_dir / name
    if target.exists() and _sha256(target) == FILES[name]:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    url = _NAMES if name == "coco.names" else _FASTEST + name
    partial = target.with_suffix(target.suffix + ".part")
    with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
        out.write(response.read())
    if (got := _sha256(partial)) != FILES[name]:
        partial.unlink()
        raise ValueError(f"{url}: sha256 {got} does not match the pinned {FILES[name]}")
    partial.replace(target)  # atomic: a crash never leaves a half-written file under the real name
    return target


def download_yolo_fastest(variant: str = "yolo-fastest-1.1-xl", cache_dir: Path | None = None) -> dict[str, Path]:
    """Return the `ModelSpec.weights` dict (cfg, weights, names) for a YOLO-Fastest 1.1 variant."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache()
    return {
        "cfg": fetch(f"{variant}.cfg", cache_dir),
        "weights": fetch(f"{variant}.weights", cache_dir),
        "names": fetch("coco.names", cache_dir),
    }
