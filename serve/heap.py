"""Giving memory back after a burst. A replica under overload decodes dozens of images at once (a 768x576 photo is
1.3 MB of pixels, its request body 219 KB) and glibc keeps what they freed: measured on yolo at 64 clients, replica
RSS 390 -> 1,100 MiB, all of it kept after the load. Two remedies, both cheap on the hot path:

- MALLOC_ARENA_MAX: glibc gives each thread that allocates concurrently its own arena (up to 8 per core), and each
  keeps its freed memory; Ray replicas run dozens of threads. Two arenas: 1,100 -> 840 MiB after the same load.
  It must be in the environment a process starts with, so `runway-models serve` sets it before Ray starts (every
  raylet worker inherits it) and the chart's Ray containers carry it (a test keeps the two equal).
- malloc_trim(0) once a burst is over (nothing in flight): returns the arenas' free pages to the system.
  Fixing MALLOC_MMAP_THRESHOLD_ instead bounded memory as well, but made every large tensor an mmap and YOLO
  3-4x slower, so it was not kept.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

#: The allocator settings every Ray process of ours starts with.
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2"}


def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class HeapTrimmer:
    """Calls malloc_trim(0) when a burst ends, at most once every `min_interval_s` (a trim of a large heap takes a
    few milliseconds and locks the allocator meanwhile, so not after every request of a steady trickle)."""

    def __init__(self, min_interval_s: float = 2.0):
        self.min_interval_s = min_interval_s
        self.trim = _malloc_trim()
        self.last = 0.0
        self.trims = 0

    def claim(self) -> bool:
        """Whether a trim is due; if so it is the caller's to run (`run`), and the next is due `min_interval_s`
        from now. Called on the event loop, so two callers cannot both claim one trim."""
        now = time.monotonic()
        if self.trim is None or now - self.last < self.min_interval_s:
            return False
        self.last = now
        return True

    def run(self) -> None:
        """The claimed trim; in a worker thread (it takes milliseconds)."""
        self.trim(0)
        self.trims += 1
