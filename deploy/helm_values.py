"""The helm-values target: the user's own values plus the keys computed from the catalog.

`helm install -f helm-values.yaml` then renders exactly the objects `--target kuberay` writes (a test compares),
because the chart only templates what the generator computed.
"""

from __future__ import annotations

from typing import Any

from deploy.plan import GENERATED_KEYS, Plan
from deploy.settings import deep_merge


def _pick(values: dict[str, Any], dotted: str) -> dict[str, Any]:
    parts = dotted.split(".")
    node: Any = values
    for part in parts:
        node = node[part]
    for part in reversed(parts):
        node = {part: node}
    return node


def helm_values(plan: Plan, user_values: dict[str, Any]) -> dict[str, Any]:
    full = plan.settings.model_dump(mode="json")
    result = dict(user_values)
    for key in GENERATED_KEYS:
        result = deep_merge(result, _pick(full, key))
    return result
