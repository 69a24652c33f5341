"""The catalog (`models.json`): its schema, loading, and field-level errors.

An entry keeps every field of the original Runway model repository (`containerId, tag, name, specs, port,
query, size, options, needsTraining, description, inputs`) and may add a `serving` section saying how this
stack runs it: implementation, weights, batching, autoscaling, resources, input limits. Entries without one
are Docker-only: they stay in the catalog (and the generator can deploy their container image) but Ray Serve
reports them as not available.

Weight paths may use `${RUNWAY_SHARED}`; when unset it defaults to `<catalog dir>/../shared`, the one setting
the tests and the local server share.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from serve.errors import field_problems
from serve.registry import GPU_FAMILIES, IMPLEMENTATIONS, family_of, is_built

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
#: A model's name, wherever one is declared (the catalog entry, the chart's values for it).
ModelName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=50)]
#: The catalog app's own routes (serve/catalog_app.py). Ingresses publish PUBLIC_CATALOG_PATHS; /metrics stays
#: inside the cluster.
ROOT_PATH, HEALTH_PATH, READY_PATH, METRICS_PATH = "/", "/healthz", "/readyz", "/metrics"
#: The Open Inference Protocol's REST prefix (serve/protocols/v2_http.py): the catalog app answers /v2/... and
#: each model's replica answers /<model>/v2/... too.
V2_PATH = "/v2"
CATALOG_APP_PATHS = (ROOT_PATH, HEALTH_PATH, READY_PATH, METRICS_PATH, V2_PATH)
PUBLIC_CATALOG_PATHS = (ROOT_PATH, HEALTH_PATH, READY_PATH)
#: The browser playground's scripts and styles (serve/playground): a folder, so ingresses route it by prefix.
PLAYGROUND_PATH = "/_playground"
#: Folders of the catalog app that ingresses route by prefix: the playground's files and the v2 routes.
PUBLIC_CATALOG_PREFIXES = (PLAYGROUND_PATH, V2_PATH)
#: Runway's Hosted Models API under each model (serve/protocols/hosted.py): /<name>/v1/...
HOSTED_PREFIX = "/v1"
#: First path segments the catalog app owns: a model may not be named like them.
RESERVED_NAMES = {p.strip("/") for p in CATALOG_APP_PATHS if p != ROOT_PATH} | {
    "docs", "redoc", "openapi.json", "models", "static"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- the original Runway fields ------------------------------------------------------------------------


class Specs(Strict):
    cpu: bool = Field(True, description="runs on a CPU")
    gpu: bool = Field(False, description="wants a GPU (served with num_gpus when one exists)")


# The original's written forms that the schema normalizes (routes without the slash, lower-case methods, string
# ports, size pairs, data-URI headers without the comma) are what `json_schema_input_type` describes, so the
# generated JSON Schema accepts exactly what loads.
ROUTE_CHARS, NAMESPACE_CHARS = "[A-Za-z0-9_./-]*", "[A-Za-z0-9_/-]*"
DATA_URI_HEADER = r"data:image/[\w.+-]+;base64"
PortNumber = Annotated[int, Field(ge=1, le=65535)]
PortText = Annotated[str, Field(pattern=r"^[0-9]{1,5}$")]
HTTP_METHODS = ("POST", "GET", "PUT")


def any_case(*words: str) -> str:
    """A JSON Schema pattern matching the words in any letter case (JSON Schema patterns have no flags)."""
    return "^(" + "|".join("".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in w) for w in words) + ")$"


def _leading_slash(value: Any) -> Any:
    """The original wrote routes and namespaces without the slash (`query_once`, `query`)."""
    return value if not isinstance(value, str) or value.startswith("/") else "/" + value


class HttpQuery(Strict):
    route: str = Field(pattern=f"^/{ROUTE_CHARS}$", description="route under /<name>: `query_once` or `/query_once`")
    method: Literal[HTTP_METHODS] = Field("POST", description="HTTP method of the route, any case")
    type: Literal["json"] = Field("json", description="payload type of the original container, any case (JSON)")

    _route = field_validator("route", mode="before", json_schema_input_type=Annotated[
        str, Field(pattern=f"^/?{ROUTE_CHARS}$")])(_leading_slash)

    @field_validator("method", mode="before", json_schema_input_type=Annotated[str, Field(pattern=any_case(
        *HTTP_METHODS))])
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("type", mode="before", json_schema_input_type=Annotated[str, Field(pattern=any_case("json"))])
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class SocketQuery(Strict):
    namespace: str = Field(pattern=f"^/{NAMESPACE_CHARS}$", description="socket.io namespace: `query` or `/query`")
    emit: str = Field(min_length=1, description="event the client emits with a frame")
    event: str = Field(min_length=1, description="event the server answers with")

    _namespace = field_validator("namespace", mode="before", json_schema_input_type=Annotated[
        str, Field(pattern=f"^/?{NAMESPACE_CHARS}$")])(_leading_slash)


class QueryFormat(Strict):
    data: str = Field(pattern=f"^{DATA_URI_HEADER},$",
                      description="the data-URI header a client puts before base64(image): `data:image/jpg;base64,`")

    @field_validator("data", mode="before", json_schema_input_type=Annotated[
        str, Field(pattern=f"^{DATA_URI_HEADER},?$")])
    @classmethod
    def _complete_header(cls, value: Any) -> Any:
        """Clients send `format.data + base64(bytes)` verbatim, so the header must end with the comma; older
        catalogs of ours wrote it without."""
        if isinstance(value, str) and not value.endswith(","):
            return value + ","
        return value


class Query(Strict):
    http: HttpQuery
    socket: SocketQuery | None = None
    format: QueryFormat = QueryFormat(data="data:image/jpeg;base64,")


class Description(BaseModel):
    """About the model, with the original's keys (`licence` spelled so). Other string keys are kept."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str]
    first: str | None = Field(None, description="first paragraph: what the model does")
    second: str | None = Field(None, description="second paragraph")
    third: str | None = Field(None, description="third paragraph")
    authors: str | None = None
    image: str | None = Field(None, description="picture URL")
    organization: str | None = None
    framework: str | None = None
    github: str | None = None
    paper: str | None = None
    licence: str | None = None

    @property
    def text(self) -> str:
        """The paragraphs as one text (OpenAPI documents and the playground show it)."""
        return "\n\n".join(p for p in (self.first, self.second, self.third) if p)


