"""`runway-models validate | schema | serve | profile | generate`: parse arguments, call the layers below.

`generate` belongs to the manifest generator (the top-level `deploy` package, installed with the `deploy` extra);
the runtime never imports it: its arguments are handed to `deploy.cli` only when the subcommand runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from serve.catalog import CatalogError, catalog_json_schema, load_catalog, resolve_path, weights_to_fetch
from serve.front import FRONT_ENV, FRONTS, LOCAL_DEFAULT_FRONT

#: What to install for `generate` (also deploy/cli.py's, when one of the extra's modules is missing).
DEPLOY_EXTRA_HINT = "pip install 'runway-models[deploy]' (in a checkout: pip install -e '.[deploy]')"
#: The photo `profile` measures with unless given one.
PROFILE_PHOTO = "${RUNWAY_SHARED}/images/dog.jpg"


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        catalog = load_catalog(args.path, check_weights=not args.skip_weights)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{args.path}: {len(catalog.entries)} entries OK")
    if not args.skip_weights:  # files users fetch themselves: those models are not_available until then
        for note in (n for e in catalog.entries for n in weights_to_fetch(e, catalog.base_dir)):
            print(f"  not available until downloaded: {note}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(catalog_json_schema(), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from serve.local import LocalSettings, run_until_signalled
    from serve.supervisor import is_child, supervise

    if not is_child():
        return supervise(args.argv)
    try:
        catalog = load_catalog(args.catalog)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 1
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    settings = LocalSettings(Path(args.catalog), models, args.host, args.port, args.metrics_port, args.num_cpus,
                             args.grpc_port, args.front)
    run_until_signalled(settings, catalog)
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from serve.profile import ProfileError, profile, table, write_catalog  # loads a model: only here
    from serve.weights import WeightsNotFetched

    try:
        catalog = load_catalog(args.catalog)
        entry = catalog.get(args.model)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyError:
        print(f"error: no model {args.model!r} in {args.catalog}; known: {', '.join(catalog.names)}", file=sys.stderr)
        return 1
    try:
        image = Path(args.image) if args.image else resolve_path(PROFILE_PHOTO, catalog.base_dir)
        result = profile(entry, catalog.base_dir, image, args.device, args.max_batch, args.seconds,
                         report=lambda row, done, total: print(f"measured {done}/{total}: {row.layout} batch "
                                                               f"{row.batch_size}", file=sys.stderr, flush=True))
        print(table(result))
        if args.write:
            write_catalog(Path(args.catalog), entry.name, result.choice, Path(args.write))
            print(f"wrote {args.write}")
    except (ProfileError, WeightsNotFetched, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        Path(args.json).write_text(result.model_dump_json(indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def cmd_generate(args: argparse.Namespace, rest: list[str]) -> int:
    try:
        from deploy.cli import main as generate_main
    except ModuleNotFoundError as exc:
        print(f"error: runway-models generate needs the manifest generator ({exc.name} is missing): "
              f"{DEPLOY_EXTRA_HINT}", file=sys.stderr)
        return 2
    return generate_main(["generate", *rest])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runway-models", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="check models.json; exits 1 naming every bad entry and field")
    validate.add_argument("path", nargs="?", default="models.json")
    validate.add_argument("--skip-weights", action="store_true", help="do not check local weight files")
    validate.set_defaults(func=cmd_validate)

    schema = sub.add_parser("schema", help="print the catalog's JSON Schema (generated from the pydantic models)")
    schema.add_argument("--out", help="write it to this file")
    schema.set_defaults(func=cmd_schema)

    run = sub.add_parser("serve", help="serve the catalog locally with embedded Ray (Ctrl-C stops)")
    run.add_argument("--catalog", default="models.json")
    run.add_argument("--models", help="comma-separated names (default: every model with a built implementation)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--metrics-port", type=int, default=8080, help="Ray's Prometheus export port")
    run.add_argument("--num-cpus", type=int, help="logical CPUs for Ray (default: this machine's)")
    run.add_argument("--grpc-port", type=int, help="also serve the Open Inference Protocol over gRPC on this port "
                                                   "(Serve's gRPC proxy; needs tritonclient; default: off)")
    run.add_argument("--front", choices=FRONTS, default=os.environ.get(FRONT_ENV, LOCAL_DEFAULT_FRONT),
                     help="what takes requests before the replicas: Ray Serve's Python proxy or HAProxy with "
                          f"direct ingress to the replicas (serve/front.py; default: ${FRONT_ENV} or %(default)s)")
    run.set_defaults(func=cmd_serve)

    prof = sub.add_parser("profile", help="measure a model's batch latency and throughput on this machine and "
                                          "choose its batching, threads and target_ongoing_requests")
    prof.add_argument("model")
    prof.add_argument("--catalog", default="models.json")
    prof.add_argument("--image", help=f"the photo batches are made of (default: {PROFILE_PHOTO}, the shared folder "
                                      "weight paths use)")
    prof.add_argument("--device", choices=("cpu", "cuda"),
                      help="default: cuda when the entry wants a GPU and torch has CUDA, else cpu")
    prof.add_argument("--max-batch", type=int, default=8, help="largest batch size measured (of 1, 2, 4, 8)")
    prof.add_argument("--seconds", type=float, default=20.0,
                      help="measuring time shared by all variants, warm-up apart (default: %(default)s)")
    prof.add_argument("--write", metavar="PATH", help="write a copy of the catalog with the chosen settings")
    prof.add_argument("--json", metavar="PATH", help="write the measurements and the choice as JSON")
    prof.set_defaults(func=cmd_profile)

    # Its own options (and --help) are parsed by deploy.cli, imported only when it runs.
    generate = sub.add_parser("generate", add_help=False,
                              help="write Kubernetes manifests, a Serve config or Helm values from models.json "
                                   "(needs the deploy extra; generate --help)")
    generate.set_defaults(func=cmd_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.func is cmd_generate:
        return cmd_generate(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.argv = sys.argv[1:] if argv is None else argv
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
