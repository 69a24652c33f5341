"""On a CUDA machine: the torch families give the CPU's answers on the GPU, batched. Skipped without CUDA
(no GPU on the development machines; run `pytest -m gpu` where one is lent)."""

from __future__ import annotations

import pytest
import torch

from models.yolo.model import YoloModel
from serve.model import ModelSpec

pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def yolo(shared, device: str) -> YoloModel:
    folder = shared / "weights/yolo"
    spec = ModelSpec("yolo", weights={"cfg": folder / "yolo-fastest-1.1-xl.cfg",
                                      "weights": folder / "yolo-fastest-1.1-xl.weights",
                                      "names": folder / "coco.names"}, device=device)
    model = YoloModel(spec)
    model.load()
    return model


def test_yolo_on_cuda_matches_cpu_batched(shared, photo):
    images = [photo(name) for name in ("astronaut", "chelsea", "coffee", "dog.jpg")] * 2
    cpu, gpu = yolo(shared, "cpu").infer(images), yolo(shared, "cuda").infer(images)
    for on_cpu, on_gpu in zip(cpu, gpu):
        assert [d.label for d in on_cpu.detections] == [d.label for d in on_gpu.detections]
        for a, b in zip(on_cpu.detections, on_gpu.detections):
            assert abs(a.score - b.score) < 0.01
            assert abs(a.box.x1 - b.box.x1) < 1.0 and abs(a.box.y2 - b.box.y2) < 1.0


def test_densecap_on_cuda_matches_cpu_batched(tmp_path, photo):
    from models.densecap.model import DenseCapModel
    from tests.models.densecap_files import write_checkpoint

    write_checkpoint(tmp_path / "densecap.t7", caption=["a", "dog", "on", "the", "grass"])
    images = [photo(name) for name in ("dog.jpg", "chelsea")] * 2
    answers = {}
    for device in ("cpu", "cuda"):
        model = DenseCapModel(ModelSpec("densecap", weights={"checkpoint": tmp_path / "densecap.t7"}, device=device))
        model.load()
        answers[device] = model.infer(images)
    for on_cpu, on_gpu in zip(answers["cpu"], answers["cuda"]):
        assert [r.caption for r in on_cpu.regions] == [r.caption for r in on_gpu.regions]
        for a, b in zip(on_cpu.regions, on_gpu.regions):
            assert abs(a.score - b.score) < 0.05 and abs(a.box.x1 - b.box.x1) < 1.0