EXPOSED_PORT = re.compile(r"^(\d{1,5})(/(tcp|udp|sctp))?$", re.I)


class PortBinding(BaseModel):
    model_config = ConfigDict(extra="allow")
    HostIP: str | None = None
    HostPort: str | None = None

    @field_validator("HostPort", mode="before", json_schema_input_type=PortText | PortNumber | None)
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class DockerHostConfig(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    AutoRemove: bool | None = None
    PortBindings: dict[str, list[PortBinding]] = Field(default_factory=dict)


class DockerOptions(BaseModel):
    """Docker create options, as the original wrote them. The fields this stack reads are typed; Docker's other
    options are kept as given (they only matter to a Docker engine)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    image: str | None = None
    Tty: bool | None = None
    Detach: bool | None = None
    ExposedPorts: dict[str, dict] = Field(default_factory=dict, description="`<port>/<tcp|udp|sctp>` -> {}")
    HostConfig: DockerHostConfig | None = None

    @field_validator("ExposedPorts")
    @classmethod
    def _port_keys(cls, value: dict[str, dict]) -> dict[str, dict]:
        for key in value:
            match = EXPOSED_PORT.match(key)
            if not match:
                raise ValueError(f"{key!r} is not <port>/<tcp|udp|sctp>")
            if not 1 <= int(match.group(1)) <= 65535:
                raise ValueError(f"port {match.group(1)} in {key!r} is out of range 1-65535")
        return value

    def container_ports(self) -> list[tuple[int, str]]:
        """(port, protocol) the container listens on, from ExposedPorts."""
        ports = []
        for key in self.ExposedPorts:
            match = EXPOSED_PORT.match(key)
            ports.append((int(match.group(1)), (match.group(3) or "tcp").upper()))
        return ports


SizePair = tuple[str | int | float, str | int | float]


def _size_text(value: Any) -> Any:
    """The original wrote `size` as a [value, unit] pair (`['2.19', 'GB']`); one string form is kept."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(isinstance(v, (str, int, float)) for v in value):
            raise ValueError("expected a [value, unit] pair such as ['2.19', 'GB'], or a string")
        return f"{value[0]} {value[1]}"
    return value


# --- the serving section (this stack's extension) ---------------------------------------------------------


class WeightsFile(Strict):
    path: str | None = Field(None, description="local file; ${RUNWAY_SHARED} and ~ are expanded")
    url: str | None = Field(None, description="where users download it from when `path` is absent")
    format: str = Field(description="file format, e.g. darknet-cfg, darknet-weights, tf-graphdef, tflite")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="expected checksum")
    size: str | None = Field(None, description="what `url` weighs as its publisher states it (e.g. '1.1 GB'): told "
                             "to users before they fetch a file that is not downloaded on load")
    download_on_load: bool = Field(True, description="download `url` when a replica loads and `path` is absent; "
                                   "false for files too large to fetch unasked (users download `url` to `path`): "
                                   "the model is then `not_available`, saying so, until the file is there")

    @model_validator(mode="after")
    def _path_or_url(self) -> WeightsFile:
        if not self.path and not self.url:
            raise ValueError("give `path` (a local file) or `url` (to download)")
        return self


