"""Structural checks for the CRD kinds whose CRDs are not available offline here: Gateway API `HTTPRoute` and
`GRPCRoute` (gateway.networking.k8s.io/v1) and Prometheus Operator `ServiceMonitor` (monitoring.coreos.com/v1).

These are hand-written subsets of those APIs covering the fields we emit (types, enums, required keys, limits,
unknown keys rejected), written from the published API references, not copies of the upstream CRDs. A field we do
not emit is rejected here even where the real CRD accepts it; widen the subset when the generator grows.
"""

from __future__ import annotations

from typing import Any

from deploy import constants as c

STRING = {"type": "string"}
NAME = {"type": "string", "minLength": 1, "maxLength": 253}
DNS_LABEL = {"type": "string", "pattern": c.DNS1123_LABEL, "maxLength": c.MAX_LABEL}
DURATION = {"type": "string", "pattern": r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"}
PROM_DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                                               r"(([0-9]+)s)?(([0-9]+)ms)?)$"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or [], "additionalProperties": False}


def _array(items: dict[str, Any], max_items: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": items}
    if max_items:
        schema["maxItems"] = max_items
    return schema


def _envelope(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _object({"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": {"type": "object"},
                    "spec": spec}, ["apiVersion", "kind", "metadata", "spec"])


_PATH_MATCH = _object({"type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                       "value": {"type": "string", "maxLength": 1024, "pattern": "^/"}})
_PATH_MODIFIER = _object({"type": {"enum": ["ReplaceFullPath", "ReplacePrefixMatch"]},
                          "replaceFullPath": {"type": "string", "maxLength": 1024},
                          "replacePrefixMatch": {"type": "string", "maxLength": 1024, "pattern": "^/"}}, ["type"])
_BACKEND_REF = _object({"group": STRING, "kind": STRING, "name": NAME, "namespace": DNS_LABEL,
                        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "weight": {"type": "integer", "minimum": 0, "maximum": 1000000}}, ["name", "port"])
_PARENT_REFS = _array(_object({"group": STRING, "kind": STRING, "namespace": DNS_LABEL, "name": NAME,
                               "sectionName": {"type": "string", "pattern": c.DNS1123_LABEL},
                               "port": {"type": "integer", "minimum": 1, "maximum": 65535}}, ["name"]), 32)
_HOSTNAMES = _array({"type": "string", "maxLength": c.MAX_SUBDOMAIN, "pattern": c.HOSTNAME}, 16)
HTTP_ROUTE = _envelope("gateway.networking.k8s.io/v1", "HTTPRoute", _object({
    "parentRefs": _PARENT_REFS,
    "hostnames": _HOSTNAMES,
    "rules": _array(_object({
        "name": DNS_LABEL,
        "matches": _array(_object({"path": _PATH_MATCH,
                                   "method": {"enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                                                       "OPTIONS", "TRACE", "PATCH"]}}), 64),
        "filters": _array(_object({
            "type": {"enum": ["RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "RequestRedirect",
                              "URLRewrite", "ExtensionRef"]},
            "urlRewrite": _object({"hostname": STRING, "path": _PATH_MODIFIER}),
        }, ["type"]), 16),
        "backendRefs": _array(_BACKEND_REF, 16),
        "timeouts": _object({"request": DURATION, "backendRequest": DURATION}),
    }), 16),
}, ["parentRefs"]))

#: GRPCMethodMatch: a service is `package.Service` (the API's pattern), a method a bare name.
_GRPC_METHOD = _object({"type": {"enum": ["Exact", "RegularExpression"]},
                        "service": {"type": "string", "maxLength": 1024,
                                    "pattern": r"^\.?[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$"},
                        "method": {"type": "string", "maxLength": 1024, "pattern": r"^[A-Za-z_][A-Za-z_0-9]*$"}})
GRPC_ROUTE = _envelope("gateway.networking.k8s.io/v1", "GRPCRoute", _object({
    "parentRefs": _PARENT_REFS,
    "hostnames": _HOSTNAMES,
    "rules": _array(_object({
        "name": DNS_LABEL,
        "matches": _array(_object({"method": _GRPC_METHOD}), 64),
        "backendRefs": _array(_BACKEND_REF, 16),
    }), 16),
}, ["parentRefs"]))

_RELABEL = _object({
    "sourceLabels": _array({"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}),
    "separator": STRING, "targetLabel": STRING, "regex": STRING, "replacement": STRING,
    "modulus": {"type": "integer", "minimum": 0},
    "action": {"enum": ["replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod", "HashMod", "labelmap",
                        "LabelMap", "labeldrop", "LabelDrop", "labelkeep", "LabelKeep", "lowercase", "Lowercase",
                        "uppercase", "Uppercase", "keepequal", "KeepEqual", "dropequal", "DropEqual"]},
})
_SELECTOR = _object({"matchLabels": STRING_MAP,
                     "matchExpressions": _array(_object({"key": STRING, "operator": {
                         "enum": ["In", "NotIn", "Exists", "DoesNotExist"]}, "values": _array(STRING)},
                         ["key", "operator"]))})
SERVICE_MONITOR = _envelope("monitoring.coreos.com/v1", "ServiceMonitor", _object({
    "jobLabel": STRING,
    "targetLabels": _array(STRING),
    "podTargetLabels": _array(STRING),
    "endpoints": _array(_object({
        "port": STRING, "path": STRING, "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
        "interval": PROM_DURATION, "scrapeTimeout": PROM_DURATION, "honorLabels": {"type": "boolean"},
        "relabelings": _array(_RELABEL), "metricRelabelings": _array(_RELABEL),
    })),
    "selector": _SELECTOR,
    "namespaceSelector": _object({"any": {"type": "boolean"}, "matchNames": _array(STRING)}),
    "sampleLimit": {"type": "integer", "minimum": 0},
}, ["selector"]))

SCHEMAS = {("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTP_ROUTE,
           ("gateway.networking.k8s.io/v1", "GRPCRoute"): GRPC_ROUTE,
           ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR}
