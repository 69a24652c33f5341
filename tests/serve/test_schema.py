"""The committed JSON Schema (models.schema.json) is itself valid, its references resolve, and it accepts the
original Runway format's written forms and refuses what the loader refuses, with the same field named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from serve.catalog import CatalogError, parse_catalog

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "models.schema.json").read_text())
ORIGINAL = json.loads((REPO / "tests/fixtures/im2txt_original.json").read_text())
CATALOG = json.loads((REPO / "models.json").read_text())


def references(node) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [r for value in node.values() for r in references(value)]
    if isinstance(node, list):
        return [r for value in node for r in references(value)]
    return []


def errors_of(instance) -> list:
    return list(Draft202012Validator(SCHEMA).iter_errors(instance))


def test_schema_is_valid_draft_2020_12_and_every_reference_resolves():
    Draft202012Validator.check_schema(SCHEMA)
    resolver = Registry().with_resource("urn:catalog", DRAFT202012.create_resource(SCHEMA)).resolver("urn:catalog")
    refs = set(references(SCHEMA))
    assert len(refs) > 10, refs  # entries, sections and every family's options
    for ref in refs:
        resolver.lookup(ref)  # raises on a pointer to nowhere (the old schema's refs did, under `items`)


def test_original_entry_and_the_repository_catalogs_validate():
    for catalog in ([ORIGINAL], {"models": [ORIGINAL]}, CATALOG,
                    json.loads((REPO / "examples/im2txt.json").read_text())):
        assert errors_of(catalog) == []


@pytest.mark.parametrize("field, written", [
    (("port",), "33100"), (("port",), 33100),
    (("size",), ["2.19", "GB"]), (("size",), "2.19 GB"),
    (("query", "http", "route"), "query_once"), (("query", "http", "route"), "/query_once"),
    (("query", "http", "method"), "post"), (("query", "http", "method"), "Post"),
    (("query", "http", "type"), "JSON"), (("query", "http", "type"), "json"),
    (("query", "socket", "namespace"), "query"),
    (("query", "format", "data"), "data:image/jpg;base64,"), (("query", "format", "data"), "data:image/jpeg;base64"),
    (("options", "HostConfig", "PortBindings", "33000/tcp", 0, "HostPort"), 33100),
])
def test_every_written_form_the_loader_accepts_the_schema_accepts(field, written):
    raw = copy.deepcopy(ORIGINAL)
    node = raw
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = written
    parse_catalog([raw])  # the loader's verdict first: it accepts this form
    assert errors_of([raw]) == []


def _set(path, value):
    def change(entries):
        node = next(e for e in entries if e["name"] == path[0])
        for key in path[1:-1]:
            node = node[key]
        if value is None:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return change


@pytest.mark.parametrize("change, where", [
    (_set(("openpose", "serving", "options", "scale"), 2), [1, "serving", "options"]),
    (_set(("yolo", "serving", "options", "conf_threshold"), 2), [2, "serving", "options", "conf_threshold"]),
    (_set(("yolo", "serving", "weights", "names"), None), [2, "serving", "weights"]),
    (_set(("yolo", "query", "http", "route"), "query once"), [2, "query", "http", "route"]),
    (_set(("yolo", "query", "http", "method"), "fetch"), [2, "query", "http", "method"]),
    (_set(("yolo", "size"), ["2.19"]), [2, "size"]),
    (_set(("yolo", "port"), "port"), [2, "port"]),
])
def test_what_the_loader_refuses_the_schema_refuses(change, where):
    raw = copy.deepcopy(CATALOG)
    change(raw)
    with pytest.raises(CatalogError) as refused:
        parse_catalog(raw)
    named = f"entry {where[0]} ({raw[where[0]]['name']})." + ".".join(map(str, where[1:]))
    assert any(p.startswith(named) for p in refused.value.problems), refused.value.problems
    error = best_match(Draft202012Validator(SCHEMA).iter_errors(raw))
    assert error is not None and list(error.absolute_path)[: len(where)] == where, error
