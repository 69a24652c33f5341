"""Services, the Ingress (ingress-nginx with what a WebSocket needs) and the Gateway API HTTPRoute alternative.

Traffic goes to the Service KubeRay creates from the RayService's `serveService` (`<fullname>-serve`, port
`serve`), which only selects pods whose Serve proxy is healthy, and which KubeRay re-points during upgrades.
"""

from __future__ import annotations

from typing import Any

from deploy import names
from deploy.plan import Plan
from deploy.rayservice import serve_service_name

from serve.catalog import PUBLIC_CATALOG_PATHS as CATALOG_PATHS


def routes(plan: Plan) -> list[tuple[str, str]]:
    """(path, kind) in a fixed order: the catalog app's, then each model's HTTP route and socket.io prefix."""
    result = [(path, "Exact") for path in CATALOG_PATHS]
    for model in plan.settings.models:
        result += [(model.httpPath, "Exact"), (model.socketPath, "Prefix")]
    return result


def metrics_service(plan: Plan) -> dict[str, Any]:
    """A headless Service over every Ray pod's metrics port, for the ServiceMonitor (and plain Prometheus)."""
    s = plan.settings
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{plan.fullname}-metrics",
                     "labels": {**names.labels(plan.release, s), "app.kubernetes.io/component": "metrics"}},
        "spec": {
            "clusterIP": "None",
            "selector": names.selector_labels(plan.release, s),
            "ports": [{"name": "metrics", "port": s.serve.metricsPort, "targetPort": "metrics", "protocol": "TCP"}],
        },
    }


def nginx_annotations(plan: Plan) -> dict[str, str]:
    """ingress-nginx proxies WebSocket upgrades by itself; it needs long timeouts, no buffering, a body size."""
    timeout = str(plan.settings.ingress.timeoutSeconds)
    return {
        "nginx.ingress.kubernetes.io/proxy-read-timeout": timeout,
        "nginx.ingress.kubernetes.io/proxy-send-timeout": timeout,
        "nginx.ingress.kubernetes.io/proxy-buffering": "off",
        "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
        "nginx.ingress.kubernetes.io/proxy-body-size": plan.settings.ingress.maxBodySize,
        "nginx.ingress.kubernetes.io/proxy-http-version": "1.1",
    }


def ingress(plan: Plan) -> dict[str, Any]:
    s = plan.settings
    annotations = {**(nginx_annotations(plan) if s.ingress.nginxAnnotations else {}), **s.ingress.annotations}
    backend = {"service": {"name": serve_service_name(plan), "port": {"number": s.serve.port}}}
    rule: dict[str, Any] = {}
    if s.ingress.host:
        rule["host"] = s.ingress.host
    rule["http"] = {"paths": [{"path": path, "pathType": kind, "backend": backend} for path, kind in routes(plan)]}
    spec: dict[str, Any] = {"ingressClassName": s.ingress.className}
    if s.ingress.tls.enabled:
        tls: dict[str, Any] = {"secretName": s.ingress.tls.secretName}
        if s.ingress.host:
            tls["hosts"] = [s.ingress.host]
        spec["tls"] = [tls]
    spec["rules"] = [rule]
    metadata: dict[str, Any] = {"name": plan.fullname, "labels": names.labels(plan.release, s)}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec}


def http_route(plan: Plan) -> dict[str, Any]:
    s = plan.settings
    backend = [{"name": serve_service_name(plan), "port": s.serve.port}]
    parents = []
    for ref in s.httpRoute.parentRefs:
        parent = {"name": ref.name}
        if ref.namespace:
            parent["namespace"] = ref.namespace
        if ref.sectionName:
            parent["sectionName"] = ref.sectionName
        parents.append(parent)
    exact = [{"path": {"type": "Exact", "value": path}} for path, kind in routes(plan) if kind == "Exact"]
    prefix = [{"path": {"type": "PathPrefix", "value": path}} for path, kind in routes(plan) if kind == "Prefix"]
    rules: list[dict[str, Any]] = [{"matches": exact, "backendRefs": backend}]
    if prefix:
        # socket.io: WebSocket upgrades pass through Gateway API implementations; keep the connection alive.
        rules.append({"matches": prefix, "backendRefs": backend,
                      "timeouts": {"request": s.httpRoute.requestTimeout}})
    spec: dict[str, Any] = {"parentRefs": parents}
    if s.httpRoute.hostnames:
        spec["hostnames"] = list(s.httpRoute.hostnames)
    spec["rules"] = rules
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": plan.fullname, "labels": names.labels(plan.release, s)}, "spec": spec}
