"""The chart rendered with Helm's own engine: helm-python-sdk bundles Helm v4, and `Chart.load(dir).render(values,
name=, namespace=)` is `helm template`. The chart alone lays out the Kubernetes objects; the generator only
computes its values (plan.py, helm_values.py) and reads back what Helm renders.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from deploy.errors import DeployError

CHART_DIR = Path(__file__).resolve().parent / "helm" / "runway-models"
#: The objects name no namespace (the templates leave it out): `kubectl apply -n` or `helm -n` decides.
NAMESPACE = "default"
#: How Helm reports a template's `fail`: the message (which names the values key) and where it was raised.
_FAIL = re.compile(r"execution error at \((?P<where>[^)]*)\): (?P<message>.*)", re.S)


def render_templates(values: dict[str, Any], release: str, namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path (e.g. `runway-models/templates/rayservice.yaml`) -> rendered text, as `helm template`."""
    from helm_python import HelmError
    from helm_python.chart import Chart

    try:
        with Chart.load(str(CHART_DIR)) as chart:
            return chart.render(values, name=release, namespace=namespace)
    except HelmError as exc:
        failed = _FAIL.search(str(exc))
        problem = f"{failed['message']} (chart: {failed['where']})" if failed else f"helm: {exc}"
        raise DeployError([problem], str(CHART_DIR)) from None


def rendered_objects(values: dict[str, Any], release: str) -> dict[str, list[dict[str, Any]]]:
    """Template file name (e.g. `rayservice.yaml`) -> the objects it rendered; templates that render nothing
    (a disabled Ingress) and NOTES.txt are left out."""
    files: dict[str, list[dict[str, Any]]] = {}
    for path, text in sorted(render_templates(values, release).items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        objects = [doc for doc in yaml.safe_load_all(text) if doc]
        if objects:
            files[Path(path).name] = objects
    return files
