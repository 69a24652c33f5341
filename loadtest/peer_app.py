"""The peer a user would write instead of this stack: plain uvicorn + FastAPI running the same pipeline
(base64 decode, the same YOLO family, JSON answer) in one process, no batching, no Ray.

    python -m loadtest.peer_app --catalog models.json --model yolo --port 18200
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from fastapi import FastAPI

from serve.catalog import load_catalog
from serve.codecs import decode_image
from serve.protocols.types import QueryRequest
from serve.runner import build_model


def build(catalog_path: str, name: str) -> FastAPI:
    catalog = load_catalog(catalog_path)
    entry = catalog.get(name)
    model = build_model(entry, catalog.base_dir)
    model.load()
    limits = entry.serving.limits
    app = FastAPI()
    lock = asyncio.Lock()  # one inference at a time, as a naive server would do

    @app.post(entry.http_path)
    async def query(request: QueryRequest):
        image = decode_image(request.data, limits.max_bytes, limits.max_pixels)
        async with lock:
            result = await asyncio.to_thread(model.infer, [image])
        return {"model": name, "result": result[0].model_dump()}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalog", default="models.json")
    parser.add_argument("--model", default="yolo")
    parser.add_argument("--port", type=int, default=18200)
    args = parser.parse_args()
    uvicorn.run(build(args.catalog, args.model), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
