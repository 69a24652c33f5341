"""How the original Runway clients built a request: from the model's own catalog description."""

from __future__ import annotations

import base64
from pathlib import Path


def original_payload(model: dict, shared: Path, photo: str) -> str:
    """What the original clients sent: the catalog's `format.data`, used verbatim, then base64 of the JPEG."""
    return model["http"]["format"] + base64.b64encode((shared / "images" / photo).read_bytes()).decode()
