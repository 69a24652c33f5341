"""One rule each, read by the runtime and the generator alike: which entries Ray Serve runs, and when a replica
asks for a GPU (both `serve.catalog.Entry` properties); and the runtime's paths, names and ports, which the chart
gets as values, never as literals of its own."""

from __future__ import annotations

import re

import pytest

from deploy.generate import render
from serve.app import model_deployment_options
from serve.catalog import load_catalog
from serve.describe import availability


def _specs_and_gpus(entries):
    entries["yolo"]["specs"]["gpu"] = False          # wants no GPU though num_gpus is set: none asked for
    entries["movenet"]["specs"]["gpu"] = True         # wants one but asks for no share: none asked for
    del entries["object-detection"]["serving"]          # Docker-only


@pytest.mark.parametrize("edit", [None, _specs_and_gpus], ids=["models.json", "edited"])
def test_runtime_status_and_plan_agree_on_servable_entries_and_gpus(write_catalog, edit):
    path = write_catalog(edit)
    catalog = load_catalog(path)
    plan = render(path, "serve-config").plan
    runtime_unservable = {e.name: availability(e).detail for e in catalog.entries if availability(e)}
    assert {d.entry.name: d.reason for d in plan.docker_only} == runtime_unservable
    assert [m.entry.name for m in plan.served] == [e.name for e in catalog.entries if availability(e) is None]
    for model in plan.served:
        asked = model_deployment_options(model.entry, use_gpu=True)["ray_actor_options"].get("num_gpus", 0)
        assert model.gpu == (asked > 0), model.entry.name
    if edit:
        assert not any(m.gpu for m in plan.served if m.entry.name in ("yolo", "movenet"))
        assert runtime_unservable["object-detection"] == "Docker-only entry: no serving section"


def test_the_chart_spells_no_path_port_or_name_the_runtime_owns():
    """The v2 and hosted prefixes, the gRPC service, servicer function and default port reach the templates as values
    (catalogPrefixes, grpc.*) from serve.catalog and serve.protocols.v2_grpc, never as literals."""
    from serve.catalog import HOSTED_PREFIX, V2_PATH
    from serve.protocols.v2_grpc import DEFAULT_GRPC_PORT, GRPC_SERVICE, SERVICER_FUNCTION
    from tests.helpers.deploy import CHART

    owned = [re.escape(V2_PATH) + r"(?![\w.-])", r"(?<![\w.])" + re.escape(HOSTED_PREFIX) + r"(?![\w.-])",
             re.escape(GRPC_SERVICE), re.escape(SERVICER_FUNCTION),
             rf"\b{DEFAULT_GRPC_PORT}\b"]
    for template in (CHART / "templates").iterdir():
        text = template.read_text()
        assert [pattern for pattern in owned if re.search(pattern, text)] == [], template.name
