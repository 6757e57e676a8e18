"""The deployment files keep the promises the README makes: validated against the Compose
specification's JSON schema and the Kubernetes schemas (both shipped in packages, so this
runs offline), the Dockerfile linted with hadolint, and in each the spool on a volume, a
non-root user, a read-only root, probes on the right endpoints and a stop grace longer than
the proxy's own."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes" / "billing-proxy.yaml"
KUBERNETES_VERSION = "1.33.0"  # the oldest release still supported upstream when this was written


def _seconds(text: str) -> float:
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[unit] for n, unit in re.findall(r"(\d+)([hms])", text))


def test_compose_file_is_valid_and_keeps_the_spool_on_a_volume():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    schema = get_builtin_schema("vendor.compose-spec")
    errors = [e.message for e in jsonschema.validators.validator_for(schema)(schema).iter_errors(compose)]
    assert errors == []

    proxy = compose["services"]["proxy"]
    home = proxy["environment"]["BILLING_PROXY_HOME"]
    volume, _, target = next(v for v in proxy["volumes"] if v.endswith(":" + home)).partition(":")
    assert target == home and volume in compose["volumes"]  # a named volume, not the container's layer
    assert not proxy["user"].startswith("0") and proxy["read_only"] is True and "/tmp" in proxy["tmpfs"]
    assert "/readyz" in " ".join(proxy["healthcheck"]["test"])
    assert _seconds(proxy["stop_grace_period"]) > float(proxy["environment"]["BILLING_PROXY_SHUTDOWN_GRACE"])
    assert compose["services"]["proxy"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def _hadolint() -> str:
    return shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def test_dockerfile_passes_hadolint_and_runs_unprivileged():
    done = subprocess.run([_hadolint(), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)[-1]
    assert user.split(":")[0] not in ("root", "0")
    home = re.search(r"BILLING_PROXY_HOME=(\S+)", dockerfile).group(1)
    assert f'VOLUME ["{home}"]' in dockerfile


def _kubernetes_documents() -> list[dict]:
    return [d for d in yaml.safe_load_all(KUBERNETES.read_text()) if d]


@pytest.mark.parametrize("document", _kubernetes_documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_kubernetes_manifest_validates_against_the_schemas(document):
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)  # raises on any error


def test_kubernetes_replicas_keep_their_spool_and_stop_gracefully():
    by_kind = {d["kind"]: d for d in _kubernetes_documents()}
    stateful = by_kind["StatefulSet"]
    assert stateful["spec"]["replicas"] > 1
    pod = stateful["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    claims = {c["metadata"]["name"] for c in stateful["spec"]["volumeClaimTemplates"]}
    assert mounts[env["BILLING_PROXY_HOME"]] in claims  # a volume per replica, kept across restarts

    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + float(env["BILLING_PROXY_SHUTDOWN_GRACE"])

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and mounts["/tmp"] == "tmp"
    service = by_kind["Service"]
    assert service["spec"]["selector"] == stateful["spec"]["template"]["metadata"]["labels"]
