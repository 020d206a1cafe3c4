"""`costflow deploy render --target cloud-run --service mcp`, and the entry point it deploys.

The YAML is rendered through the CLI from a costflow.yaml that overrides the mcp-server
compute settings, parsed, and checked field by field against those settings and against
deploy/mcp/Dockerfile (same entry point and command, same port). Then the entry point runs as
Cloud Run would start it (the YAML's command and args, $PORT set, the config file given), without
docker: /healthz answers 200 and /mcp without a key 401.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from costflow import cli

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "europe-docker.pkg.dev/acme-finops/costflow/costflow-mcp:2026.12.03"
CONFIG = """\
version: 1
warehouse: duckdb:///{where}/w.duckdb
metadata: local:///{where}/metadata.sqlite
tenants:
  - id: acme
    billing_accounts: ["111111111111"]
compute:
  services:
    - name: mcp-server
      memory: 1Gi
      max_instances: 3
      concurrency: 40
      timeout: 10m
"""


def dockerfile() -> dict[str, Any]:
    """ENTRYPOINT, CMD (exec form) and ENV of deploy/mcp/Dockerfile."""
    found: dict[str, Any] = {"ENV": {}}
    for line in (ROOT / "deploy" / "mcp" / "Dockerfile").read_text().splitlines():
        word, _, rest = line.partition(" ")
        if word in ("ENTRYPOINT", "CMD"):
            found[word] = json.loads(rest)
        elif word == "ENV":
            name, _, value = rest.partition("=")
            found["ENV"][name] = value
    return found


def render(tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> Any:
    config = tmp_path / "costflow.yaml"
    config.write_text(CONFIG.format(where=tmp_path))
    code = cli.main(["deploy", "render", "--target", "cloud-run", "--service", "mcp",
                     "--image", IMAGE, "--config", str(config), *flags])
    out = capsys.readouterr()
    assert code == 0, out.err
    return YAML(typ="safe").load(out.out)


def test_the_service_yaml_follows_the_compute_config(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    doc = render(tmp_path, capsys, "--provider", "gcp", "--secret-env",
                 "COSTFLOW_SECRETS_KEY=costflow-secrets-key:3",
                 "--service-account", "mcp-server@acme-finops.iam.gserviceaccount.com")
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"]) == (
        "serving.knative.dev/v1", "Service", "costflow-gcp-mcp")
    template = doc["spec"]["template"]
    assert template["metadata"]["annotations"] == {"autoscaling.knative.dev/minScale": "0",
                                                   "autoscaling.knative.dev/maxScale": "3"}
    spec = template["spec"]
    assert (spec["containerConcurrency"], spec["timeoutSeconds"]) == (40, 600)
    assert spec["serviceAccountName"] == "mcp-server@acme-finops.iam.gserviceaccount.com"
    (container,) = spec["containers"]
    assert container["image"] == IMAGE
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    docker = dockerfile()
    assert container["command"] == docker["ENTRYPOINT"]
    assert container["args"] == docker["CMD"] + ["--provider", "gcp"]
    port = int(docker["ENV"]["PORT"])
    assert container["ports"] == [{"name": "http1", "containerPort": port}]
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": port}
    # secrets come from Secret Manager, never as values
    assert container["env"] == [{"name": "COSTFLOW_SECRETS_KEY", "valueFrom": {
        "secretKeyRef": {"name": "costflow-secrets-key", "key": "3"}}}]
    assert all("value" not in e for e in container["env"])
    config_path = container["args"][container["args"].index("--config") + 1]
    (mount,) = container["volumeMounts"]
    assert config_path.startswith(mount["mountPath"] + "/") and mount["readOnly"]
    (volume,) = spec["volumes"]
    assert volume == {"name": mount["name"], "secret": {
        "secretName": "costflow-config",
        "items": [{"key": "latest", "path": Path(config_path).name}]}}


def test_values_cloud_run_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "costflow.yaml"
    config.write_text(CONFIG.format(where=tmp_path).replace("timeout: 10m", "timeout: 2h"))
    base = ["deploy", "render", "--target", "cloud-run", "--service", "mcp", "--config",
            str(config)]
    assert cli.main([*base, "--image", IMAGE]) == 2
    assert "over Cloud Run's 3600 s" in capsys.readouterr().err
    config.write_text(CONFIG.format(where=tmp_path))
    for flags, words in [(["--image", "not an image"], "image"),
                         (["--image", IMAGE, "--secret-env", "TOKEN"], "NAME=SECRET"),
                         (["--image", IMAGE, "--secret-env", "K=bad/secret"], "secret of K"),
                         (["--image", IMAGE, "--name", "Costflow_MCP"], "service name")]:
        assert cli.main([*base, *flags]) == 2
        assert words in capsys.readouterr().err


def test_the_entry_point_answers_its_health_check(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    doc = render(tmp_path, capsys)
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    args = list(container["args"])
    args[args.index("--host") + 1] = "127.0.0.1"             # not 0.0.0.0 on a test machine
    args[args.index("--config") + 1] = str(tmp_path / "costflow.yaml")  # the mounted file
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "import sys; from costflow.cli import main; "
               "sys.exit(main(sys.argv[1:]))", *args]
    process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "PORT": str(port)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, health = time.monotonic() + 20, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None, (shlex.join(command), process.communicate(timeout=5))
        assert health.status_code == 200 and health.json()["status"] == "ok"
        refused = httpx.post(f"http://127.0.0.1:{port}/mcp", json={})
        assert refused.status_code == 401
    finally:
        process.terminate()
        process.wait(10)
