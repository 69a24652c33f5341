"""Open Inference Protocol (KServe v2, Triton) tensors: the request/response types of the REST spec, tensors from
JSON or binary data (Triton's binary tensor data extension) and back, images from input tensors, and each family's
answer as typed output tensors. Protocol-neutral: HTTP (v2_http) and gRPC (v2_grpc) both use it. No torch.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from serve.errors import BadRequest

#: v2 datatypes and their numpy types; BYTES elements are Python bytes in an object array.
DATATYPES: dict[str, Any] = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
    "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}
#: Input names: encoded images (one element per image) or decoded RGB pixels ([H, W, 3] or [N, H, W, 3]).
IMAGE_INPUT, PIXELS_INPUT = "image", "pixels"
#: Request parameters the server reads; tritonclient's own (binary_data_output) and Triton's scheduling hints are
#: accepted too, so unchanged clients work.
RENDER_PARAMETER = "render"
KNOWN_PARAMETERS = {RENDER_PARAMETER, "binary_data_output", "priority", "timeout", "sequence_id", "sequence_start",
                    "sequence_end", "headers"}


class InvalidTensor(BadRequest):
    """A tensor that does not fit the model's metadata: wrong name, datatype, shape or size."""

    code = "invalid_tensor"


class RequestInput(BaseModel):
    name: str = Field(description="an input named in the model's metadata")
    shape: list[int] = Field(description="dimensions; their product is the number of elements")
    datatype: str = Field(description="a v2 datatype, e.g. BYTES or UINT8")
    parameters: dict[str, Any] | None = Field(None, description="binary_data_size: bytes of this input after "
                                                                "the JSON header")
    data: list[Any] | None = Field(None, description="the elements, row-major (absent when sent as binary)")


class RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = Field(None, description="binary_data: answer this output as binary")


class InferRequest(BaseModel):
    id: str | None = Field(None, max_length=128, description="echoed back in the answer")
    parameters: dict[str, Any] | None = Field(None, description=f"{RENDER_PARAMETER}: also answer the input with "
                                                                "the result drawn; binary_data_output")
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(None, description="the outputs to answer (default: all)")


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")  # "description" is ours; v2 clients ignore unknown keys
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(default_factory=lambda: ["1"])
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2Error(BaseModel):
    error: str = Field(description="what went wrong (the v2 error shape)")


@dataclass
class Tensor:
    name: str
    datatype: str
    array: np.ndarray  # BYTES: an object array of bytes


def tensor(name: str, datatype: str, shape: list[int], data: list[Any] | None, raw: bytes | None) -> Tensor:
    """One input tensor from JSON `data` or binary `raw`, checked against its declared datatype and shape."""
    if datatype not in DATATYPES:
        raise InvalidTensor(f"input {name} has unknown datatype {datatype!r}; use one of {sorted(DATATYPES)}")
    if any(d < 0 for d in shape):
        raise InvalidTensor(f"input {name} has shape {shape}; dimensions must not be negative")
    count = int(np.prod(shape, dtype=np.int64))
    if raw is not None:
        array = deserialize_bytes(raw, name) if datatype == "BYTES" else raw_array(raw, datatype, count, name)
    elif data is not None:
        array = json_array(data, datatype, name)
    else:
        raise InvalidTensor(f"input {name} has neither data nor binary_data_size")
    if array.size != count:
        raise InvalidTensor(f"input {name} has {array.size} elements; its shape {shape} needs {count}")
    return Tensor(name, datatype, array.reshape(shape))


def raw_array(raw: bytes, datatype: str, count: int, name: str) -> np.ndarray:
    dtype = np.dtype(DATATYPES[datatype]).newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise InvalidTensor(f"input {name} has {len(raw)} bytes of {datatype}; {count} elements need "
                            f"{count * dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype)


def json_array(data: list[Any], datatype: str, name: str) -> np.ndarray:
    flat = np.asarray(data, dtype=object).ravel()
    if datatype == "BYTES":
        if not all(isinstance(v, (str, bytes)) for v in flat):
            raise InvalidTensor(f"input {name}: BYTES elements in JSON must be strings")
        return np.array(list(flat), dtype=object)  # text stays text: an image sent in JSON is base64 or a data URI
    try:
        values = np.array(flat.tolist(), dtype=np.float64)
        array = values.astype(DATATYPES[datatype])
    except (TypeError, ValueError):
        raise InvalidTensor(f"input {name}: the {datatype} elements must be numbers") from None
    if not np.array_equal(array.astype(np.float64), values) and datatype not in ("FP16", "FP32", "FP64"):
        raise InvalidTensor(f"input {name}: a value is out of range for {datatype}")
    return array


def deserialize_bytes(raw: bytes, name: str) -> np.ndarray:
    """BYTES binary data: each element a 4-byte little-endian length, then its bytes."""
    elements, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise InvalidTensor(f"input {name}: BYTES data ends inside an element's length")
        (size,) = struct.unpack_from("<I", raw, at)
        if at + 4 + size > len(raw):
            raise InvalidTensor(f"input {name}: a BYTES element of {size} bytes runs past the data")
        elements.append(raw[at + 4:at + 4 + size])
        at += 4 + size
    return np.array(elements or [], dtype=object)


def serialize(array: np.ndarray, datatype: str) -> bytes:
    """A tensor's binary data (the inverse of `tensor(..., raw=...)`)."""
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v)) + v for v in array.ravel())
    return np.ascontiguousarray(array, dtype=np.dtype(DATATYPES[datatype]).newbyteorder("<")).tobytes()


