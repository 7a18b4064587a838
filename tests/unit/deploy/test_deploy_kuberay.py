"""The batch role on KubeRay (overlay `ray`): `shelfwise run` and `shelfwise retrain` as
RayJobs, validated against KubeRay's RayJob schema (kuberay_rayjob_v1.schema.yaml: its
source and version are in its header) and their pod templates against Kubernetes' own."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from shelfwise.cli.main import app
from shelfwise.config import load_config, parse_overrides
from shelfwise.deploy import DeploySpec

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
SCHEMA = yaml.safe_load((HERE / "kuberay_rayjob_v1.schema.yaml").read_text())
KUBERNETES_VERSION = "1.34.0"  # as test_deploy_k8s.py
SPEC = DeploySpec()
Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def ray_overlay(rendered: Path, kubectl: str) -> Objects:
    """The objects `kubectl kustomize` renders for the ray overlay."""
    completed = subprocess.run(
        [kubectl, "kustomize", str(rendered / "k8s" / "overlays" / "ray")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc]


@pytest.fixture(scope="module")
def ray_jobs(ray_overlay: Objects) -> dict[str, dict[str, Any]]:
    """component (run, retrain) -> its RayJob."""
    jobs = [obj for obj in ray_overlay if obj["kind"] == "RayJob"]
    return {job["metadata"]["labels"]["app.kubernetes.io/component"]: job for job in jobs}


def _schema_errors(obj: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [
        f"{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(obj)
    ]


def _pods(job: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = job["spec"]["rayClusterSpec"]
    return [cluster["headGroupSpec"]["template"]] + [
        group["template"] for group in cluster["workerGroupSpecs"]
    ]


def test_the_schema_file_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_run_and_retrain_are_rayjobs_beside_the_prod_objects(
    ray_overlay: Objects, ray_jobs: dict[str, dict[str, Any]], kubernetes_validate: ModuleType
) -> None:
    assert sorted(ray_jobs) == ["retrain", "run"]
    others = [obj for obj in ray_overlay if obj["kind"] != "RayJob"]
    for obj in others:  # the prod overlay's objects, unchanged and still valid
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert {obj["kind"] for obj in others} >= {"Deployment", "CronJob", "ConfigMap"}
    namespaces = {obj["metadata"].get("namespace") for obj in ray_overlay} - {None}
    assert namespaces == {SPEC.app}


@pytest.mark.parametrize("component", ["run", "retrain"])
def test_each_rayjob_passes_the_kuberay_schema(
    ray_jobs: dict[str, dict[str, Any]], component: str
) -> None:
    assert _schema_errors(ray_jobs[component]) == []


@pytest.mark.parametrize("component", ["run", "retrain"])
def test_pod_templates_pass_the_kubernetes_schema_and_are_locked_down(
    ray_jobs: dict[str, dict[str, Any]], kubernetes_validate: ModuleType, component: str
) -> None:
    for template in _pods(ray_jobs[component]):
        as_object = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}}
        as_object["template"] = template
        kubernetes_validate.validate(as_object, KUBERNETES_VERSION, strict=True)
        pod = template["spec"]
        (container,) = pod["containers"]
        assert container["image"] == f"{SPEC.image}-batch:{SPEC.tag}"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False  # the pods call no Kubernetes API
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert mounts == {"/state", "/etc/shelfwise", "/tmp", "/dev/shm"}


def test_the_schema_refuses_what_kuberay_would(ray_jobs: dict[str, dict[str, Any]]) -> None:
    job = ray_jobs["run"]
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    (workers,) = cluster["workerGroupSpecs"]
    typo = {**job, "spec": {**job["spec"], "entryPoint": "shelfwise run"}}
    assert any("'entryPoint' was unexpected" in error for error in _schema_errors(typo))
    number = {**cluster, "headGroupSpec": {**head, "rayStartParams": {"num-cpus": 0}}}
    broken = {**job, "spec": {**job["spec"], "rayClusterSpec": number}}  # not the string "0"
    assert any("0 is not of type 'string'" in error for error in _schema_errors(broken))
    nameless = {key: value for key, value in workers.items() if key != "groupName"}
    no_group = {**cluster, "workerGroupSpecs": [nameless]}
    broken = {**job, "spec": {**job["spec"], "rayClusterSpec": no_group}}
    assert any("'groupName' is a required property" in e for e in _schema_errors(broken))


@pytest.mark.parametrize(("component", "command"), [("run", "run"), ("retrain", "retrain")])
def test_entrypoints_run_the_pipeline_on_the_jobs_ray_cluster(
    ray_jobs: dict[str, dict[str, Any]], component: str, command: str
) -> None:
    argv = shlex.split(ray_jobs[component]["spec"]["entrypoint"])
    registered = {
        cmd.name or (cmd.callback.__name__ if cmd.callback else "")
        for cmd in app.registered_commands
    }
    assert argv[:2] == ["shelfwise", command]
    assert command in registered
    assert argv[argv.index("--config") + 1] == "/etc/shelfwise/shelfwise.yaml"
    sets = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]
    config = load_config(None, environ={}, overrides=parse_overrides(sets))
    assert (config.compute.engine, config.compute.address) == ("ray", "auto")


def test_references_resolve(ray_overlay: Objects, ray_jobs: dict[str, dict[str, Any]]) -> None:
    names = {(obj["kind"], obj["metadata"]["name"]) for obj in ray_overlay}
    for job in ray_jobs.values():
        for template in _pods(job):
            pod = template["spec"]
            volumes = {volume["name"]: volume for volume in pod["volumes"]}
            # the generated ConfigMap's hashed name, not the bare one
            assert ("ConfigMap", volumes["config"]["configMap"]["name"]) in names
            claim = volumes["state"]["persistentVolumeClaim"]["claimName"]
            assert ("PersistentVolumeClaim", claim) in names
            assert ("ServiceAccount", pod["serviceAccountName"]) in names


def _mib(quantity: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return float(number) * (1024 if unit == "Gi" else 1)


def test_sizes_agree(ray_jobs: dict[str, dict[str, Any]]) -> None:
    """The object store fits the shared-memory volume, which fits the pod's memory."""
    for job in ray_jobs.values():
        spec = job["spec"]
        assert spec["suspend"] is True  # nothing starts on apply
        assert spec["shutdownAfterJobFinishes"] is True
        cluster = spec["rayClusterSpec"]
        assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # driver only
        (workers,) = cluster["workerGroupSpecs"]
        assert workers["replicas"] == workers["minReplicas"] == SPEC.ray_workers
        groups = [cluster["headGroupSpec"], workers]
        for group in groups:
            pod = group["template"]["spec"]
            store_mib = int(group["rayStartParams"]["object-store-memory"]) / 2**20
            shm = next(v for v in pod["volumes"] if v["name"] == "shm")["emptyDir"]
            assert shm["medium"] == "Memory"
            assert _mib(shm["sizeLimit"]) == store_mib == SPEC.ray_object_store_mb
            assert store_mib < _mib(pod["containers"][0]["resources"]["limits"]["memory"])


def test_ray_version_is_the_pinned_one() -> None:
    """KubeRay picks its job-submission command by rayVersion: it must be the image's Ray."""
    pins = (REPO_ROOT / "constraints.txt").read_text()
    assert re.search(rf"^ray=={re.escape(SPEC.ray_version)}$", pins, re.MULTILINE)
