"""A PodDisruptionBudget for the worker pods and a NetworkPolicy for every Ray pod."""

from __future__ import annotations

from typing import Any

from deploy import names
from deploy.plan import Plan
from deploy.settings import DASHBOARD_AGENT_PORT


def pdb(plan: Plan) -> dict[str, Any]:
    """Integer minAvailable: KubeRay's pods belong to no controller with a scale subresource."""
    s = plan.settings
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": f"{plan.fullname}-workers", "labels": names.labels(plan.release, s)},
        "spec": {"minAvailable": s.pdb.minAvailable,
                 "selector": {"matchLabels": {**names.selector_labels(plan.release, s),
                                              "app.kubernetes.io/component": "ray-worker"}}},
    }


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def network_policy(plan: Plan) -> dict[str, Any]:
    """Ray pods talk to each other freely (GCS, raylets, object transfer, proxies to replicas); from outside only
    the ingress (Serve port), Prometheus (metrics port) and the KubeRay operator (dashboard, Serve health)."""
    s = plan.settings
    own = {"podSelector": {"matchLabels": names.selector_labels(plan.release, s)}}
    rules: list[dict[str, Any]] = [{"from": [own]}]
    if s.networkPolicy.ingressFrom:
        rules.append({"from": s.networkPolicy.ingressFrom, "ports": _tcp(s.serve.port)})
    if s.networkPolicy.metricsFrom:
        rules.append({"from": s.networkPolicy.metricsFrom, "ports": _tcp(s.serve.metricsPort)})
    if s.networkPolicy.operatorFrom:
        rules.append({"from": s.networkPolicy.operatorFrom,
                      "ports": _tcp(s.serve.dashboardPort, s.serve.port, DASHBOARD_AGENT_PORT)})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": plan.fullname, "labels": names.labels(plan.release, s)},
        "spec": {"podSelector": {"matchLabels": names.selector_labels(plan.release, s)},
                 "policyTypes": ["Ingress"], "ingress": rules},
    }
