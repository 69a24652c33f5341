"""A writer of Torch7's binary serialization (what `torch.save(path, obj)` writes on a 64-bit machine), for
tests that need checkpoints in the released format without the released files.

The layout, from torch7's File.lua and generic/Tensor.c / Storage.c: every value is an int32 type tag, then
nil: nothing; number: float64; string: int32 length + bytes; boolean: int32; table: int32 reference index,
int32 pair count, key and value objects; torch object: int32 reference index, the version string "V 1", the
class name string, then the class's own payload: a tensor writes int32 ndim, int64 sizes, int64 strides,
int64 1-based storage offset and its storage object; a storage int64 element count and the raw elements; any
other class (nn modules) its field table as one more object. An object met again is written as its tag and
reference index only, as torch shares references.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

NIL, NUMBER, STRING, TABLE, TORCH, BOOLEAN = 0, 1, 2, 3, 4, 5
TENSOR_CLASSES = {np.dtype(np.float32): "Float", np.dtype(np.float64): "Double", np.dtype(np.int64): "Long",
                  np.dtype(np.int32): "Int", np.dtype(np.uint8): "Byte"}


@dataclass(eq=False)
class TorchClass:
    """An instance of a Lua torch class (e.g. nn.Linear) with its fields."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Storage:
    """A bare torch.*Storage (e.g. nn.View's size, a LongStorage)."""

    data: np.ndarray


class T7Writer:
    def __init__(self, out: BinaryIO):
        self.out = out
        self.refs: dict[int, int] = {}
        self.keep: list[Any] = []  # keeps ids stable while writing

    def int(self, value: int) -> None:
        self.out.write(struct.pack("<i", value))

    def long(self, value: int) -> None:
        self.out.write(struct.pack("<q", value))

    def string(self, value: str | bytes) -> None:
        raw = value.encode() if isinstance(value, str) else value
        self.int(len(raw))
        self.out.write(raw)

    def reference(self, obj: Any, tag: int) -> bool:
        """Write the tag and reference index; True when the object was written before (nothing more to do)."""
        self.int(tag)
        seen = id(obj) in self.refs
        if not seen:
            self.refs[id(obj)] = len(self.refs) + 1
            self.keep.append(obj)
        self.int(self.refs[id(obj)])
        return seen

    def header(self, class_name: str) -> None:
        self.string("V 1")
        self.string(class_name)

    def obj(self, value: Any) -> None:
        if value is None:
            self.int(NIL)
        elif isinstance(value, bool):
            self.int(BOOLEAN)
            self.int(int(value))
        elif isinstance(value, (int, float, np.integer, np.floating)):
            self.int(NUMBER)
            self.out.write(struct.pack("<d", float(value)))
        elif isinstance(value, (str, bytes)):
            self.int(STRING)
            self.string(value)
        elif isinstance(value, np.ndarray):
            self.tensor(value)
        elif isinstance(value, Storage):
            if not self.reference(value, TORCH):
                self.header(f"torch.{TENSOR_CLASSES[value.data.dtype]}Storage")
                self.storage_payload(value.data)
        elif isinstance(value, TorchClass):
            if not self.reference(value, TORCH):
                self.header(value.name)
                self.obj(dict(value.fields))  # torch writes a copy of the instance's table
        elif isinstance(value, (dict, list)):
            if not self.reference(value, TABLE):
                pairs = list(value.items()) if isinstance(value, dict) else list(enumerate(value, 1))
                self.int(len(pairs))
                for k, v in pairs:
                    self.obj(k)
                    self.obj(v)
        else:
            raise TypeError(f"cannot write {type(value).__name__} in Torch7 format")

    def storage_payload(self, data: np.ndarray) -> None:
        flat = np.ascontiguousarray(data).reshape(-1)
        self.long(flat.size)
        self.out.write(flat.astype(flat.dtype.newbyteorder("<"), copy=False).tobytes())

    def tensor(self, array: np.ndarray) -> None:
        if self.reference(array, TORCH):
            return
        kind = TENSOR_CLASSES[array.dtype]
        self.header(f"torch.{kind}Tensor")
        self.int(array.ndim if array.size else 0)
        if not array.size:  # an empty tensor: no sizes, no storage
            self.long(1)
            self.int(NIL)
            return
        contiguous = np.ascontiguousarray(array)
        for size in contiguous.shape:
            self.long(size)
        for stride in contiguous.strides:
            self.long(stride // contiguous.itemsize)
        self.long(1)
        storage = Storage(contiguous)
        self.reference(storage, TORCH)
        self.header(f"torch.{kind}Storage")
        self.storage_payload(contiguous)


def save_t7(path: str | Path, obj: Any) -> None:
    """torch.save(path, obj) in the binary format."""
    with open(path, "wb") as out:
        T7Writer(out).obj(obj)
