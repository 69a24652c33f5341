"""Open Inference Protocol over gRPC: `inference.GRPCInferenceService`, with the service definitions tritonclient
ships (`tritonclient.grpc.service_pb2`), served through Ray Serve's own gRPC proxy (`serve.start(grpc_options=)`).

Serve's proxy picks the application by the `application` call metadata, so a tritonclient user sends the model's
name with every call: `client.infer("yolo", inputs, headers={"application": "yolo"})`. Each model's replica
answers every method for its model; the catalog app (`application: catalog`) answers the server-wide ones for the
whole server. tritonclient is imported only when a gRPC call arrives, so HTTP-only servers do not need it.
"""

from __future__ import annotations

import logging
import sys

from serve.errors import NotFound, ServeError
from serve.protocols.v2 import VERSION, server_metadata
from serve.protocols.v2_tensors import Tensor, serialize, tensor

logger = logging.getLogger("runway_models")
#: What `gRPCOptions.grpc_servicer_functions` names: Serve's proxy imports and calls it before it serves.
SERVICER_FUNCTION = "serve.protocols.v2_grpc.add_servicer"
#: The gRPC service (the .proto's package and service): its methods are `/<GRPC_SERVICE>/<Method>`, the path
#: ingresses route.
GRPC_SERVICE = "inference.GRPCInferenceService"
#: The port the chart's gRPC proxies listen on by default: Ray Serve's own default (gRPCOptions.port).
DEFAULT_GRPC_PORT = 9000
#: The call metadata key Serve's gRPC proxy routes by.
APPLICATION_METADATA = "application"
#: InferTensorContents' field per datatype, for inputs sent as typed contents instead of raw bytes.
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
            "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
            "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
            "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def importable_messages() -> None:
    """tritonclient's generated messages say they live in module `grpc_service_pb2` (the .proto's name), which
    does not import, and Serve pickles each request from its proxy to the replica: alias the module, in the proxy
    (add_servicer) and in every replica (its constructor). Without tritonclient (no gRPC) there is nothing to do."""
    try:
        from tritonclient.grpc import service_pb2
    except ImportError:
        return
    sys.modules.setdefault(service_pb2.ServerLiveRequest.__module__, service_pb2)


def add_servicer(servicer, server) -> None:
    """The servicer registration of tritonclient's stubs, with its messages made picklable first."""
    from tritonclient.grpc.service_pb2_grpc import add_GRPCInferenceServiceServicer_to_server

    importable_messages()
    add_GRPCInferenceServiceServicer_to_server(servicer, server)


def pb():
    from tritonclient.grpc import service_pb2

    return service_pb2


def status_code(error: ServeError):
    import grpc

    return {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
            408: grpc.StatusCode.DEADLINE_EXCEEDED, 413: grpc.StatusCode.INVALID_ARGUMENT,
            415: grpc.StatusCode.INVALID_ARGUMENT, 422: grpc.StatusCode.INVALID_ARGUMENT,
            503: grpc.StatusCode.UNAVAILABLE}.get(error.status, grpc.StatusCode.INTERNAL)


def fail(error: Exception, grpc_context) -> None:
    """Raise `error` as a gRPC status: the ServeError's status mapped, its detail as the message."""
    if not isinstance(error, ServeError):
        logger.exception("unhandled gRPC error", exc_info=error)
        error = ServeError("internal error; see the server log")
    if grpc_context is not None:
        grpc_context.set_code(status_code(error))
        grpc_context.set_details(error.detail)
    raise error


def parameters(params) -> dict:
    return {key: getattr(value, value.WhichOneof("parameter_choice")) for key, value in params.items()
            if value.WhichOneof("parameter_choice")}


def input_tensors(request) -> list[Tensor]:
    raws = list(request.raw_input_contents)
    tensors = []
    for i, given in enumerate(request.inputs):
        shape = list(given.shape)
        if raws:
            raw = raws[i] if i < len(raws) else b""
            tensors.append(tensor(given.name, given.datatype, shape, None, raw))
        else:
            field = CONTENTS.get(given.datatype)
            data = list(getattr(given.contents, field)) if field else None
            tensors.append(tensor(given.name, given.datatype, shape, data, None))
    return tensors


def infer_response(model: str, request_id: str, outputs: list[Tensor]):
    service = pb()
    response = service.ModelInferResponse(model_name=model, model_version=VERSION, id=request_id)
    for t in outputs:
        response.outputs.append(service.ModelInferResponse.InferOutputTensor(
            name=t.name, datatype=t.datatype, shape=list(t.array.shape)))
        response.raw_output_contents.append(serialize(t.array, t.datatype))
    return response


def model_metadata_response(metadata):
    service = pb()
    tensors = service.ModelMetadataResponse.TensorMetadata
    return service.ModelMetadataResponse(
        name=metadata.name, versions=metadata.versions, platform=metadata.platform,
        inputs=[tensors(name=t.name, datatype=t.datatype, shape=t.shape) for t in metadata.inputs],
        outputs=[tensors(name=t.name, datatype=t.datatype, shape=t.shape) for t in metadata.outputs])


def server_metadata_response():
    meta = server_metadata()
    return pb().ServerMetadataResponse(name=meta.name, version=meta.version, extensions=meta.extensions)


class GRPCInference:
    """The service's methods on a model's Serve deployment (`self.v2`: its V2Model). Serve's gRPC proxy calls the
    method named like the RPC, with the request message and, by that parameter name, `grpc_context`."""

    async def ServerLive(self, request, grpc_context=None):
        return pb().ServerLiveResponse(live=True)

    async def ServerReady(self, request, grpc_context=None):
        return pb().ServerReadyResponse(ready=self.v2.ready())

    async def ServerMetadata(self, request, grpc_context=None):
        return server_metadata_response()

    async def ModelReady(self, request, grpc_context=None):
        try:
            self.v2.check(request.name, request.version)
            return pb().ModelReadyResponse(ready=self.v2.ready())
        except Exception as exc:
            fail(exc, grpc_context)

    async def ModelMetadata(self, request, grpc_context=None):
        try:
            self.v2.check(request.name, request.version)
            return model_metadata_response(self.v2.metadata())
        except Exception as exc:
            fail(exc, grpc_context)

    async def ModelInfer(self, request, grpc_context=None):
        try:
            self.v2.check(request.model_name, request.model_version)
            outputs = await self.v2.infer(input_tensors(request), [o.name for o in request.outputs],
                                          parameters(request.parameters), "v2_grpc")
            return infer_response(request.model_name, request.id, outputs)
        except Exception as exc:
            fail(exc, grpc_context)


class GRPCServerWide:
    """The server-wide methods on the catalog app (`self.all_ready()`: every deployed model loaded); model calls
    sent to it are refused with what to send instead."""

    async def ServerLive(self, request, grpc_context=None):
        return pb().ServerLiveResponse(live=True)

    async def ServerReady(self, request, grpc_context=None):
        return pb().ServerReadyResponse(ready=await self.all_ready())

    async def ServerMetadata(self, request, grpc_context=None):
        return server_metadata_response()

    async def _model_call(self, name: str, grpc_context):
        fail(NotFound(f"send model calls to the model's application: metadata "
                      f"{APPLICATION_METADATA}={name or '<model name>'}"), grpc_context)

    async def ModelReady(self, request, grpc_context=None):
        await self._model_call(request.name, grpc_context)

    async def ModelMetadata(self, request, grpc_context=None):
        await self._model_call(request.name, grpc_context)

    async def ModelInfer(self, request, grpc_context=None):
        await self._model_call(request.model_name, grpc_context)