class Batching(Strict):
    max_batch_size: int = Field(8, ge=1, le=256, description="largest batch a replica assembles")
    batch_wait_timeout_s: float = Field(0.005, ge=0, le=1, description="how long a batch waits to fill")


class Threads(Strict):
    """How a replica spreads model work over the cores it may use (its CPU affinity and cgroup quota, read in
    the replica: a pod's limit, this machine's cores locally). Unset: sized from those cores."""

    batches: int | None = Field(None, ge=1, le=64, description="batches one replica computes at once, each in "
                                "a thread of its own (so a saturated replica keeps every core busy); default: "
                                "the cores the replica may use, at most what the model computes at once (a pool of N "
                                "TFLite interpreters: N)")
    intra_op: int | None = Field(None, ge=1, le=64, description="threads one torch op may use in the replica "
                                 "(torch.set_num_threads; Ray would give a fractional num_cpus 1); TensorFlow "
                                 "and TFLite families set theirs in `options`; default: the cores the replica "
                                 "may use shared among its concurrent batches (1 when batches = cores)")

    def resolve(self, cores: int) -> tuple[int, int]:
        """(batches, intra_op) for a replica that may use `cores` cores: as many threads as cores in all. (Measured
        on 2 cores with YOLO: 2 batches x 1 thread kept the machine 92 % busy at 16 clients; 1 x 1 left it 64 %
        busy at half the throughput; 1 x 2 and 2 x 2 were slower at 1 client too.)"""
        batches = self.batches or cores
        return batches, self.intra_op or max(1, cores // batches)


class Autoscaling(Strict):
    min_replicas: int = Field(1, ge=0, le=100, description="never fewer replicas (0: scale to zero)")
    max_replicas: int = Field(1, ge=1, le=100, description="never more; equal to min_replicas: a fixed count")
    initial_replicas: int | None = Field(None, ge=0, le=100, description="replicas at deploy time")
    target_ongoing_requests: float = Field(2.0, gt=0, description="per replica, before scaling up")
    upscale_delay_s: float = Field(30.0, ge=0, description="load must persist this long before adding a replica")
    downscale_delay_s: float = Field(600.0, ge=0, description="idle this long before removing a replica")
    downscale_to_zero_delay_s: float | None = Field(
        None, ge=0, description="with min_replicas 0: idle this long before the last replica goes (the model "
        "sleeps; the next request wakes it); unset: downscale_delay_s")

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} > max_replicas {self.max_replicas}")
        if self.downscale_to_zero_delay_s is not None and self.min_replicas != 0:
            raise ValueError(f"downscale_to_zero_delay_s {self.downscale_to_zero_delay_s:g} needs min_replicas 0 "
                             f"(got {self.min_replicas}): only a model allowed to scale to zero can sleep")
        return self

    @property
    def sleeps(self) -> bool:
        """Scales to zero when idle: hosted requests must wake it (serve/protocols/hosted.py)."""
        return self.min_replicas == 0


class Hosted(Strict):
    """Runway's Hosted Models API at /<name>/v1 (serve/protocols/hosted.py)."""

    public: bool = Field(False, description="answer /v1 without a token. Otherwise the model is private: a token "
                         "must be configured for it (RUNWAY_TOKEN_<NAME>, a file <name> in RUNWAY_TOKENS_DIR, or "
                         "the Secret named by the chart's hosted.tokensSecret) and every /v1 request must carry it "
                         "as a Bearer token")
    protect_original_routes: bool = Field(False, description="also require the token on the catalog's own query "
                                          "route and socket.io namespace (they are open by default, as the "
                                          "original's were)")


