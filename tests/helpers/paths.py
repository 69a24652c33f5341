"""Where the repository, its catalog and the shared folder (real weights, photos, schemas) are."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODELS_JSON = REPO / "models.json"


def shared_root() -> Path:
    """RUNWAY_SHARED, default ../shared beside the repository (it may be missing: see tests/conftest.py)."""
    return Path(os.environ.get("RUNWAY_SHARED", REPO.parent / "shared")).resolve()