def json_data(array: np.ndarray, datatype: str) -> list[Any]:
    if datatype == "BYTES":
        return [v.decode("utf-8", errors="replace") for v in array.ravel()]
    return array.ravel().tolist()


def images(inputs: list[Tensor]) -> list[bytes | np.ndarray]:
    """The images a request carries: one per `image` element (encoded bytes, or base64 / data-URI text when sent
    in JSON), or one per [H, W, 3] slice of `pixels`."""
    if len(inputs) != 1 or inputs[0].name not in (IMAGE_INPUT, PIXELS_INPUT):
        names = [t.name for t in inputs]
        raise InvalidTensor(f"send exactly one input, {IMAGE_INPUT} (BYTES: encoded images) or {PIXELS_INPUT} "
                            f"(UINT8 [H, W, 3] or [N, H, W, 3]); got {names}")
    (t,) = inputs
    if t.name == IMAGE_INPUT:
        if t.datatype != "BYTES":
            raise InvalidTensor(f"input {IMAGE_INPUT} must be BYTES (encoded images), not {t.datatype}")
        found = list(t.array.ravel())
    else:
        if t.datatype != "UINT8":
            raise InvalidTensor(f"input {PIXELS_INPUT} must be UINT8, not {t.datatype}")
        if t.array.ndim not in (3, 4) or t.array.shape[-1] != 3:
            raise InvalidTensor(f"input {PIXELS_INPUT} must be [H, W, 3] or [N, H, W, 3]; got "
                                f"{list(t.array.shape)}")
        found = list(t.array.reshape((-1, *t.array.shape[-3:])))
    if not found:
        raise InvalidTensor(f"input {t.name} holds no image")
    return found