class Resources(Strict):
    num_cpus: float = Field(0.5, gt=0, le=64, description="CPUs per replica; fractions share a core")
    num_gpus: float = Field(0.0, ge=0, le=8, description="GPUs per replica when a GPU exists; fractions allowed")
    memory_mb: int | None = Field(None, gt=0, description="memory per replica, for the scheduler")


class InputLimits(Strict):
    max_bytes: int = Field(8 * 1024 * 1024, gt=0, description="largest decoded payload, bytes")
    max_pixels: int = Field(24_000_000, gt=0, description="largest width*height (decompression bombs)")
    body_timeout_s: float = Field(10.0, gt=0, le=300, description="a request body must arrive within this; "
                                  "slower ones are answered 408 and their slot is freed")

    @property
    def max_body_bytes(self) -> int:
        """Largest request body or socket.io message: the payload in base64 (4/3) plus the JSON around it."""
        return self.max_bytes * 4 // 3 + 64 * 1024


class Serving(Strict):
    implementation: str = Field(description=f"model family: one of {sorted(IMPLEMENTATIONS)}")
    weights: dict[str, WeightsFile] = Field(default_factory=dict, description="files by role")
    options: dict[str, Any] = Field(default_factory=dict, description="the family's options (thresholds, sizes): "
                                    "each family declares its own, unknown keys are refused")
    batching: Batching = Batching()
    threads: Threads = Threads()
    autoscaling: Autoscaling = Autoscaling()
    resources: Resources = Resources()
    limits: InputLimits = InputLimits()
    hosted: Hosted = Hosted()
    latency_budget_s: float = Field(2.0, gt=0, le=600, description="a replica admits a request only when its "
                                    "measured drain rate answers it within this; the rest get 503 at once")
    max_ongoing_requests: int = Field(32, ge=1, le=10_000, description="per replica; above it: 503")
    max_queued_requests: int = Field(-1, ge=-1, description="waiting in Serve's proxy for a replica slot before "
                                     "Serve refuses (503, text/plain); -1: no cap, the replica's admission refuses "
                                     "at once with JSON instead")

    @field_validator("implementation")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in IMPLEMENTATIONS:
            raise ValueError(f"unknown implementation {value!r}; known: {', '.join(sorted(IMPLEMENTATIONS))}")
        return value

    def family_errors(self) -> list[dict[str, Any]]:
        """`options` and the weight roles checked against the family's declaration (models/<family>/family.py),
        as pydantic-style errors located in this section; none for a family that is not built yet."""
        if not is_built(self.implementation):
            return []
        family, errors = family_of(self.implementation), []
        try:
            family.parse_options(self.options)
        except ValidationError as exc:
            errors += [{**err, "loc": ("options", *err["loc"])} for err in exc.errors()]
        try:
            family.weights.choose(self.weights)
        except ValueError as exc:
            errors.append({"loc": ("weights",), "msg": str(exc), "input": sorted(self.weights)})
        return errors

    @field_validator("max_queued_requests")
    @classmethod
    def _queue_cap(cls, value: int) -> int:
        if value == 0:
            raise ValueError("0 is not allowed by Ray Serve: use -1 (no cap) or a positive number")
        return value

    @model_validator(mode="after")
    def _gpu_family(self) -> Serving:
        if self.resources.num_gpus and self.implementation not in GPU_FAMILIES:
            # A reserved GPU nobody uses: on a cluster it holds a GPU pod for a model that runs on CPU.
            raise ValueError(
                f"resources.num_gpus {self.resources.num_gpus}: {self.implementation!r} runs on CPU only (GPU "
                f"families: {', '.join(sorted(GPU_FAMILIES))}); set num_gpus to 0"
            )
        return self

    @model_validator(mode="after")
    def _batch_fits(self) -> Serving:
        if self.max_ongoing_requests < self.batching.max_batch_size:
            # A replica admits at most max_ongoing_requests at once: a larger max_batch_size would never fill.
            raise ValueError(
                f"max_ongoing_requests {self.max_ongoing_requests} < batching.max_batch_size "
                f"{self.batching.max_batch_size}: batches could never fill; raise max_ongoing_requests"
            )
        return self


