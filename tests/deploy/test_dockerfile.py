"""deploy/Dockerfile cannot be built here; check that it agrees with the chart's defaults."""

from __future__ import annotations

import re

from deploy.settings import Settings
from tests.helpers.paths import REPO

DOCKERFILE = (REPO / "deploy" / "Dockerfile").read_text()


def test_ray_version_matches_the_rayservice():
    match = re.search(r"ARG RAY_IMAGE=rayproject/ray:(\d+\.\d+\.\d+)-py311", DOCKERFILE)
    assert match and match.group(1) == Settings().ray.version


def test_paths_match_the_values():
    settings = Settings()
    assert f"COPY --chown=1000:100 models.json {settings.catalog.path}" in DOCKERFILE
    assert f"RUNWAY_SHARED={settings.weights.mountPath}" in DOCKERFILE
    assert f"{settings.weights.mountPath}/weights/" in DOCKERFILE


def test_user_matches_the_pod_security_context():
    context = Settings().podSecurityContext
    assert f"USER {context['runAsUser']}:{context['runAsGroup']}" in DOCKERFILE
    assert DOCKERFILE.rstrip().splitlines()[-1].startswith("CMD")
    assert "USER root" not in DOCKERFILE.split("USER 1000:100")[-1]  # the image ends as the non-root user
