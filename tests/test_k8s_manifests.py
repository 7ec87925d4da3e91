"""deploy/k8s/, checked offline (no cluster here): every manifest against the Kubernetes API
schema (`kubernetes-validate`, which ships the schemas), the kustomization complete, the
worker's command and environment exactly what `sweeps worker` accepts, and no secret value
in any manifest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.31"  # a version every maintained cluster runs or has passed
SECRET = "sweeps-secrets"


def _kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name in _kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                found.append((name, doc))
    return found


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("containers", []))


def _by_name(kind: str, name: str) -> dict[str, Any]:
    return next(doc for _, doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name)


@pytest.mark.parametrize("source,doc", manifests(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_manifest_is_valid_against_the_api_schema(source: str, doc: dict[str, Any]) -> None:
    # strict: an unknown or misspelt field is an error, as `kubectl apply --validate=strict` makes it
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_kustomization_lists_every_manifest_and_generates_the_secret_from_the_env_file() -> None:
    k = _kustomization()
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(k["resources"]) == on_disk
    (gen,) = k["secretGenerator"]
    assert gen["name"] == SECRET and gen["envs"] == ["sweeps.env"]
    assert "deploy/k8s/sweeps.env" in (ROOT / ".gitignore").read_text().splitlines()
    # the Secret's keys are the compose stack's: every key a manifest reads is in .env.example
    env_keys = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                if re.match(r"^[A-Z_]+=", line)}
    used = {ref["key"] for _, doc in manifests() for ref in _secret_refs(doc)}
    assert used and used <= env_keys, used - env_keys
    assert {ref["name"] for _, doc in manifests() for ref in _secret_refs(doc)} == {SECRET}


def _secret_refs(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node["secretKeyRef"]] if "secretKeyRef" in node else []
        return found + [r for v in node.values() for r in _secret_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _secret_refs(v)]
    return []


def test_no_secret_value_appears_in_any_manifest() -> None:
    assert not [d for _, d in manifests() if d["kind"] == "Secret"]  # generated at apply time only
    for source, doc in manifests():
        for container in _containers(doc):
            for env in container.get("env", []):
                if re.search(r"PASSWORD|SECRET|TOKEN|KEY", env["name"]):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], (source, env)
                value = str(env.get("value", ""))
                # a URL's password is a reference Kubernetes expands, never a literal
                creds = re.match(r"^[\w+]+://[^:/@]+:([^@]+)@", value)
                assert creds is None or creds.group(1) in ("$(POSTGRES_PASSWORD)",
                                                           "$(MLFLOW_DB_PASSWORD)"), (source, env)
    text = "\n".join(p.read_text() for p in K8S.glob("*.yaml"))
    assert not re.search(r"(?i)password:\s*\S", text)


def _expand(env: list[dict[str, Any]], value: str) -> str:
    """Kubernetes' $(VAR) expansion, with placeholders for what it reads from elsewhere."""
    known = {e["name"]: e.get("value", f"<{e['name']}>") for e in env}
    known["JOB_COMPLETION_INDEX"] = "3"
    return re.sub(r"\$\((\w+)\)", lambda m: known[m.group(1)], value)


