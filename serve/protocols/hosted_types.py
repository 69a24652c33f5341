"""Requests and answers of Runway's Hosted Models API (`/<name>/v1`), as its JavaScript client reads them.

The field specs of `/v1/info` are Runway's typed-spec shape (`{"name", "type", "description", "default"}`),
derived from our pydantic types: the input is the image of `QueryRequest.data`, the outputs are the fields of
the model family's answer type.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from serve.catalog import HOSTED_PREFIX
from serve.protocols.types import QueryRequest

QUERY_ROUTE, INFO_ROUTE = "/query", "/info"
#: The one input every served model takes: an image as a data URI.
IMAGE_INPUT = "image"

HostedState = Literal["running", "starting"]


class HostedRoot(BaseModel):
    """GET /v1/: whether the model is awake. The client's isAwake()/waitUntilAwake() poll this."""

    status: HostedState = Field(description="running: answers now; starting: loading or waking from sleep")
    queryRoute: str = HOSTED_PREFIX + QUERY_ROUTE
    dataRoute: str | None = None
    errorRoute: str | None = None


class FieldSpec(BaseModel):
    """One input or output in Runway's typed-spec shape."""

    model_config = ConfigDict(extra="allow")  # type-specific keys, e.g. itemType for arrays
    name: str
    type: str = Field(description="image, text, number, boolean, array or any")
    description: str | None = None
    default: Any = None


class HostedInfo(BaseModel):
    name: str
    description: str | None = None
    inputs: list[FieldSpec]
    outputs: list[FieldSpec]


class HostedQuery(BaseModel):
    """POST /v1/query: the inputs as a JSON object."""

    model_config = ConfigDict(extra="forbid")
    image: str = Field(min_length=1, description=QueryRequest.model_fields["data"].description)

    def as_query(self) -> QueryRequest:
        return QueryRequest(data=self.image)


JSON_TO_SPEC = {"string": "text", "number": "number", "integer": "number", "boolean": "boolean", "array": "array"}


def field_spec(name: str, schema: dict[str, Any]) -> FieldSpec:
    kind = JSON_TO_SPEC.get(schema.get("type"), "any")
    extra = {}
    if kind == "array":
        extra["itemType"] = JSON_TO_SPEC.get(schema.get("items", {}).get("type"), "any")
    return FieldSpec(name=name, type=kind, description=schema.get("description"), default=schema.get("default"),
                     **extra)


def hosted_info(name: str, description: str | None, output_type: type[BaseModel] | None) -> HostedInfo:
    image = QueryRequest.model_json_schema()["properties"]["data"]
    inputs = [FieldSpec(name=IMAGE_INPUT, type="image", description=image.get("description"))]
    properties = output_type.model_json_schema().get("properties", {}) if output_type else {}
    return HostedInfo(name=name, description=description, inputs=inputs,
                      outputs=[field_spec(key, schema) for key, schema in properties.items()])
