"""Pieces of a stand-alone app's pod running the runway-models image: environment, volumes, scheduling.

The chart's `_helpers.tpl` has the same pieces for the release's Ray pods (`runway-models.env`, `.volumes`,
`.volumeMounts`); tests/deploy/test_standalone.py checks that a stand-alone pod carries what the release's do.
"""

from __future__ import annotations

from typing import Any

from deploy.settings import Settings

TMP = "/tmp"


def env(settings: Settings) -> list[dict[str, str]]:
    """RUNWAY_SHARED points the catalog's `${RUNWAY_SHARED}/weights/...` at the weights; HOME and caches go to the
    writable /tmp because the root filesystem is read-only (Ray keeps its auth token under ~/.ray)."""
    return [
        {"name": "RUNWAY_SHARED", "value": settings.weights.mountPath},
        {"name": "HOME", "value": TMP},
        {"name": "XDG_CACHE_HOME", "value": f"{TMP}/.cache"},
        {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
    ]


def volumes(settings: Settings) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": settings.scratch.sizeLimit}}]
    if settings.weights.source == "pvc":
        result.append({"name": "weights", "persistentVolumeClaim": {"claimName": settings.weights.claimName,
                                                                     "readOnly": True}})
    return result


def volume_mounts(settings: Settings) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = [{"name": "tmp", "mountPath": TMP}]
    if settings.weights.source == "pvc":
        result.append({"name": "weights", "mountPath": settings.weights.mountPath, "readOnly": True})
    return result


def scheduling(node_selector: dict[str, str], tolerations: list[dict[str, Any]]) -> dict[str, Any]:
    """nodeSelector/tolerations, left out when empty (as the chart's `with` blocks do)."""
    result: dict[str, Any] = {}
    if node_selector:
        result["nodeSelector"] = dict(node_selector)
    if tolerations:
        result["tolerations"] = [dict(t) for t in tolerations]
    return result


def pull_secrets(settings: Settings) -> dict[str, Any]:
    if not settings.imagePullSecrets:
        return {}
    return {"imagePullSecrets": [s.model_dump() for s in settings.imagePullSecrets]}
