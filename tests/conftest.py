"""Shared fixtures. Real weights and photos come from the shared folder named by RUNWAY_SHARED
(default: ../shared beside the repository). When it is missing the tests that need it (those asking for the
`shared` or `photo` fixture) fail, not skip: CI must never go green without having run the real models. Tests that
need no real file never ask for it. Helpers shared by test modules live in tests/helpers/."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.families import FIXTURE_FAMILIES
from tests.helpers.paths import shared_root


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
def dog(shared) -> str:
    """shared/images/dog.jpg as the data URI the catalog's HTTP and socket.io routes take."""
    return "data:image/jpeg;base64," + base64.b64encode((shared / "images/dog.jpg").read_bytes()).decode()


@pytest.fixture(scope="session")
def photo(shared):
    return lambda name: load_photo(shared, name)


@pytest.fixture
def fixture_families(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Register the tiny test-only model families (tests/helpers/families.py) for one test."""
    from serve import registry

    for name, target in FIXTURE_FAMILIES.items():
        monkeypatch.setitem(registry.IMPLEMENTATIONS, name, target)
    return FIXTURE_FAMILIES


@pytest.fixture(autouse=True)
def _fast_tests_start_no_ray(request: pytest.FixtureRequest):
    """`make test-fast` (`-m "not slow"`) must never start Ray: a test that does is slow and says so."""
    yield
    ray = sys.modules.get("ray")
    if request.node.get_closest_marker("slow") is None and ray is not None and ray.is_initialized():
        pytest.fail("this test started Ray but is not marked slow (pytest.mark.slow)", pytrace=False)
