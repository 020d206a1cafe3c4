"""`costflow deploy render`: the deployment descriptor of a costflow service, from the config.

    costflow deploy render --target cloud-run --service mcp --image IMAGE [--provider gcp]

Prints the Cloud Run service YAML (`costflow.deploy.cloud_run`) with the compute settings of the
service in costflow.yaml (or the documented defaults when there is no config file); apply it
with ``gcloud run services replace``.
"""

from __future__ import annotations

import argparse

from costflow.providers import NAMES

SERVICES = {"mcp": "mcp-server", "mcp-server": "mcp-server", "gcp-mcp-server": "mcp-server"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``costflow deploy render``."""
    parser = sub.add_parser("deploy", help="Render deployment descriptors (Cloud Run YAML).",
                            description=__doc__.split("\n\n")[0].replace("\n", " "))
    actions = parser.add_subparsers(dest="deploy", required=True)
    render = actions.add_parser("render", help="Print a service's deployment YAML.")
    render.add_argument("--target", choices=["cloud-run"], required=True)
    render.add_argument("--service", choices=sorted(SERVICES), required=True)
    render.add_argument("--image", required=True,
                        help="The image built from deploy/mcp/Dockerfile, e.g. "
                             "europe-docker.pkg.dev/PROJECT/REPO/costflow-mcp:TAG.")
    render.add_argument("--provider", default="all", choices=["all", *NAMES],
                        help="A per-cloud server answering for one provider only.")
    render.add_argument("--name", help="Service name (default costflow-mcp, or "
                                       "costflow-<provider>-mcp).")
    render.add_argument("--config-secret", dest="config_secret", default="costflow-config",
                        help="Secret Manager secret holding costflow.yaml (mounted as a file).")
    render.add_argument("--secret-env", dest="secret_env", action="append", default=[],
                        metavar="NAME=SECRET[:VERSION]",
                        help="An environment variable read from Secret Manager; repeat.")
    render.add_argument("--service-account", dest="service_account")
    render.add_argument("--config", help="costflow.yaml whose compute settings apply (default: "
                                         "$COSTFLOW_CONFIG, else ./costflow.yaml if present, "
                                         "else the documented defaults).")


def run(args: argparse.Namespace) -> int:
    """Print the YAML; returns 0."""
    import os
    from pathlib import Path

    from costflow.config import ComputeSettings, load_config
    from costflow.deploy.cloud_run import render_service, to_yaml
    from costflow.errors import ConfigError

    wanted = args.config or os.environ.get("COSTFLOW_CONFIG")
    if wanted or Path("costflow.yaml").exists():
        compute = load_config(wanted).compute_config(SERVICES[args.service])
    else:
        compute = ComputeSettings().service(SERVICES[args.service])
    secret_env = {}
    for item in args.secret_env:
        name, sep, reference = item.partition("=")
        if not sep or not name or not reference:
            raise ConfigError(f"--secret-env {item!r} is not NAME=SECRET[:VERSION] (e.g. "
                              "COSTFLOW_SECRETS_KEY=costflow-secrets-key:latest).")
        secret_env[name] = reference
    print(to_yaml(render_service(compute, args.image, provider=args.provider, name=args.name,
                                 config_secret=args.config_secret, secret_env=secret_env,
                                 service_account=args.service_account)), end="")
    return 0
