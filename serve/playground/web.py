"""The browser playground: a static single-page app (static/) served by the catalog app.

`GET /` answers browsers (who ask for text/html first) with the page and everyone else with the JSON catalog;
the page then reads that same JSON and calls each model's own routes from it (HTTP `query_once`, socket.io
namespace and events), so it needs no API of its own. Scripts and styles live under PLAYGROUND_PATH and ship
with the package; the socket.io client is vendored from npm (`make vendor-js`, static/vendor/VERSION).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from serve.catalog import PLAYGROUND_PATH

STATIC_DIR = Path(__file__).with_name("static")
HTML, JSON = "text/html", "application/json"


def _quality(accept: str, media_type: str) -> float:
    """The q the Accept header gives `media_type` (its most specific match: exact, type/*, then */*)."""
    kind = media_type.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        pattern, q = fields[0].lower(), 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(pattern, -1)
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


def wants_html(accept: str | None) -> bool:
    """True when the client prefers HTML to JSON: a browser's navigation does (`text/html,...,*/*;q=0.8`);
    curl (`*/*`), scripts and the page's own fetches (`application/json`) get JSON, as before."""
    accept = accept or "*/*"
    return _quality(accept, HTML) > _quality(accept, JSON)


def page() -> HTMLResponse:
    """The single page; its asset paths come from PLAYGROUND_PATH, the one place that names them."""
    html = (STATIC_DIR / "index.html").read_text().replace("{static}", PLAYGROUND_PATH)
    return HTMLResponse(html, headers={"Vary": "Accept", "Cache-Control": "no-cache"})


def install_playground(app: FastAPI) -> None:
    """Serve static/ under PLAYGROUND_PATH (mount before any catch-all route, which would shadow it)."""
    app.mount(PLAYGROUND_PATH, StaticFiles(directory=STATIC_DIR), name="playground")
