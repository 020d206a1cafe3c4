"""The MCP server as a Cloud Run service: Knative YAML from the compute config (design §4.2).

    costflow deploy render --target cloud-run --service mcp --image IMAGE > service.yaml
    gcloud run services replace service.yaml --region europe-west1

What comes from where:

* memory, cpu, min/max instances, concurrency and request timeout: the ``mcp-server`` entry
  of the compute config (`costflow.config.compute`: the documented default, then the
  ``compute.services`` overrides of costflow.yaml);
* the container runs the image's entry point ``costflow mcp --transport http --host 0.0.0.0``
  (the same command the Dockerfile's CMD names), listening on Cloud Run's ``$PORT``, with
  ``--provider`` for a per-cloud server (the design's ``gcp-mcp-server``), and a startup and
  liveness probe on ``/healthz``;
* costflow.yaml is mounted as a file from a Secret Manager secret (``--config-secret``,
  default ``costflow-config``), and every ``--secret-env NAME=SECRET[:VERSION]`` becomes an
  environment variable read from Secret Manager (``valueFrom.secretKeyRef``). No secret value
  is ever written into the YAML: the renderer has no way to take one.
"""

from __future__ import annotations

import io
import re
from typing import Any

from costflow.config.compute import ComputeConfig
from costflow.errors import ConfigError
from costflow.providers import NAMES

ALL_PROVIDERS = "all"  # costflow.services.tenancy's spelling of "every provider"
API_VERSION, KIND = "serving.knative.dev/v1", "Service"
CONFIG_DIR, CONFIG_FILE = "/etc/costflow", "costflow.yaml"
CONTAINER_PORT = 8080
HEALTH_PATH = "/healthz"
SERVICE_TIMEOUT_MAX = 3600  # Cloud Run services (jobs may run longer)
ENTRY_POINT = ["costflow"]
# Cloud Run: service names are lowercase letters, digits and hyphens, 1-49, starting with a
# letter and not ending with a hyphen; secret names are Secret Manager ids.
_SERVICE = re.compile(r"[a-z](?:[a-z0-9-]{0,47}[a-z0-9])?")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,255}")
_VERSION = re.compile(r"latest|[1-9][0-9]{0,9}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]{1,128})?(@sha256:[0-9a-f]{64})?")
_ACCOUNT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]"
                      r"\.iam\.gserviceaccount\.com")


def container_args(provider: str = ALL_PROVIDERS) -> list[str]:
    """The arguments of ``costflow`` the container runs (the port comes from $PORT)."""
    args = ["mcp", "--transport", "http", "--host", "0.0.0.0",
            "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"]
    return args + (["--provider", provider] if provider != ALL_PROVIDERS else [])


def render_service(compute: ComputeConfig, image: str, *, provider: str = ALL_PROVIDERS,
                   name: str | None = None, config_secret: str = "costflow-config",
                   secret_env: dict[str, str] | None = None,
                   service_account: str | None = None) -> dict[str, Any]:
    """The Knative Service document (a dict) for the MCP server.

    Args:
        compute: the service's compute settings.
        image: the container image (built from deploy/mcp/Dockerfile).
        provider: ``all`` or one provider (a per-cloud server).
        name: the service name (default ``costflow-mcp`` or ``costflow-<provider>-mcp``).
        config_secret: the Secret Manager secret holding costflow.yaml.
        secret_env: environment variable -> ``SECRET`` or ``SECRET:VERSION``.
        service_account: the identity the service runs as.

    Raises:
        ConfigError: a value Cloud Run would refuse, named with what is expected.
    """
    if provider not in (ALL_PROVIDERS, *NAMES):
        raise ConfigError(f"unknown provider {provider!r}; allowed: "
                          f"{', '.join((ALL_PROVIDERS, *NAMES))}.")
    name = name or ("costflow-mcp" if provider == ALL_PROVIDERS else f"costflow-{provider}-mcp")
    _need(_SERVICE, name, "service name", "1-49 lowercase letters, digits and hyphens, "
                                          "starting with a letter")
    _need(_IMAGE, image, "image", "a registry path such as "
                                  "europe-docker.pkg.dev/PROJECT/REPO/costflow-mcp:TAG")
    _need(_SECRET, config_secret, "config secret", "a Secret Manager secret id")
    if service_account is not None:
        _need(_ACCOUNT, service_account, "service account",
              "NAME@PROJECT.iam.gserviceaccount.com")
    if compute.timeout_seconds > SERVICE_TIMEOUT_MAX:
        raise ConfigError(f"compute timeout {compute.timeout_seconds} s of {compute.name} is "
                          f"over Cloud Run's {SERVICE_TIMEOUT_MAX} s for services; lower it "
                          "in costflow.yaml compute.services.")
    env = []
    for variable, reference in sorted((secret_env or {}).items()):
        _need(_ENV, variable, "environment variable", "letters, digits and _")
        secret, _, version = reference.partition(":")
        _need(_SECRET, secret, f"secret of {variable}", "a Secret Manager secret id")
        _need(_VERSION, version or "latest", f"secret version of {variable}",
              "latest or a version number")
        env.append({"name": variable, "valueFrom": {"secretKeyRef": {
            "name": secret, "key": version or "latest"}}})
    container: dict[str, Any] = {
        "image": image,
        "command": ENTRY_POINT,
        "args": container_args(provider),
        "ports": [{"name": "http1", "containerPort": CONTAINER_PORT}],
        "resources": {"limits": {"cpu": _cpu(compute.cpu), "memory": compute.memory}},
        "volumeMounts": [{"name": "costflow-config", "mountPath": CONFIG_DIR,
                          "readOnly": True}],
        "startupProbe": {**_probe(), "periodSeconds": 2, "failureThreshold": 30},
        "livenessProbe": {**_probe(), "periodSeconds": 30},
    }
    if env:
        container["env"] = env
    spec: dict[str, Any] = {
        "containerConcurrency": compute.concurrency,
        "timeoutSeconds": compute.timeout_seconds,
        "containers": [container],
        "volumes": [{"name": "costflow-config", "secret": {
            "secretName": config_secret, "items": [{"key": "latest", "path": CONFIG_FILE}]}}],
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    return {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": name, "labels": {"app": "costflow", "costflow-service": "mcp"},
                     "annotations": {"run.googleapis.com/ingress": "all"}},
        "spec": {"template": {
            "metadata": {"annotations": {
                "autoscaling.knative.dev/minScale": str(compute.min_instances),
                "autoscaling.knative.dev/maxScale": str(compute.max_instances)}},
            "spec": spec}},
    }


def to_yaml(document: dict[str, Any]) -> str:
    """YAML text of a rendered document (block style, keys in the order rendered)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _probe() -> dict[str, Any]:
    return {"httpGet": {"path": HEALTH_PATH, "port": CONTAINER_PORT}}


def _cpu(cpu: int | float) -> str:
    return str(cpu) if isinstance(cpu, int) else f"{int(round(cpu * 1000))}m"


def _need(pattern: re.Pattern[str], value: object, what: str, expected: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(f"{what} {str(value)[:80]!r} is not accepted by Cloud Run: expected "
                          f"{expected}.")
