"""Every fixed number and name rule of the generator, once. The chart's side of the same facts lives in
`helm/runway-models/templates/_helpers.tpl` (ports) and in values generated from `settings.py`;
tests/deploy/test_chart.py checks the rendered chart against these. The RayService name limit is the chart's alone.

Patterns are strings (pydantic fields and JSON Schemas take them as they are); `names.py` compiles them.
"""

from __future__ import annotations

import re

from deploy.chart import CHART_DIR
from serve.catalog import NAME_PATTERN, ROUTE_CHARS

#: Ray's own ports the pods expose or admit (Ray's defaults; the settable ones are values: serve.*).
GCS_PORT = 6379
CLIENT_PORT = 10001
DASHBOARD_AGENT_PORT = 52365
FIXED_RAY_PORTS = {GCS_PORT: "Ray's GCS", CLIENT_PORT: "the Ray client", DASHBOARD_AGENT_PORT: "Ray's dashboard agent"}

#: KubeRay rejects longer RayService names (53 for a RayCluster, minus the 6 it appends). The chart alone checks it
#: (`runway-models.rayServiceName`) and defines the number; read here for the values' documentation.
MAX_RAYSERVICE_NAME = int(re.search(r'define "runway-models\.maxRayServiceName" -}}(\d+){{',
                                    (CHART_DIR / "templates" / "_helpers.tpl").read_text())[1])
#: Kubernetes object names and labels.
MAX_LABEL = 63
MAX_SUBDOMAIN = 253
#: Helm release names (Helm's own limit).
MAX_RELEASE = 53

#: A DNS-1123 label: the catalog's model names are exactly that (they name objects and routes).
DNS1123_LABEL = NAME_PATTERN
_LABEL = DNS1123_LABEL.removeprefix("^").removesuffix("$")
DNS1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = rf"^{_LABEL}(\.{_LABEL})*$"
#: A host name in an Ingress rule or an HTTPRoute (a wildcard first label allowed).
HOSTNAME = rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$"
#: A Secret / object name that may contain dots.
OBJECT_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_NAME = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
#: A Docker image tag, and a reference: [registry[:port]/]path[:tag][@digest], lower-case path.
_TAG = r"[\w][\w.-]{0,127}"
IMAGE_TAG = rf"^{_TAG}$"
IMAGE_REF = (r"^([a-z0-9.-]+(:\d+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
             rf"(:{_TAG})?(@sha256:[0-9a-f]{{64}})?$")
#: A path a model answers under (its HTTP route, socket.io path, /v1 and /v2 prefixes): the catalog's route
#: characters after a leading slash.
ROUTE_PATH = f"^/{ROUTE_CHARS}$"


def optional(pattern: str) -> str:
    """The pattern, or the empty string (a value left empty on purpose)."""
    return f"^$|{pattern}"
