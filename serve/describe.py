"""The public description of a catalog entry: what GET / lists and GET /<model> shows."""

from __future__ import annotations

from pydantic import BaseModel

from serve.catalog import Entry
from serve.protocols.types import ModelInfo, ModelStatus, QueryRequest, QueryResponse, WeightsInfo


def availability(entry: Entry) -> ModelStatus | None:
    """Why an entry cannot be served at all (`Entry.unservable_reason`), or None when Ray Serve runs it."""
    reason = entry.unservable_reason
    return None if reason is None else ModelStatus(state="not_available", detail=reason)


def describe(entry: Entry, status: ModelStatus, output_type: type[BaseModel] | None = None) -> ModelInfo:
    serving = entry.serving
    socket = None
    if entry.query.socket is not None:
        socket = {"path": entry.socket_path, "namespace": entry.query.socket.namespace,
                  "emit": entry.query.socket.emit, "event": entry.query.socket.event, "transport": "websocket"}
    description = entry.description.model_dump(exclude_none=True) if entry.description else None
    return ModelInfo(
        name=entry.name,
        status=status,
        description=description,
        implementation=serving.implementation if serving else None,
        http={"method": entry.query.http.method, "path": entry.http_path, "format": entry.query.format.data},
        socket=socket,
        inputs=entry.inputs,
        input_schema=QueryRequest.model_json_schema(),
        output_schema=QueryResponse[output_type].model_json_schema() if output_type else None,
        weights=[WeightsInfo(role=role, format=w.format, path=w.path, url=w.url, size=w.size)
                 for role, w in (serving.weights.items() if serving else [])],
    )
