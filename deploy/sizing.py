"""How many worker pods a pool needs for a set of replicas: first-fit-decreasing bin packing on CPU, GPU, memory.

Ray places each replica whole on one node, so the count is a packing, not a division. KubeRay gives a pod as many
Ray CPUs as its CPU limit rounded up, as many GPUs as its GPU limit, and its memory limit as Ray memory.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Demand:
    """One replica's Ray resources; `owner` names it in error messages."""

    owner: str
    cpus: float
    gpus: float = 0.0
    memory: int = 0


@dataclass(frozen=True)
class Capacity:
    cpus: int
    gpus: int = 0
    memory: int | None = None  # None: not limited

    def fits(self, used: tuple[float, float, int], item: Demand) -> bool:
        eps = 1e-9
        return (used[0] + item.cpus <= self.cpus + eps and used[1] + item.gpus <= self.gpus + eps
                and (self.memory is None or used[2] + item.memory <= self.memory))

    def share(self, item: Demand) -> float:
        parts = [item.cpus / self.cpus if self.cpus else 0.0, item.gpus / self.gpus if self.gpus else 0.0]
        if self.memory:
            parts.append(item.memory / self.memory)
        return max(parts)


def pods_needed(items: list[Demand], capacity: Capacity) -> int:
    """Pods a first-fit-decreasing packing uses; every item must fit an empty pod (check with `fits`)."""
    bins: list[tuple[float, float, int]] = []
    for item in sorted(items, key=lambda d: (-capacity.share(d), d.owner)):
        for index, used in enumerate(bins):
            if capacity.fits(used, item):
                bins[index] = (used[0] + item.cpus, used[1] + item.gpus, used[2] + item.memory)
                break
        else:
            bins.append((item.cpus, item.gpus, item.memory))
    return len(bins)
