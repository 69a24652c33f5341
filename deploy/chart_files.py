"""The chart's `values.yaml` and `values.schema.json`, generated from `settings.Settings` so the chart and the
generator cannot drift apart: `python -m deploy.chart_files [CHART_DIR]` rewrites them; a test fails when
the committed files differ from what this module produces."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from deploy.settings import Settings

from deploy.chart import CHART_DIR
VALUES_HEADER = """\
# Default values for runway-models (a KubeRay RayService serving the catalog's vision models).
#
# GENERATED from deploy/settings.py by `python -m deploy.chart_files`: edit the settings model, not
# this file. Keys marked "generated" are computed from models.json by
#   runway-models generate models.json --target helm-values --out build/
# and installed with `helm install runway-models deploy/helm/runway-models -f build/helm-values.yaml`.
# Without them the chart deploys the catalog app only.
"""


def _scalar_block(key: str, value: Any, indent: int) -> str:
    text = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False, width=120)
    pad = " " * indent
    return "".join(pad + line + "\n" for line in text.splitlines())


def _model_block(model: BaseModel, indent: int) -> str:
    out = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        description = (info.description or name).replace("\n", " ")
        out.append(" " * indent + f"# -- {description}\n")
        if isinstance(value, BaseModel):
            out.append(" " * indent + f"{name}:\n")
            out.append(_model_block(value, indent + 2))
        else:
            dumped = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            if isinstance(dumped, list):
                dumped = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in dumped]
            out.append(_scalar_block(name, dumped, indent))
        if indent == 0:
            out.append("\n")
    return "".join(out)


def values_yaml() -> str:
    return VALUES_HEADER + "\n" + _model_block(Settings(), 0).rstrip("\n") + "\n"


def _convert(node: Any, defs: dict[str, Any], from_model: bool = False, merged_defaults: bool = True) -> Any:
    """Pydantic's JSON Schema as the chart's: no titles or defaults, `$ref`s inlined, unknown keys rejected.
    `merged_defaults`: Helm merges the chart's defaults into this map (not so for the items of a list)."""
    if isinstance(node, list):
        return [_convert(item, defs, merged_defaults=merged_defaults) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**_convert(target, defs, from_model=True, merged_defaults=merged_defaults)}
        if "description" in node:
            merged["description"] = node["description"]
        return merged
    out = {}
    for key, value in node.items():
        if key in ("title", "default"):
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs, merged_defaults=merged_defaults) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, merged_defaults=False)
        else:
            out[key] = _convert(value, defs, merged_defaults=merged_defaults)
    if from_model and "properties" in out:
        if merged_defaults:
            # Every key is present once Helm merges the defaults: a key set to null must fail.
            out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


def values_schema() -> dict[str, Any]:
    raw = Settings.model_json_schema(mode="validation")
    defs = raw.pop("$defs", {})
    schema = _convert(raw, defs, from_model=True)
    return {"$schema": "http://json-schema.org/draft-07/schema#", "title": "runway-models chart values", **schema}


def schema_json() -> str:
    return json.dumps(values_schema(), indent=2) + "\n"


def write(chart_dir: Path = CHART_DIR) -> list[Path]:
    files = {chart_dir / "values.yaml": values_yaml(), chart_dir / "values.schema.json": schema_json()}
    for path, text in files.items():
        path.write_text(text)
    return list(files)


if __name__ == "__main__":
    for written in write(Path(sys.argv[1]) if len(sys.argv) > 1 else CHART_DIR):
        print(written)
