"""The manifest generator: from models.json to the chart's values, the KubeRay objects the chart renders, the Ray
Serve config, and stand-alone apps. Not part of the runtime (serve/ never imports it); its dependencies are the
`deploy` extra.

One source for the object layout: `plan.py` computes what depends on the catalog (model applications, pool
sizes, body size, deployability errors) as Helm values; the chart in `helm/runway-models` alone lays out the
objects, rendered with Helm's own engine (`chart.py`); every object is then validated against real schemas
(`validate.py`). Stand-alone apps (`standalone.py`), which the chart does not deploy, are built here.

Entry point: `deploy.generate.generate(catalog_path, out_dir, target, standalone=None, ...)`; the CLI's
`runway-models generate` is `deploy.cli`. Importing the package loads neither the validators nor Ray.
"""

from deploy.errors import DeployError

__all__ = ["DeployError"]
