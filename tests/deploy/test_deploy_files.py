"""compose.yaml and deploy/kubernetes/ against their published schemas, and against the node's own list of services
(towntip.kernel.bus.subjects.SERVICES): a service added there fails here until compose and Kubernetes run it.

No Docker and no cluster: compose.yaml is checked with the compose-spec JSON schema that check-jsonschema ships
(its vendored copy, with its licence, in the installed package: check_jsonschema/builtin_schemas/vendor/), every
Kubernetes manifest with kubernetes-validate (Kubernetes' own OpenAPI schemas, shipped in that package), the
kustomization rendered by `kubectl kustomize` where kubectl is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from towntip.kernel.bus import subjects
from towntip.node.deploy_secrets import write_node_secrets

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "tsurugashima"
PROCESSES = (*subjects.SERVICES, "gateway")
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests are meant for (policy/v1, networking/v1, seccomp)
# Custom resources kubernetes-validate has no schema for (it knows Kubernetes' own kinds only): checked by hand below.
CUSTOM_KINDS = {("postgresql.cnpg.io/v1", "Cluster"): "CloudNativePG's CRD, not part of Kubernetes' schemas"}


def load_compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def rendered(kustomization_dir: Path) -> list[dict[str, Any]]:
    """The kustomization as kubectl renders it; without kubectl, the listed files as they are (no overlay applied)."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run([kubectl, "kustomize", str(kustomization_dir)], capture_output=True, text=True,
                             timeout=120, check=True).stdout
        return [d for d in yaml.safe_load_all(out) if d]
    return [d for f in sorted(BASE.rglob("*.yaml")) if f.name != "kustomization.yaml"
            and f.name != "otel-collector-config.yaml" for d in yaml_docs(f)]


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return rendered(OVERLAY)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


# -- compose ----------------------------------------------------------------------------------------------------


def test_compose_is_valid_by_the_compose_spec_schema() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(load_compose())]
    assert errors == []


def test_compose_runs_every_service_of_the_node_twice_with_a_healthcheck() -> None:
    services = load_compose()["services"]
    assert set(PROCESSES) <= set(services), f"not in compose.yaml: {set(PROCESSES) - set(services)}"
    assert {"nats", "postgres", "otel-collector"} <= set(services)
    for name in subjects.SERVICES:
        svc = services[name]
        assert svc["command"] == ["python", "-m", subjects.SERVICE_MODULES[name]]
        assert svc["deploy"]["replicas"] >= 2, name
        assert svc["healthcheck"]["test"] == ["CMD", "python", "-m", "towntip.cli.health", name]
        assert svc["environment"]["TOWNTIP_DATABASE_SCHEMA"] == name  # its own schema
        assert svc["environment"]["TOWNTIP_NATS_URL_FILE"] == f"/run/secrets/nats-url-svc-{name}"  # its own user
    gateway = services["gateway"]
    assert gateway["environment"]["TOWNTIP_SERVICES"] == ",".join(subjects.SERVICES)
    assert "healthcheck" in gateway and "healthcheck" in services["nats"] and "healthcheck" in services["postgres"]


def test_compose_secrets_come_from_files_that_towntip_node_secrets_makes(tmp_path: Path) -> None:
    compose = load_compose()
    made = {p.name for p in write_node_secrets(tmp_path, node="tsurugashima")}
    declared = compose["secrets"]
    for name, spec in declared.items():
        path = spec["file"]
        assert path.startswith("./deploy/local/secrets/"), name  # .gitignored (deploy/.gitignore)
        assert Path(path).name in made, f"{name}: towntip node secrets does not make {path}"
    for name, svc in compose["services"].items():
        wanted = {s if isinstance(s, str) else s["source"] for s in svc.get("secrets", [])}
        assert wanted <= set(declared), name
        env = svc.get("environment", {})
        for key, value in env.items():
            if key.endswith("_FILE") and key.startswith("TOWNTIP_"):
                assert value.removeprefix("/run/secrets/") in wanted, f"{name}: {key} names no secret it has"
        # No secret in an environment variable itself.
        assert not {"TOWNTIP_ADMIN_TOKEN", "TOWNTIP_CARD_KEY", "POSTGRES_PASSWORD"} & set(env), name
        assert "@" not in str(env.get("TOWNTIP_NATS_URL", "")) and "@" not in str(env.get("TOWNTIP_DATABASE_URL", ""))
    assert (ROOT / "deploy" / ".gitignore").read_text().split() == ["local/"]


# -- Kubernetes -------------------------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_file_and_they_exist() -> None:
    for folder in (BASE, OVERLAY):
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        listed = kustomization["resources"]
        for entry in listed:
            assert (folder / entry).exists(), f"{folder.name}: {entry} is listed but missing"
        files = [str(p.relative_to(folder)) for p in folder.rglob("*.yaml")]
        patches = [p["path"] for p in kustomization.get("patches", [])]
        generated = [f for g in kustomization.get("configMapGenerator", []) for f in g.get("files", [])]
        unlisted = set(files) - set(listed) - set(patches) - set(generated) - {"kustomization.yaml"}
        assert not unlisted, f"{folder.name}: files not in kustomization.yaml: {unlisted}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed: the listing test still runs")
def test_base_and_overlay_render_with_kustomize() -> None:
    assert rendered(BASE)
    docs = rendered(OVERLAY)
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"towntip-tsurugashima"}


