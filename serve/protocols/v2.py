"""The Open Inference Protocol's data plane for one model replica, shared by its REST (v2_http) and gRPC (v2_grpc)
bindings: metadata, readiness and inference on typed tensors. It calls the same ModelRunner as the native route,
so limits, errors, admission, batching and metrics are the native route's (transport label `v2` / `v2_grpc`)."""

from __future__ import annotations

import asyncio

from serve import __version__
from serve.catalog import Entry
from serve.codecs import encode_bytes
from serve.errors import NotFound
from serve.protocols.v2_tensors import (IMAGE_INPUT, PIXELS_INPUT, ModelMetadata, ServerMetadata, Tensor,
                                        TensorMetadata, check_parameters, images, output_specs, output_tensors, pick)

SERVER_NAME = "runway-models"
#: Triton's extension names for what this server implements (tritonclient reads them from server metadata).
EXTENSIONS = ["binary_tensor_data", "parameters"]
#: The one model version each model has; URLs with `/versions/<v>` must name it.
VERSION = "1"


def server_metadata() -> ServerMetadata:
    return ServerMetadata(name=SERVER_NAME, version=__version__, extensions=EXTENSIONS)


class V2Model:
    """One model's v2 endpoints over its ModelRunner."""

    def __init__(self, entry: Entry, runner):
        self.entry, self.runner = entry, runner

    def check(self, name: str, version: str | None = None) -> None:
        """A request names the model (and version) it wants: refuse any other, as a Triton server would."""
        if name != self.entry.name:
            raise NotFound(f"this replica serves model {self.entry.name!r}, not {name!r}")
        if version not in (None, "", VERSION):
            raise NotFound(f"model {name} has version {VERSION} only, not {version!r}")

    def ready(self) -> bool:
        return self.runner.model is not None

    def metadata(self) -> ModelMetadata:
        model = self.runner.model
        inputs = [TensorMetadata(name=IMAGE_INPUT, datatype="BYTES", shape=[-1],
                                 description="encoded images (JPEG, PNG, ...), one element per image"),
                  TensorMetadata(name=PIXELS_INPUT, datatype="UINT8", shape=[-1, -1, -1, 3],
                                 description="decoded RGB images, [N, H, W, 3] (or [H, W, 3]); send one of the two")]
        outputs = output_specs(self.runner.output_type, bool(model and model.can_render))
        return ModelMetadata(name=self.entry.name, versions=[VERSION], platform=self.entry.serving.implementation,
                             inputs=inputs, outputs=outputs)

    async def infer(self, inputs: list[Tensor], wanted: list[str] | None, parameters: dict | None,
                    transport: str) -> list[Tensor]:
        """Run every image the inputs carry (they share batches like concurrent requests) and answer tensors."""
        render = check_parameters(parameters)
        known = [spec.name for spec in self.metadata().outputs]
        pick([], wanted, known)  # refuse unknown output names before running the model
        answers = await asyncio.gather(*(self.runner.run(image, render, transport) for image in images(inputs)))
        drawn = None
        if render:
            drawn = await asyncio.to_thread(lambda: [encode_bytes(a.drawn) for a in answers])
        return pick(output_tensors([a.result for a in answers], self.runner.output_type, drawn), wanted, known)
