"""The torch device of a replica, for the families that run on torch (YOLO, im2txt)."""

from __future__ import annotations

import torch


def torch_device(model: str, device: str) -> torch.device:
    """`device` as given by the runtime ("cpu" or "cuda"); "cuda" without CUDA is an error, not a silent CPU
    run that would be far slower than what the deployment asked for."""
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{model}: device 'cuda' requested but CUDA is not available")
    return torch.device(device)
