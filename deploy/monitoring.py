"""A Prometheus Operator ServiceMonitor scraping Ray's metrics export port on every Ray pod (ray_serve_* and the
runway_* metrics the replicas record), through the headless `<fullname>-metrics` Service."""

from __future__ import annotations

from typing import Any

from deploy import names
from deploy.plan import Plan


def service_monitor(plan: Plan) -> dict[str, Any]:
    s = plan.settings
    monitor = s.monitoring.serviceMonitor
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": plan.fullname, "labels": {**names.labels(plan.release, s), **monitor.labels}},
        "spec": {
            "selector": {"matchLabels": {**names.selector_labels(plan.release, s),
                                         "app.kubernetes.io/component": "metrics"}},
            "endpoints": [{
                "port": "metrics",
                "path": "/metrics",
                "interval": monitor.interval,
                "scrapeTimeout": monitor.scrapeTimeout,
                "relabelings": [
                    {"sourceLabels": ["__meta_kubernetes_pod_label_ray_io_node_type"], "targetLabel": "ray_node_type"},
                    {"sourceLabels": ["__meta_kubernetes_pod_label_ray_io_group"], "targetLabel": "ray_group"},
                ],
            }],
        },
    }
