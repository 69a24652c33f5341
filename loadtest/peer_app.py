"""The peer a user would write instead of this stack: plain uvicorn + FastAPI running the same pipeline
(base64 decode, the same model family, JSON answer) in one process, no batching, no Ray.

    python -m loadtest.peer_app --catalog models.json --model yolo --port 18200 [--mode threadpool|serialized]

Two ways to write it:
- `threadpool` (the headline peer): decode and inference together in a thread pool sized like the machine's
  cores, no lock, as a user who knows asyncio writes it; at load every core decodes or infers.
- `serialized`: decode on the event loop, one inference at a time behind a lock, as a naive server does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import uvicorn
from fastapi import FastAPI

from serve.catalog import load_catalog
from serve.codecs import decode_image
from serve.protocols.types import QueryRequest
from serve.runner import build_model

MODES = ("threadpool", "serialized")


def build(catalog_path: str, name: str, mode: str = "threadpool") -> FastAPI:
    catalog = load_catalog(catalog_path)
    entry = catalog.get(name)
    model = build_model(entry, catalog.base_dir)
    model.load()
    limits = entry.serving.limits
    app = FastAPI()

    def pipeline(data: str):
        return model.infer([decode_image(data, limits.max_bytes, limits.max_pixels)])[0]

    if mode == "threadpool":
        pool = ThreadPoolExecutor(os.cpu_count() or 1, "peer")

        async def answer(data: str):
            return await asyncio.get_running_loop().run_in_executor(pool, pipeline, data)
    elif mode == "serialized":
        lock = asyncio.Lock()

        async def answer(data: str):
            image = decode_image(data, limits.max_bytes, limits.max_pixels)
            async with lock:
                return (await asyncio.to_thread(model.infer, [image]))[0]
    else:
        raise ValueError(f"mode {mode!r}: one of {MODES}")

    @app.post(entry.http_path)
    async def query(request: QueryRequest):
        return {"model": name, "result": (await answer(request.data)).model_dump()}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalog", default="models.json")
    parser.add_argument("--model", default="yolo")
    parser.add_argument("--port", type=int, default=18200)
    parser.add_argument("--mode", choices=MODES, default="threadpool")
    args = parser.parse_args()
    uvicorn.run(build(args.catalog, args.model, args.mode), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
