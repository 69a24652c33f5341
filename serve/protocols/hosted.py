"""Runway's Hosted Models API for every served model: `GET /<name>/v1/`, `GET /<name>/v1/info`,
`POST /<name>/v1/query`, beside the catalog's own routes.

One router, two backends:
- `ReplicaBackend` runs in the model's own replica (one hop, like the original routes);
- `SleepingBackend` runs in a small always-on gateway (`serve.app.HostedGateway`, its own Serve application at
  `/<name>/v1`) for a model allowed to scale to zero: while no replica runs, `GET /v1/` answers `starting` and
  wakes the model; `/v1/info` and `/v1/query` wait for it through a deployment handle (a request queued on a
  handle is what makes Serve scale up from zero). Without the gateway, Serve's proxy would hold `GET /v1/` until
  the model woke, and the client could never see `starting`.
Every request is authorized by serve.tokens first. Overload answers 429 with Retry-After, which Runway's client
retries (it gives up on 503).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from serve.catalog import Entry
from serve.errors import ModelUnavailable, Overloaded, ServeError, TooManyRequests
from serve.protocols.hosted_types import (HOSTED_PREFIX, INFO_ROUTE, QUERY_ROUTE, HostedInfo, HostedQuery,
                                          HostedRoot, hosted_info)
from serve.tokens import TokenStore


def is_hosted_path(scope: dict) -> bool:
    """Whether a request inside a model replica is for the hosted routes (their overload answer is 429)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    local = path[len(root):] if root and path.startswith(root) else path
    return local == HOSTED_PREFIX or local.startswith(HOSTED_PREFIX + "/")


def hosted_overload(error: ServeError) -> ServeError:
    return TooManyRequests(error) if isinstance(error, Overloaded) else error


class HostedBackend(Protocol):
    async def root(self) -> HostedRoot: ...
    async def info(self) -> HostedInfo: ...
    async def query(self, query: HostedQuery) -> dict[str, Any]: ...


class ReplicaAnswer(BaseModel):
    """A hosted answer carried from a model replica to the gateway: errors keep their status and headers."""

    status: int = 200
    body: dict[str, Any]
    headers: dict[str, str] = {}

    @classmethod
    async def of(cls, call) -> ReplicaAnswer:
        try:
            return cls(body=await call)
        except ServeError as error:
            return cls(status=error.status, body=error.body().model_dump(), headers=dict(error.headers))

    def unwrap(self) -> dict[str, Any]:
        if self.status == 200:
            return self.body
        error = ServeError(self.body.get("detail", "error"))
        error.status, error.code, error.headers = self.status, self.body.get("error", "error"), self.headers
        raise error


class ReplicaBackend:
    """Inside the model's replica: the runner answers directly."""

    def __init__(self, entry: Entry, runner):
        self.entry, self.runner = entry, runner

    async def root(self) -> HostedRoot:
        state = self.runner.status.state
        if state == "failed":
            raise ModelUnavailable(f"model {self.entry.name} failed to load: {self.runner.status.detail}")
        return HostedRoot(status="running" if state == "ready" else "starting")

    async def info(self) -> HostedInfo:
        text = self.entry.description.text if self.entry.description else None
        return hosted_info(self.entry.name, text or None, self.runner.output_type)

    async def query(self, query: HostedQuery) -> dict[str, Any]:
        try:
            response = await self.runner.query(query.as_query(), transport="hosted")
        except ServeError as error:
            raise hosted_overload(error) from None
        result = response.result
        return result.model_dump() if isinstance(result, BaseModel) else {"result": result}


class SleepingBackend:
    """In the gateway of a model that scales to zero. `GET /v1/` asks the model's replica through a handle; an
    awake replica answers at once, while with none the call waits in the handle's queue, which is what makes
    Serve start one. So a call that has not answered within AWAKE_WITHIN_S means asleep or waking: answer
    `starting` and keep the call, whose end says the model is awake. (Serve's own status lagged the real state by
    several seconds: waitUntilAwake took 13 s where a query woke the model in 5.5.)"""

    AWAKE_WITHIN_S = 0.5

    def __init__(self, name: str):
        self.name = name
        self.waking: asyncio.Future | None = None

    def handle(self):
        from ray import serve

        return serve.get_app_handle(self.name)

    async def root(self) -> HostedRoot:
        if self.waking is not None and not self.waking.done():
            return HostedRoot(status="starting")
        call = asyncio.ensure_future(self._root_call())
        done, _ = await asyncio.wait({call}, timeout=self.AWAKE_WITHIN_S)
        if not done:
            self.waking = call
            return HostedRoot(status="starting")
        return HostedRoot.model_validate(ReplicaAnswer.model_validate(call.result()).unwrap())

    async def _root_call(self) -> dict:
        return await self.handle().hosted_root.remote()

    async def info(self) -> HostedInfo:
        return HostedInfo.model_validate(await self.handle().hosted_info.remote())

    async def query(self, query: HostedQuery) -> dict[str, Any]:
        return ReplicaAnswer.model_validate(await self.handle().hosted_query.remote(query.model_dump())).unwrap()


def hosted_router(entry: Entry, tokens: TokenStore, backend: HostedBackend, prefix: str = HOSTED_PREFIX) -> APIRouter:
    """The three hosted routes under `prefix` ("/v1" inside the model's app; "" in the gateway, whose Serve route
    prefix is already /<name>/v1), each behind the token check."""
    public = entry.serving.hosted.public if entry.serving else False

    def authorize(request: Request) -> None:
        tokens.check(entry.name, public, request.headers.get("authorization"))

    router = APIRouter(prefix=prefix, dependencies=[Depends(authorize)], tags=["hosted (Runway Hosted Models API)"])

    @router.get("/", response_model=HostedRoot, summary=f"Whether {entry.name} is awake (running) or starting")
    async def root() -> HostedRoot:
        return await backend.root()

    @router.get(INFO_ROUTE, response_model=HostedInfo, summary=f"{entry.name}'s inputs and outputs")
    async def info() -> HostedInfo:
        return await backend.info()

    @router.post(QUERY_ROUTE, summary=f"Run {entry.name}: the inputs as a JSON object, the outputs as one")
    async def query(body: HostedQuery) -> dict[str, Any]:
        return await backend.query(body)

    return router
