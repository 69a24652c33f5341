"""Validate custom resources the way the API server would, offline: a CRD's `openAPIV3Schema` turned into a strict
JSON Schema (unknown fields rejected, as the server's pruning would silently drop them), defaults applied first,
and the list-map/list-set uniqueness the server enforces.

Not covered: CEL rules (`x-kubernetes-validations`); the ones that matter for our objects are checked in
`validate.kuberay_rules`.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from serve.errors import location

_INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_STRUCTURAL = ("properties", "additionalProperties", "items", "allOf", "anyOf", "oneOf", "not")


def _loader() -> type:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=8)
def load_crd(path: str) -> dict[str, Any]:
    with open(path) as handle:
        docs = [d for d in yaml.load_all(handle, Loader=_loader()) if d]
    crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
    if len(crds) != 1:
        raise ValueError(f"{path}: expected one CustomResourceDefinition, found {len(crds)}")
    return crds[0]


def version_schema(crd: dict[str, Any], version: str) -> dict[str, Any]:
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            return entry["schema"]["openAPIV3Schema"]
    raise KeyError(f"{crd['metadata']['name']} has no version {version}")


def to_json_schema(node: dict[str, Any], top: bool = True) -> dict[str, Any]:
    """OpenAPI v3 (Kubernetes flavour) to a strict JSON Schema."""
    out: dict[str, Any] = {}
    preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
    for key, value in node.items():
        if key in ("description", "example", "externalDocs") or key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub, top=False) for name, sub in value.items()}
            if top:
                # metadata is ObjectMeta: checked on its own against Kubernetes' schema (see validate.py).
                out[key]["metadata"] = {"type": "object"}
        elif key in ("additionalProperties", "items", "not") and isinstance(value, dict):
            out[key] = to_json_schema(value, top=False)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(sub, top=False) for sub in value]
        elif key == "nullable":
            continue
        else:
            out[key] = copy.deepcopy(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.get("type") == "integer" and node.get("format") in _INT_BOUNDS:
        low, high = _INT_BOUNDS[node["format"]]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    if out.get("type") == "object" and "additionalProperties" not in out and not preserve:
        # An object field with no schema for extra keys: the server prunes unknown keys; we reject them.
        out["additionalProperties"] = False
    out.pop("format", None)
    return out


def apply_defaults(schema: dict[str, Any], instance: Any) -> Any:
    """Fill in `default`s where the server would (missing fields of objects that are present), in place."""
    if isinstance(instance, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in instance and "default" in sub:
                instance[name] = copy.deepcopy(sub["default"])
            if name in instance:
                apply_defaults(sub, instance[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, value in instance.items():
                if name not in schema.get("properties", {}):
                    apply_defaults(extra, value)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            apply_defaults(schema["items"], item)
    return instance


def list_problems(schema: dict[str, Any], instance: Any, path: str = "") -> list[str]:
    """Duplicate keys in `x-kubernetes-list-type: map` lists and duplicate items in `set` lists."""
    problems: list[str] = []
    if isinstance(instance, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in instance:
                problems += list_problems(sub, instance[name], f"{path}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, value in instance.items():
                problems += list_problems(extra, value, f"{path}.{name}")
    elif isinstance(instance, list):
        kind = schema.get("x-kubernetes-list-type")
        if kind == "map":
            keys = schema.get("x-kubernetes-list-map-keys", [])
            seen = set()
            for item in instance:
                values = [item.get(k) if isinstance(item, dict) else item for k in keys]
                key = tuple(repr(v) for v in values)
                if key in seen:
                    problems.append(f"{path}: duplicate entry for {dict(zip(keys, values))}")
                seen.add(key)
        elif kind == "set":
            reprs = [repr(item) for item in instance]
            if len(set(reprs)) != len(reprs):
                problems.append(f"{path}: duplicate items in a set")
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(instance):
                problems += list_problems(schema["items"], item, f"{path}[{index}]")
    return problems


@functools.lru_cache(maxsize=8)
def _compiled(path: str, version: str) -> tuple[dict[str, Any], jsonschema.protocols.Validator]:
    source = version_schema(load_crd(path), version)
    validator_cls = jsonschema.validators.Draft7Validator
    strict = to_json_schema(source)
    validator_cls.check_schema(strict)
    return source, validator_cls(strict)


def validate_custom_resource(obj: dict[str, Any], crd_path: str | Path, version: str) -> tuple[dict, list[str]]:
    """(the object with defaults applied, problems); problems name the JSON path of each error."""
    source, validator = _compiled(str(crd_path), version)
    defaulted = apply_defaults(source, copy.deepcopy(obj))
    problems = []
    for error in sorted(validator.iter_errors(defaulted), key=lambda e: list(map(str, e.absolute_path))):
        problems.append(f"{location(error.absolute_path)}: {error.message[:300]}")
    problems += [p.lstrip(".") for p in list_problems(source, defaulted)]
    return defaulted, problems
