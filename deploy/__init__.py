"""Deployment manifests from the catalog: Ray Serve config, KubeRay RayService and its network/monitoring/policy
objects, Helm values for deploy/helm/runway-models, and stand-alone apps.

Entry point: `deploy.generate.generate(catalog_path, out_dir, target, standalone=None, ...)`; the CLI's
`runway-models generate` is `deploy.cli`. Importing the package loads neither the validators nor Ray.

Objects are plain dicts, not kubernetes-client models: the RayService, HTTPRoute and ServiceMonitor have no client
models anyway; the client models neither reject unknown fields nor check enums or patterns, so they would add no
safety over validating every object against the real schemas (validate.py); and dicts compare directly with what
Helm renders, which is how the chart is held to the generator.
"""

from deploy.errors import DeployError

__all__ = ["DeployError"]
