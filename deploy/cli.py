"""`runway-models generate`: `serve.cli` hands the subcommand's arguments to `main` when it runs (the runtime
never imports this package otherwise). Also runnable alone: `python -m deploy generate ...`.

Importing this module needs nothing beyond the runtime's own dependencies; the generator's (the `deploy` extra)
are checked before it is imported, so a missing one is reported with what to install (`serve.cli`'s hint, the one
the runtime gives when this package itself is missing)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys

from deploy.defaults import DEFAULT_KUBE_VERSION, DEFAULT_RELEASE, TARGETS
from serve.cli import DEPLOY_EXTRA_HINT

#: Modules of the `deploy` extra (pyproject.toml) the generator imports.
EXTRA_MODULES = ("kubernetes_validate", "jsonschema", "helm_python")


def missing_modules() -> list[str]:
    return [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "generate", help="write Kubernetes manifests, a Serve config or Helm values from models.json",
        description="Render and validate offline, then replace --out as a whole (nothing half-written).")
    parser.add_argument("catalog", nargs="?", default="models.json", help="the catalog (default: models.json)")
    parser.add_argument("--out", required=True, help="output folder (new, empty, or written by generate before)")
    parser.add_argument("--target", choices=TARGETS, default="all", help="what to write (default: all)")
    parser.add_argument("--standalone", metavar="MODEL", help="only this entry's stand-alone app")
    parser.add_argument("--release", default=DEFAULT_RELEASE, help="Helm release name the names derive from")
    parser.add_argument("-f", "--values", action="append", default=[], metavar="FILE",
                        help="chart values (repeatable, later wins), e.g. GPU pool, ingress host")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="one value, e.g. monitoring.serviceMonitor.enabled=true (repeatable)")
    parser.add_argument("--kube-version", default=DEFAULT_KUBE_VERSION,
                        help=f"Kubernetes version to validate against (>= 1.30; default {DEFAULT_KUBE_VERSION})")
    parser.add_argument("--schemas", metavar="DIR", help="folder with KubeRay 1.7.0's RayService CRD (default: "
                        "$RUNWAY_KUBERAY_SCHEMAS, else the copy in deploy/schemas/)")
    parser.add_argument("--require-crd", action="store_true", help="fail when the KubeRay CRDs are not found")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    missing = missing_modules()
    if missing:
        print(f"error: runway-models generate needs the deploy extra ({', '.join(missing)} not installed): "
              f"{DEPLOY_EXTRA_HINT}", file=sys.stderr)
        return 2
    from deploy.errors import DeployError
    from deploy.generate import generate

    try:
        result = generate(args.catalog, args.out, args.target, args.standalone, release=args.release,
                          values_files=args.values, sets=args.set, kube_version=args.kube_version,
                          schemas=args.schemas, require_crd=args.require_crd)
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, reason in result.skipped:
        print(f"note: {name} is not served by Ray Serve ({reason}): it runs its own image beside the RayService "
              f"(docker-models.yaml), routed at /{name}/", file=sys.stderr)
    by_method: dict[str, list[str]] = {}
    for note in result.notes:
        name, _, method = note.partition(": ")
        by_method.setdefault(method, []).append(name)
    for method, objects in by_method.items():
        print(f"validated against {method}: {', '.join(objects)}", file=sys.stderr)
    for path in result.files:
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    parser = argparse.ArgumentParser(prog="runway-models")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