def test_worker_command_and_environment_are_what_sweeps_worker_accepts() -> None:
    from sweeps.cli import app

    job = _by_name("Job", "sweeps-worker")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] >= 1 and spec["backoffLimit"] >= 1
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    from sweeps.run.stopping import GRACE_S

    assert pod["terminationGracePeriodSeconds"] > GRACE_S  # a SIGTERMed worker finishes its cleanup
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = container["env"]
    argv = [_expand(env, a) for a in container["command"]]
    assert argv[:2] == ["sweeps", "worker"]
    command = typer.main.get_command(app)
    ctx = command.commands["worker"].make_context("worker", argv[2:])  # parses, or raises
    assert ctx.params["study"] == "mnist" and ctx.params["index"] == 3
    # the launch creates the sweep the workers join
    launch = _containers(_by_name("Job", "sweeps-launch"))[0]["command"]
    assert launch[:2] == ["sweeps", "launch"] and "sweep=mnist" in launch and "sweep.workers=0" in launch

    names = {e["name"] for e in env}
    sources = [*ROOT.glob("sweeps/**/*.py"), *ROOT.glob("trainer/**/*.py"), *ROOT.glob("conf/**/*.yaml")]
    read_by_us = "\n".join(p.read_text() for p in sources)
    mlflow_reads = {"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
    expanded_only = {"POSTGRES_PASSWORD", "JOB_COMPLETION_INDEX"}  # inputs of $(...) above
    library_reads = {"MPLCONFIGDIR"}  # matplotlib's, for the read-only root filesystem
    for name in names - mlflow_reads - expanded_only - library_reads:
        assert name in read_by_us, f"{name}: read by nothing in sweeps/, trainer/ or conf/"
    storage = _expand(env, next(e["value"] for e in env if e["name"] == "SWEEPS_STORAGE"))
    postgres = _by_name("Service", "postgres")["spec"]["ports"][0]["port"]
    assert storage == f"postgresql://sweeps:<POSTGRES_PASSWORD>@postgres:{postgres}/sweeps"
    mlflow = _by_name("Service", "mlflow")["spec"]["ports"][0]["port"]
    assert next(e["value"] for e in env if e["name"] == "MLFLOW_TRACKING_URI") == f"http://mlflow:{mlflow}"
    # the shared checkpoint volume is where the launch puts sweep.checkpoint_dir
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert "sweep.checkpoint_dir=/runs" in launch and mounts["runs"] == "/runs"
    claim = next(v for v in pod["volumes"] if v["name"] == "runs")["persistentVolumeClaim"]["claimName"]
    assert "ReadWriteMany" in _by_name("PersistentVolumeClaim", claim)["spec"]["accessModes"]


def test_every_pod_runs_as_non_root() -> None:
    for source, doc in manifests():
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        if pod is not None:
            assert pod["securityContext"]["runAsNonRoot"] is True, source


def _pods() -> list[tuple[str, dict[str, Any]]]:
    return [(source, doc["spec"]["template"]["spec"]) for source, doc in manifests()
            if doc.get("spec", {}).get("template", {}).get("spec")]


def test_every_pod_and_container_runs_with_least_privilege() -> None:
    for source, pod in _pods():
        assert pod["automountServiceAccountToken"] is False, source
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, source
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, source
            assert ctx["readOnlyRootFilesystem"] is True, source
            assert ctx["capabilities"] == {"drop": ["ALL"]}, source
            assert "add" not in ctx["capabilities"]


def test_workers_log_in_as_ordinary_users_and_only_their_servers_hold_the_admin_passwords() -> None:
    holders: dict[str, set[str]] = {}
    for _, doc in manifests():
        for ref in _secret_refs(doc):
            holders.setdefault(ref["key"], set()).add(doc["metadata"]["name"])
    assert holders["POSTGRES_SUPERUSER_PASSWORD"] == {"postgres"}
    assert holders["MLFLOW_ADMIN_PASSWORD"] == {"mlflow", "sweeps-mlflow-user"}
    for job in ("sweeps-launch", "sweeps-worker"):
        env = {e["name"]: e for e in _containers(_by_name("Job", job))[0]["env"]}
        assert env["MLFLOW_TRACKING_USERNAME"]["value"] == "sweeps"
        assert env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "MLFLOW_SWEEPS_PASSWORD"
        assert env["SWEEPS_STORAGE"]["value"].startswith("postgresql://sweeps:")
    postgres = {e["name"]: e for e in _containers(_by_name("StatefulSet", "postgres"))[0]["env"]}
    assert postgres["POSTGRES_USER"]["value"] != "sweeps"  # the superuser is not the sweeps' role
    init = _kustomization()["configMapGenerator"][0]["files"]
    assert "postgres-init/create-sweeps-db.sh" in init
    assert "NOSUPERUSER" in (K8S / "postgres-init" / "create-sweeps-db.sh").read_text()


def test_only_the_sweep_s_pods_reach_postgresql_and_mlflow() -> None:
    policies = {doc["spec"]["podSelector"]["matchLabels"]["app"]: doc for _, doc in manifests()
                if doc["kind"] == "NetworkPolicy"}
    assert set(policies) == {"postgres", "mlflow"}
    for app, allowed in (("postgres", {"sweeps-launch", "sweeps-worker", "mlflow"}),
                         ("mlflow", {"sweeps-launch", "sweeps-worker", "sweeps-mlflow-user"})):
        (rule,) = policies[app]["spec"]["ingress"]
        (source,) = rule["from"]
        (expr,) = source["podSelector"]["matchExpressions"]
        assert expr["operator"] == "In" and set(expr["values"]) == allowed
    labels = {pod_doc["spec"]["template"]["metadata"]["labels"]["app"] for _, pod_doc in manifests()
              if pod_doc.get("spec", {}).get("template")}
    assert {"sweeps-launch", "sweeps-worker", "sweeps-mlflow-user", "mlflow", "postgres"} <= labels
