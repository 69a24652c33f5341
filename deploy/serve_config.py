"""The Ray Serve config (`serve deploy` format): each served model's application, and the check of a whole
config with Ray's own ServeDeploySchema.

One application per served model (`serve.app:build_model_app`, one `ModelServer` deployment whose options come
from the entry's `serving` section through the runtime's own `serve.app.model_deployment_options`) goes into the
chart's values (`models[].application`); the chart lays out the whole config around them (the `catalog`
application at `/`, proxies, the HTTP port) in the RayService's serveConfigV2.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from serve.catalog import Entry
from serve.errors import field_problems

MODEL_IMPORT_PATH = "serve.app:build_model_app"
MODEL_DEPLOYMENT = "ModelServer"
GATEWAY_IMPORT_PATH = "serve.app:build_hosted_gateway_app"


def deployment_options(entry: Entry, use_gpu: bool = True) -> dict[str, Any]:
    """The `ModelServer` deployment of one entry. The options are the runtime's own
    (`serve.app.model_deployment_options`: replicas or autoscaling, backpressure, resources, user_config), so a
    deployed config and a local `runway-models serve` agree; `use_gpu`: the cluster has a GPU pool."""
    from serve.app import model_deployment_options

    assert entry.serving is not None
    return {"name": MODEL_DEPLOYMENT, **model_deployment_options(entry, use_gpu)}


def model_application(entry: Entry, catalog_path: str, use_gpu: bool = True) -> dict[str, Any]:
    return {"name": entry.name, "route_prefix": f"/{entry.name}", "import_path": MODEL_IMPORT_PATH,
            "args": {"catalog": catalog_path, "model": entry.name},
            "deployments": [deployment_options(entry, use_gpu)]}


def hosted_gateway_application(entry: Entry, catalog_path: str) -> dict[str, Any] | None:
    """The always-on hosted gateway of a model that scales to zero (serve.app.HostedGateway), else None."""
    from serve.app import HOSTED_GATEWAY_SUFFIX

    if entry.serving is None or not entry.serving.autoscaling.sleeps:
        return None
    return {"name": entry.name + HOSTED_GATEWAY_SUFFIX, "route_prefix": entry.hosted_path,
            "import_path": GATEWAY_IMPORT_PATH, "args": {"catalog": catalog_path, "model": entry.name},
            "deployments": [{"name": "HostedGateway"}]}


def _unknown_keys(model: BaseModel, raw: Any, where: str) -> list[str]:
    """Keys the schema silently ignored (Ray's schema models do not forbid extras; we do)."""
    if not isinstance(raw, dict):
        return []
    problems = []
    fields = type(model).model_fields
    for key, value in raw.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{where}.{key}: unknown field{hint}")
            continue
        attr = getattr(model, key, None)
        if isinstance(attr, BaseModel):
            problems += _unknown_keys(attr, value, f"{where}.{key}")
        elif isinstance(attr, list) and isinstance(value, list):
            for index, (item, raw_item) in enumerate(zip(attr, value)):
                if isinstance(item, BaseModel):
                    label = raw_item.get("name", index) if isinstance(raw_item, dict) else index
                    problems += _unknown_keys(item, raw_item, f"{where}.{key}[{label}]")
    return problems


def validate_serve_config(config: dict[str, Any]) -> list[str]:
    """Problems Ray's ServeDeploySchema finds, plus unknown keys; [] when valid."""
    from ray.serve.schema import ServeDeploySchema

    from ray.serve.config import AutoscalingConfig

    try:
        parsed = ServeDeploySchema.model_validate(config)
    except ValidationError as exc:
        return field_problems(exc.errors(), prefix="serve config.")
    problems = _unknown_keys(parsed, config, "serve config")
    for app in config.get("applications", []):
        for deployment in app.get("deployments", []) or []:
            scaling = deployment.get("autoscaling_config")
            if not isinstance(scaling, dict):
                continue  # the schema keeps it as a plain dict: check it with Ray's AutoscalingConfig
            where = f"serve config.applications[{app.get('name')}].deployments[{deployment.get('name')}]" \
                    ".autoscaling_config"
            try:
                problems += _unknown_keys(AutoscalingConfig.model_validate(scaling), scaling, where)
            except ValidationError as exc:
                problems += field_problems(exc.errors(), prefix=f"{where}.")
    return problems