def test_every_manifest_is_valid_by_the_kubernetes_schemas(manifests: list[dict[str, Any]]) -> None:
    checked = 0
    for doc in manifests:
        key = (doc["apiVersion"], doc["kind"])
        if key in CUSTOM_KINDS:
            continue  # CUSTOM_KINDS says why; test_postgres_is_a_cloudnativepg_cluster checks it
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        checked += 1
    assert checked >= 2 * len(PROCESSES)


def test_every_service_and_the_gateway_is_deployed_twice_with_probes_and_a_disruption_budget(
        manifests: list[dict[str, Any]]) -> None:
    deployments = by_kind(manifests, "Deployment")
    budgets = by_kind(manifests, "PodDisruptionBudget")
    assert set(PROCESSES) <= set(deployments), f"no Deployment for {set(PROCESSES) - set(deployments)}"
    for name, dep in deployments.items():
        spec = dep["spec"]
        assert spec["replicas"] >= 2, name
        pdb = budgets.get(name)
        assert pdb is not None, f"{name}: no PodDisruptionBudget"
        assert pdb["spec"]["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for c in pod["containers"]:
            assert "readinessProbe" in c and "livenessProbe" in c, name
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], name
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
    for name in subjects.SERVICES:
        (c,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert c["command"] == ["python", "-m", subjects.SERVICE_MODULES[name]]
        assert c["readinessProbe"]["exec"]["command"] == ["python", "-m", "towntip.cli.health", name]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["TOWNTIP_DATABASE_SCHEMA"] == name
    (gw,) = deployments["gateway"]["spec"]["template"]["spec"]["containers"]
    assert {e["name"]: e.get("value") for e in gw["env"]}["TOWNTIP_SERVICES"] == ",".join(subjects.SERVICES)
    assert "gateway" in by_kind(manifests, "Service") and "gateway" in by_kind(manifests, "Ingress")


def test_secrets_are_referenced_never_committed_and_each_process_gets_its_own_nats_user(
        manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    assert not [d for d in manifests if d["kind"] == "Secret"]
    made = {p.name for p in write_node_secrets(tmp_path, node="tsurugashima")}
    for name, dep in by_kind(manifests, "Deployment").items():
        for vol in dep["spec"]["template"]["spec"].get("volumes", []):
            secret = vol.get("secret")
            if secret and secret["secretName"] == "towntip-node":
                for item in secret["items"]:
                    assert item["key"] in made, f"{name}: towntip node secrets makes no {item['key']}"
                if vol["name"] == "nats-url":
                    own = ["nats-url-gateway"] if name == "gateway" else [f"nats-url-svc-{name}", "nats-url-probe"]
                    assert [i["key"] for i in secret["items"]] == own


def test_network_policies_deny_by_default_and_open_only_the_gateway(manifests: list[dict[str, Any]]) -> None:
    policies = by_kind(manifests, "NetworkPolicy")
    deny = policies["towntip-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    ingress_to = {p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
                  for p in policies.values() if "ingress" in p["spec"]}
    assert not ingress_to & set(subjects.SERVICES), "a service is reachable: only the gateway may be"
    gateway = policies["gateway-ingress"]["spec"]["ingress"]
    assert [r["from"][0]["namespaceSelector"]["matchLabels"] for r in gateway] == [
        {"kubernetes.io/metadata.name": "ingress-nginx"}]
    egress = policies["towntip-processes-egress"]["spec"]["egress"]
    ports = {p["port"] for rule in egress for p in rule["ports"]}
    assert ports == {4222, 5432, 4318, 53}  # NATS, PostgreSQL, the collector, DNS


def test_postgres_is_a_cloudnativepg_cluster(manifests: list[dict[str, Any]]) -> None:
    (cluster,) = [d for d in manifests if (d["apiVersion"], d["kind"]) == ("postgresql.cnpg.io/v1", "Cluster")]
    assert cluster["metadata"]["name"] == "towntip-pg"  # its Secret towntip-pg-app is what the services mount
    assert cluster["spec"]["instances"] >= 2 and cluster["spec"]["storage"]["size"]
    assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "towntip", "owner": "towntip"}


def test_nats_values_make_a_jetstream_cluster_with_the_nodes_users(manifests: list[dict[str, Any]]) -> None:
    values = yaml.safe_load((K8S / "nats-values.yaml").read_text())
    config = values["config"]
    assert config["cluster"]["enabled"] is True and config["cluster"]["replicas"] >= 3
    assert config["jetstream"]["enabled"] is True
    node_config = by_kind(manifests, "ConfigMap")
    (node,) = [c for name, c in node_config.items() if name.startswith("towntip-node")]
    assert config["jetstream"]["merge"]["domain"] == node["data"]["TOWNTIP_NODE_ID"]  # JetStream domain = node id
    assert config["merge"]["$include"] == "auth/auth.conf"
    (volume,) = [p["value"] for p in values["podTemplate"]["patch"] if p["value"]["name"] == "towntip-nats-auth"]
    assert volume["secret"] == {"secretName": "towntip-node", "items": [{"key": "nats-auth.conf", "path": "auth.conf"}]}
    (mount,) = [p["value"] for p in values["container"]["patch"] if p["value"]["name"] == "towntip-nats-auth"]
    assert mount["mountPath"] == "/etc/nats-config/auth"


def test_the_collector_pipeline_is_the_same_in_compose_and_kubernetes() -> None:
    assert (BASE / "otel-collector-config.yaml").read_text() == (ROOT / "deploy" / "otel-collector.yaml").read_text()