class Entry(Strict):
    containerId: str = Field(min_length=1, description="original Docker container id")
    tag: str | None = Field(None, description="Docker image tag of the original container")
    name: ModelName = Field(
        description="unique; the URL prefix /<name> and the Serve application name"
    )
    specs: Specs = Specs()
    port: PortNumber = Field(description="host port of the original container ('33100' or 33100)")
    query: Query
    size: Annotated[str | None, BeforeValidator(_size_text, json_schema_input_type=str | SizePair | None)] = Field(
        None, description="image size: ['2.19', 'GB'] as the original wrote it, or '2.19 GB'")
    options: DockerOptions = Field(default_factory=DockerOptions, description="Docker create options")
    needsTraining: bool = False
    description: Description | None = None
    inputs: list[str] = Field(default_factory=list, description="what the model takes, e.g. ['Image', 'Video']")
    serving: Serving | None = Field(None, description="how runway-models serves it; absent: Docker-only")

    @field_validator("port", mode="before", json_schema_input_type=PortNumber | PortText)
    @classmethod
    def _port_text(cls, value: Any) -> Any:
        """The original wrote the port as a string ('33100'); pydantic reads digits as the number."""
        return value

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_NAMES:
            raise ValueError(f"{value!r} is reserved by the catalog app; pick another name")
        return value

    @property
    def unservable_reason(self) -> str | None:
        """Why Ray Serve cannot run this entry, or None when it can: the one rule the runtime's status (GET /)
        and the generator's plan (RayService or Docker-only) share."""
        if self.serving is None:
            if not self.tag:
                return ("Docker-only entry (no serving section) without an image tag: add its image's tag or a "
                        "serving section")
            ports = self.options.container_ports()
            publish = f"{self.port}:{ports[0][0] if ports else self.port}"
            return (f"Docker-only entry: run its image {self.tag} with Docker (docker run -p {publish} {self.tag}, "
                    f"port {self.port}); runway-models serve has no Docker engine (the Helm release deploys it)")
        if not is_built(self.serving.implementation):
            return f"implementation {self.serving.implementation!r} is not built yet"
        return None

    @property
    def gpus_per_replica(self) -> float:
        """GPUs one replica asks for where the cluster has them: `serving.resources.num_gpus` when the entry
        wants a GPU (`specs.gpu`), else 0. The runtime's actor options and the generator's pools read this."""
        if self.serving is None or not self.specs.gpu:
            return 0.0
        return self.serving.resources.num_gpus

    @property
    def http_path(self) -> str:
        return f"/{self.name}{self.query.http.route.rstrip('/') or ''}"

    @property
    def socket_path(self) -> str:
        return f"/{self.name}/socket.io"

    @property
    def route_prefix(self) -> str:
        """Where Serve mounts the model's application: every path of the model starts with it."""
        return f"/{self.name}"

    @property
    def hosted_path(self) -> str:
        return f"{self.route_prefix}{HOSTED_PREFIX}"

    @property
    def v2_path(self) -> str:
        """The Open Inference Protocol's routes that the model's replica answers itself (one hop)."""
        return f"{self.route_prefix}{V2_PATH}"


class Catalog(BaseModel):
    entries: list[Entry]
    base_dir: Path = Field(description="folder relative weight paths start from (the catalog's own)")

    def get(self, name: str) -> Entry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]


def catalog_json_schema() -> dict[str, Any]:
    """The catalog's JSON Schema, for editors and other tools: generated from the pydantic models (validation
    mode, so the original's written forms pass), every `$defs` at the root where its `$ref`s point, and each
    built family's options and weight roles applied where `serving.implementation` names the family."""
    entry = Entry.model_json_schema()
    defs = entry.pop("$defs")
    families = []
    for implementation in IMPLEMENTATIONS:
        if not is_built(implementation):
            continue
        family = family_of(implementation)
        options = family.options.model_json_schema()
        defs.update(options.pop("$defs", {}))
        defs[family.options.__name__] = options
        families.append({
            "if": {"properties": {"implementation": {"const": implementation}}, "required": ["implementation"]},
            "then": {"properties": {"options": {"$ref": f"#/$defs/{family.options.__name__}"},
                                    "weights": family.weights.json_schema()}},
        })
    defs["Serving"]["allOf"] = families
    defs["Entry"] = entry
    entries = {"type": "array", "items": {"$ref": "#/$defs/Entry"}}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "runway-models catalog",
            "description": "models.json: an array of entries (or an object whose `models` is that array)",
            "anyOf": [entries, {"type": "object", "properties": {"models": entries}, "required": ["models"]}],
            "$defs": defs}


