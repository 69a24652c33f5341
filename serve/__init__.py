"""runway-models: the serving runtime (catalog, Ray Serve applications, protocols)."""

__version__ = "0.1.0"  # the one version: pyproject reads it, the OpenAPI documents and the chart check against it
