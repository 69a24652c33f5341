"""Whether this process can run torch on CUDA: the one check the replica's device choice (serve/app.py) and the
profiler (serve/profile.py) share. torch is imported only when asked, so TensorFlow-only callers never load it."""

from __future__ import annotations


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