def _ragged(rows: list[np.ndarray], fill, dtype) -> np.ndarray:
    """Per-image arrays of different lengths -> one [N, longest, ...] array padded with `fill`."""
    longest = max((len(r) for r in rows), default=0)
    tail = next((r.shape[1:] for r in rows if r.ndim > 1), ())
    out = np.full((len(rows), longest, *tail), fill, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _points(keypoints: dict[str, dict], names: tuple[str, ...]) -> np.ndarray:
    """A name -> {x, y, score} map as [K, 3] in `names` order; absent parts are zeros."""
    return np.array([[keypoints[n]["x"], keypoints[n]["y"], keypoints[n]["score"]] if n in keypoints
                     else [0.0, 0.0, 0.0] for n in names], dtype=np.float32).reshape(len(names), 3)


def output_specs(output_type: type[BaseModel] | None, can_render: bool) -> list[TensorMetadata]:
    """The outputs a family answers with, from its answer type: every model has `result` (the answer as JSON);
    detections, poses and captions also come as typed tensors. Leading dimension: one row per input image."""
    fields = output_type.model_fields if output_type else {}
    names = getattr(output_type, "keypoint_names", ())

    def spec(name, datatype, shape, description):
        return TensorMetadata(name=name, datatype=datatype, shape=shape, description=description)

    specs = [spec("result", "BYTES", [-1], "the whole answer as JSON, as the native route's `result`")]
    if "detections" in fields:
        specs += [spec("boxes", "FP32", [-1, -1, 4], "x1, y1, x2, y2 in input pixels, best first"),
                  spec("scores", "FP32", [-1, -1], "confidence per box (padding: 0)"),
                  spec("class_ids", "INT32", [-1, -1], "class index per box (padding: -1)"),
                  spec("labels", "BYTES", [-1, -1], "class name per box (padding: empty)"),
                  spec("num_detections", "INT32", [-1], "boxes found per image")]
    if "people" in fields and names:
        specs += [spec("keypoints", "FP32", [-1, -1, len(names), 3],
                       f"x, y, score per person and part ({', '.join(names)}); absent parts are 0"),
                  spec("person_scores", "FP32", [-1, -1], "score per person"),
                  spec("num_people", "INT32", [-1], "people found per image")]
    elif "keypoints" in fields and names:
        specs += [spec("keypoints", "FP32", [-1, len(names), 3], f"x, y, score per part ({', '.join(names)})")]
    if "captions" in fields:
        specs += [spec("captions", "BYTES", [-1, -1], "captions, best first"),
                  spec("caption_log_probs", "FP32", [-1, -1], "log-probability per caption")]
    if can_render:
        specs.append(spec("rendered", "BYTES", [-1], f"with parameter {RENDER_PARAMETER}: the input with the "
                                                     "answer drawn, JPEG"))
    return specs


def output_tensors(answers: list[BaseModel], output_type: type[BaseModel], drawn: list[bytes] | None) -> list[Tensor]:
    """The answers to a request's images as the tensors `output_specs` describes."""
    dumps = [a.model_dump(mode="json") for a in answers]
    fields, names = output_type.model_fields, getattr(output_type, "keypoint_names", ())
    out = [Tensor("result", "BYTES", np.array([json.dumps(d).encode() for d in dumps], dtype=object))]
    if "detections" in fields:
        dets = [d["detections"] for d in dumps]
        boxes = [np.array([[x["box"][k] for k in ("x1", "y1", "x2", "y2")] for x in ds], np.float32).reshape(-1, 4)
                 for ds in dets]
        out += [Tensor("boxes", "FP32", _ragged(boxes, 0.0, np.float32)),
                Tensor("scores", "FP32", _ragged([np.array([x["score"] for x in ds]) for ds in dets], 0.0, np.float32)),
                Tensor("class_ids", "INT32", _ragged([np.array([x["class_id"] for x in ds]) for ds in dets], -1,
                                                     np.int32)),
                Tensor("labels", "BYTES", _ragged([np.array([x["label"].encode() for x in ds], object) for ds in dets],
                                                  b"", object)),
                Tensor("num_detections", "INT32", np.array([len(ds) for ds in dets], np.int32))]
    if "people" in fields and names:
        people = [d["people"] for d in dumps]
        points = [np.array([_points(p["keypoints"], names) for p in ps], np.float32).reshape(-1, len(names), 3)
                  for ps in people]
        out += [Tensor("keypoints", "FP32", _ragged(points, 0.0, np.float32)),
                Tensor("person_scores", "FP32", _ragged([np.array([p["score"] for p in ps]) for ps in people], 0.0,
                                                        np.float32)),
                Tensor("num_people", "INT32", np.array([len(ps) for ps in people], np.int32))]
    elif "keypoints" in fields and names:
        out.append(Tensor("keypoints", "FP32", np.stack([_points(d["keypoints"], names) for d in dumps])))
    if "captions" in fields:
        caps = [d["captions"] for d in dumps]
        out += [Tensor("captions", "BYTES", _ragged([np.array([c["text"].encode() for c in cs], object) for cs in caps],
                                                    b"", object)),
                Tensor("caption_log_probs", "FP32", _ragged([np.array([c["log_prob"] for c in cs]) for cs in caps],
                                                            0.0, np.float32))]
    if drawn is not None:
        out.append(Tensor("rendered", "BYTES", np.array(drawn, dtype=object)))
    return out


def pick(tensors: list[Tensor], wanted: list[str] | None, known: list[str]) -> list[Tensor]:
    """The outputs a request asked for (all when it named none); a name the model does not answer is an error."""
    if not wanted:
        return tensors
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise InvalidTensor(f"unknown output(s) {unknown}; this model answers {known}")
    by_name = {t.name: t for t in tensors}
    return [by_name[w] for w in wanted if w in by_name]


def check_parameters(parameters: dict[str, Any] | None) -> bool:
    """The request's `render` flag; unknown parameters are refused so a misspelled option is not ignored."""
    parameters = parameters or {}
    unknown = sorted(set(parameters) - KNOWN_PARAMETERS)
    if unknown:
        raise InvalidTensor(f"unknown parameter(s) {unknown}; this server reads {RENDER_PARAMETER!r}")
    render = parameters.get(RENDER_PARAMETER, False)
    if not isinstance(render, bool):
        raise InvalidTensor(f"parameter {RENDER_PARAMETER} must be a boolean, not {render!r:.40}")
    return render
