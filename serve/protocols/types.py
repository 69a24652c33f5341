"""Request and response types shared by HTTP and socket.io; the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

T = TypeVar("T")
#: A request id is echoed back in every answer: a frame counter or a UUID, never a payload.
MAX_ID_CHARS = 128


class QueryRequest(BaseModel):
    """One image to run the model on, as the catalog's `format.data` says (a base64 data URI)."""

    model_config = ConfigDict(extra="ignore")
    data: str = Field(min_length=1, description="data:image/jpeg;base64,... (bare base64 is accepted too)")
    id: int | str | None = Field(None, description="echoed back, so a stream can match answers to frames (text up "
                                                    f"to {MAX_ID_CHARS} characters)")
    render: bool = Field(False, description="also answer with the image, the result drawn on it (models that "
                                            "can draw, e.g. openpose)")

    @field_validator("id")
    @classmethod
    def short_id(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, str) and len(value) > MAX_ID_CHARS:
            raise ValueError(f"an id is at most {MAX_ID_CHARS} characters (got {len(value)})")
        return value


class Timings(BaseModel):
    queue_ms: float = Field(description="waiting for the batch to start")
    inference_ms: float = Field(description="the whole batch's model time")
    total_ms: float = Field(description="in this replica, decode to answer")


class QueryResponse(BaseModel, Generic[T]):
    model: str
    id: int | str | None = None
    result: T
    batch_size: int = Field(description="how many images shared the model call")
    timings: Timings
    image: str | None = Field(None, description="with render: the input with the result drawn, a JPEG data URI")


ModelState = Literal["ready", "loading", "failed", "not_available", "asleep"]


class LoadProgress(BaseModel):
    """Where a loading replica is: downloading a weight file (bytes), then loading the model (seconds)."""

    phase: Literal["downloading", "loading"]
    file: str | None = Field(None, description="the weight file's role in the catalog (downloading)")
    bytes_done: int | None = Field(None, ge=0, description="downloaded so far")
    bytes_total: int | None = Field(None, ge=0, description="the file's size, when the server sent it")
    seconds: float = Field(ge=0, description="since this phase began")

    def text(self) -> str:
        if self.phase == "loading":
            return f"loading the model ({self.seconds:.0f} s)"
        total = f" of {self.bytes_total / 1e6:.1f}" if self.bytes_total else ""
        return f"downloading the {self.file} file: {(self.bytes_done or 0) / 1e6:.1f}{total} MB ({self.seconds:.0f} s)"


class ModelStatus(BaseModel):
    state: ModelState
    detail: str | None = Field(None, description="why it is not ready")
    progress: LoadProgress | None = Field(None, description="while loading: the replica's download or load progress")
    load_seconds: float | None = None
    replicas: int | None = Field(None, description="running replicas (Serve's view; GET / fills it in)")


class WeightsInfo(BaseModel):
    role: str
    format: str
    path: str | None = None
    url: str | None = None
    size: str | None = None


class ModelInfo(BaseModel):
    """What GET / lists per model and GET /<model> shows in full."""

    name: str
    status: ModelStatus
    description: dict[str, Any] | str | None = None
    implementation: str | None = None
    http: dict[str, str] = Field(description="method and path of the query route")
    socket: dict[str, str] | None = Field(None, description="socket.io path, namespace, emit and event")
    inputs: list[Any] = Field(default_factory=list, description="the original catalog's input list")
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    weights: list[WeightsInfo] = Field(default_factory=list)


class Readiness(BaseModel):
    ready: bool
    models: dict[str, ModelStatus]
