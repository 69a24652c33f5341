"""Shared fixtures. Real weights and photos come from the shared folder named by RUNWAY_SHARED
(default: ../shared beside the repository). When it is missing the tests that need it fail, not skip:
CI must never go green without having run the real models."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    return Path(os.environ.get("RUNWAY_SHARED", REPO.parent / "shared")).resolve()


# Catalogs written to tmp folders resolve ${RUNWAY_SHARED} through this, as do Ray's worker processes.
os.environ.setdefault("RUNWAY_SHARED", str(shared_root()))


@pytest.fixture(scope="session")
def shared() -> Path:
    root = shared_root()
    if not (root / "weights").is_dir():
        pytest.fail(f"shared folder not found at {root} (set RUNWAY_SHARED)", pytrace=False)
    return root


def load_photo(shared: Path, name: str) -> np.ndarray:
    """A real photo as RGB uint8: a file of shared/images, or a scikit-image sample by name."""
    path = shared / "images" / name
    if path.exists():
        from PIL import Image

        return np.asarray(Image.open(path).convert("RGB"))
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle returns (left, right, disparity)
        image = image[0]
    return np.ascontiguousarray(image[..., :3])


@pytest.fixture(scope="session")
def photo(shared):
    return lambda name: load_photo(shared, name)
