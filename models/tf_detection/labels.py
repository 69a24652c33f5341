"""Label maps of the TF Object Detection API.

- `.pbtxt`: StringIntLabelMap text protos, `item { id: 1 name: "/m/01g317" display_name: "person" }` (ids are
  the class ids the SavedModel / frozen graph exporters emit; keypoint sub-blocks and comments are allowed).
- `.txt`: one label per line, the line number is the key (the TFLite example apps' `labelmap.txt`).

A detector's raw class index maps to a key by adding `offset`: TFLite_Detection_PostProcess emits 0-based
indices (so offset 1 into a 1-based map, or into a `.txt` whose line 0 is the `???` background), while the
SavedModel and frozen-graph exporters emit the 1-based ids themselves (offset 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_TOKEN = re.compile(r'\s+|#[^\n]*|"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|([{}:])|([^\s{}:#"\']+)')


def _tokens(text: str):
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ValueError(f"label map: cannot parse near {text[pos:pos + 30]!r}")
        pos = match.end()
        double, single, punct, bare = match.groups()
        if double is not None or single is not None:
            text_value = double if double is not None else single
            yield "str", re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text_value)
        elif punct or bare:
            yield ("punct" if punct else "bare"), punct or bare


def _parse_block(tokens, closing: bool) -> list[tuple[str, object]]:
    """Fields of one message as (key, value) pairs; nested messages become lists of pairs."""
    fields: list[tuple[str, object]] = []
    for kind, value in tokens:
        if kind == "punct" and value == "}":
            if closing:
                return fields
            raise ValueError("label map: unexpected '}'")
        if kind != "bare":
            raise ValueError(f"label map: expected a field name, got {value!r}")
        key = value
        kind, value = next(tokens, ("eof", None))
        if kind == "punct" and value == ":":
            kind, value = next(tokens, ("eof", None))
        if kind == "punct" and value == "{":
            fields.append((key, _parse_block(tokens, closing=True)))
        elif kind in ("str", "bare"):
            fields.append((key, value))
        else:
            raise ValueError(f"label map: field {key!r} has no value")
    if closing:
        raise ValueError("label map: missing '}'")
    return fields


def parse_pbtxt(text: str, field: str = "display_name") -> dict[int, str]:
    """`item { ... }` blocks -> {id: label}; the label is `field` if present, else `name`."""
    labels: dict[int, str] = {}
    for key, item in _parse_block(_tokens(text), closing=False):
        if key != "item" or not isinstance(item, list):
            continue
        values = {k: v for k, v in item if isinstance(v, str)}
        if "id" not in values:
            raise ValueError(f"label map: item without an id: {values}")
        label = values.get(field, values.get("name"))
        if label is None:
            raise ValueError(f"label map: item {values['id']} has neither {field!r} nor 'name'")
        labels[int(values["id"])] = label
    return labels


def parse_txt(text: str) -> dict[int, str]:
    """One label per line, keyed by line number (blank lines keep their number but carry no label)."""
    return {i: line.strip() for i, line in enumerate(text.splitlines()) if line.strip()}


@dataclass(frozen=True)
class LabelMap:
    labels: dict[int, str]
    offset: int = 0

    @classmethod
    def read(cls, path: Path, offset: int = 0, field: str = "display_name") -> LabelMap:
        text = Path(path).read_text(encoding="utf-8")
        labels = parse_pbtxt(text, field) if Path(path).suffix == ".pbtxt" else parse_txt(text)
        return cls(labels, offset)

    def key(self, raw_class: float) -> int:
        return int(round(raw_class)) + self.offset

    def name(self, raw_class: float) -> str:
        """Label of a detector's raw class value; an id the map lacks reads `class_<id>` rather than failing."""
        key = self.key(raw_class)
        return self.labels.get(key, f"class_{key}")