class CatalogError(Exception):
    """A catalog that cannot be used; `problems` holds one `entry.field: message` line per error."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n  " + "\n  ".join(problems))


def _where(raw: Any, index: int) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"entry {index} ({name})" if isinstance(name, str) else f"entry {index}"


def _cross_checks(entries: list[Entry]) -> list[str]:
    problems: list[str] = []
    seen: dict[tuple[str, Any], str] = {}
    for entry in entries:
        for field, value in (("name", entry.name), ("port", entry.port), ("query.http.route", entry.http_path),
                             ("socket path", entry.socket_path), ("containerId", entry.containerId)):
            key = ("route" if field == "query.http.route" else field, value)
            if key in seen:
                problems.append(f"{entry.name}.{field}: {value!r} is already used by {seen[key]}")
            else:
                seen[key] = entry.name
    return problems


def resolve_path(raw: str, base: Path) -> Path:
    """Expand ${RUNWAY_SHARED} (default: <base>/../shared) and ~, relative paths from the catalog's folder."""
    env = dict(os.environ)
    env.setdefault("RUNWAY_SHARED", str((base / ".." / "shared").resolve()))
    expanded = re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), m.group(0)), raw)
    path = Path(expanded).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _absent(entry: Entry, base: Path) -> list[tuple[str, WeightsFile, Path]]:
    """(role, file, resolved path) of each weight file whose local `path` is not there and is not downloaded on
    load (a file with a URL fetched at load time is not absent)."""
    if entry.serving is None:
        return []
    absent = []
    for role, weights in entry.serving.weights.items():
        if not weights.path or (weights.url and weights.download_on_load):
            continue
        if not (path := resolve_path(weights.path, base)).is_file():
            absent.append((role, weights, path))
    return absent


def weights_problems(entry: Entry, base: Path) -> list[str]:
    """Missing weight files of one entry that nothing can fetch: the model would fail to load."""
    return [f"{entry.name}.serving.weights.{role}.path: file not found: {path}"
            for role, weights, path in _absent(entry, base) if not weights.url]


def weights_to_fetch(entry: Entry, base: Path) -> list[str]:
    """Absent files the catalog leaves to users (`url` with `download_on_load: false`): not an error of the
    catalog, the model is `not_available` until they are at `path` (serve/weights.py says so at load)."""
    return [f"{entry.name}.serving.weights.{role}: not at {path}; download {weights.url}"
            f"{f' ({weights.size})' if weights.size else ''} there to serve {entry.name}"
            for role, weights, path in _absent(entry, base) if weights.url]


def parse_catalog(raw: Any, source: str = "<catalog>", base: Path | None = None) -> Catalog:
    """Validate a decoded catalog (a JSON array of entries) and raise CatalogError naming every bad field."""
    if isinstance(raw, dict) and isinstance(raw.get("models"), list):
        raw = raw["models"]
    if not isinstance(raw, list):
        raise CatalogError(source, [f"top level: expected a JSON array of entries, got {type(raw).__name__}"])
    entries, problems = [], []
    for index, item in enumerate(raw):
        try:
            entry = Entry.model_validate(item)
        except ValidationError as exc:
            problems += field_problems(exc.errors(), prefix=f"{_where(item, index)}.", empty="(entry)",
                                       show_input=True)
            continue
        family_errors = entry.serving.family_errors() if entry.serving else []
        problems += field_problems(family_errors, prefix=f"{_where(item, index)}.serving.", show_input=True)
        entries.append(entry)
    problems += _cross_checks(entries)
    if problems:
        raise CatalogError(source, problems)
    return Catalog(entries=entries, base_dir=base or Path.cwd())


def load_catalog(path: str | Path, check_weights: bool = False) -> Catalog:
    """Read and validate models.json; with check_weights, missing weight files are errors too (except the ones
    users download themselves: `weights_to_fetch`)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogError(str(path), ["file not found"]) from None
    except json.JSONDecodeError as exc:
        raise CatalogError(str(path), [f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"]) from None
    catalog = parse_catalog(raw, str(path), base=path.resolve().parent)
    if check_weights:
        problems = [p for e in catalog.entries for p in weights_problems(e, catalog.base_dir)]
        if problems:
            raise CatalogError(str(path), problems)
    return catalog
