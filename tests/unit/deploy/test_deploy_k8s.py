"""Kustomize overlays rendered offline with `kubectl kustomize`, every object validated
against the Kubernetes schemas (kubernetes-validate, strict), then the properties the
issue asks for checked on the objects themselves."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from shelfwise.cli.main import app
from shelfwise.deploy import DeploySpec
from shelfwise.serve.settings import ServeSettings

# The oldest version kubernetes-validate ships schemas for that has everything used here
# (CronJob timeZone, podFailurePolicy, preStop sleep); clusters at or above it accept them.
KUBERNETES_VERSION = "1.34.0"
OVERLAYS = ("dev", "prod", "canary")
SPEC = DeploySpec()
Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def built(rendered: Path, kubectl: str) -> dict[str, Objects]:
    """overlay -> the objects `kubectl kustomize` renders for it."""
    result: dict[str, Objects] = {}
    for overlay in OVERLAYS:
        completed = subprocess.run(
            [kubectl, "kustomize", str(rendered / "k8s" / "overlays" / overlay)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        result[overlay] = [doc for doc in yaml.safe_load_all(completed.stdout) if doc]
    return result


def _one(objects: Objects, kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        obj
        for obj in objects
        if obj["kind"] == kind
        and (
            component is None
            or obj["metadata"]["labels"].get("app.kubernetes.io/component") == component
        )
    ]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_passes_strict_schema_validation(
    built: dict[str, Objects], kubernetes_validate: ModuleType, overlay: str
) -> None:
    for obj in built[overlay]:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_unknown_fields(
    built: dict[str, Objects], kubernetes_validate: ModuleType
) -> None:
    deployment = _one(built["prod"], "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 3}}
    with pytest.raises(kubernetes_validate.ValidationError, match="'replica' was unexpected"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_kind_is_there_and_no_secret_is(built: dict[str, Objects], overlay: str) -> None:
    kinds = sorted(obj["kind"] for obj in built[overlay])
    judge = ["CronJob"] if overlay == "canary" else []  # + the canary judgement
    assert kinds == sorted(
        ["Namespace", "ServiceAccount", "ConfigMap", "ConfigMap", "Service",
         "PersistentVolumeClaim", "Deployment", "CronJob", "PodDisruptionBudget",
         "HorizontalPodAutoscaler", "Role", "RoleBinding", *judge]
    )  # fmt: skip
    namespaces = {obj["metadata"].get("namespace") for obj in built[overlay]} - {None}
    assert len(namespaces) == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployment_rolls_probes_limits_and_locks_down(
    built: dict[str, Objects], overlay: str
) -> None:
    deployment = _one(built[overlay], "Deployment")
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = container["ports"][0]
    assert port["containerPort"] == SPEC.port
    assert port["name"] == "http"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    _locked_down(pod, container, token=True)
    assert container["image"] == f"{SPEC.image}:{SPEC.tag}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cronjob_retrains_with_the_batch_image(built: dict[str, Objects], overlay: str) -> None:
    cronjob = _one(built[overlay], "CronJob", "retrain")
    assert cronjob["spec"]["schedule"] == SPEC.retrain_schedule
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    job = cronjob["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"{SPEC.image}-batch:{SPEC.tag}"
    command = container["args"][0]
    registered = {
        cmd.name or (cmd.callback.__name__ if cmd.callback else "")
        for cmd in app.registered_commands
    }
    assert command == "retrain"
    assert command in registered
    assert job["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [5]  # gate refused
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    _locked_down(pod, container)
    assert overlay != "dev" or cronjob["spec"]["suspend"] is True


def _locked_down(pod: dict[str, Any], container: dict[str, Any], *, token: bool = False) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # only the serving pods get a token: to start the retraining Job (role.yaml)
    assert pod["automountServiceAccountToken"] is token
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    writable = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/tmp", "/state"} <= writable  # the only writable places


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(built: dict[str, Objects], overlay: str) -> None:
    objects = built[overlay]
    deployment = _one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = _one(objects, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert _one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= (
        labels.items()
    )
    target = _one(objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    config_maps = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "ConfigMap"}
    (env_from,) = pod["containers"][0]["envFrom"]
    assert env_from["configMapRef"]["name"] in config_maps
    claim = _one(objects, "PersistentVolumeClaim")["metadata"]["name"]
    cron_pod = _one(objects, "CronJob", "retrain")["spec"]["jobTemplate"]["spec"]["template"][
        "spec"
    ]
    for spec in (pod, cron_pod):
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["state"]["persistentVolumeClaim"]["claimName"] == claim
        assert spec["serviceAccountName"] == _one(objects, "ServiceAccount")["metadata"]["name"]
    assert cron_pod["volumes"][1]["configMap"]["name"] in config_maps


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_admin_token_is_a_secret_reference(built: dict[str, Objects], overlay: str) -> None:
    container = _one(built[overlay], "Deployment")["spec"]["template"]["spec"]["containers"][0]
    (token,) = [env for env in container["env"] if env["name"] == "SHELFWISE_SERVE_ADMIN_TOKEN"]
    assert "value" not in token
    assert token["valueFrom"]["secretKeyRef"] == {"name": SPEC.admin_secret, "key": "token"}
    for config_map in (obj for obj in built[overlay] if obj["kind"] == "ConfigMap"):
        assert not any("TOKEN" in key for key in config_map["data"]), config_map["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_are_real_serve_settings(built: dict[str, Objects], overlay: str) -> None:
    """Every SHELFWISE_SERVE_* key is a ServeSettings field and the set of them validates."""
    objects = built[overlay]
    (serve_config,) = [
        obj["data"] for obj in objects
        if obj["kind"] == "ConfigMap" and "SHELFWISE_SERVE_REGISTRY_URI" in obj["data"]
    ]  # fmt: skip
    prefix = "SHELFWISE_SERVE_"
    fields = {key[len(prefix) :].lower(): value for key, value in serve_config.items()
              if key.startswith(prefix)}  # fmt: skip
    known = set(ServeSettings.model_fields)
    assert set(fields) <= known, set(fields) - known
    token = "k8s-9f3Xq2LmZ7vB4nR8wT1yH6cJ0dE5"  # noqa: S105 - a random-looking test token
    settings = ServeSettings.model_validate({**fields, "admin_token": token})
    assert settings.registry_model == SPEC.project
    assert settings.event_log_dir == Path("/state/events")
    if overlay == "canary":
        assert settings.canary_fraction == SPEC.canary_fraction
    else:
        assert settings.canary_fraction == 0
    if overlay == "dev":
        assert settings.online_store_url == "memory://"
    else:
        assert settings.online_store_url == SPEC.redis_url  # replicas share recent events


def test_overlays_differ_where_they_should(built: dict[str, Objects]) -> None:
    for overlay in OVERLAYS:  # the HPA owns the replica count: re-applying keeps the scale
        assert "replicas" not in _one(built[overlay], "Deployment")["spec"]
    hpa = {o: _one(built[o], "HorizontalPodAutoscaler")["spec"] for o in OVERLAYS}
    assert (hpa["dev"]["minReplicas"], hpa["dev"]["maxReplicas"]) == (
        SPEC.dev_replicas,
        SPEC.dev_replicas,
    )
    for overlay in ("prod", "canary"):
        assert (hpa[overlay]["minReplicas"], hpa[overlay]["maxReplicas"]) == (
            SPEC.prod_replicas,
            SPEC.max_replicas,
        )
    namespace = {o: _one(built[o], "Namespace")["metadata"]["name"] for o in OVERLAYS}
    assert namespace == {"dev": f"{SPEC.app}-dev", "prod": SPEC.app, "canary": SPEC.app}
    # the canary is the prod Deployment itself (same name), not a second Deployment
    names = {o: _one(built[o], "Deployment")["metadata"]["name"] for o in OVERLAYS}
    assert names["canary"] == names["prod"]
    for overlay in OVERLAYS:
        labels = _one(built[overlay], "Namespace")["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_canary_retraining_registers_challengers(built: dict[str, Objects], tmp_path: Path) -> None:
    from shelfwise.config import load_config
    from shelfwise.stores.event_log import event_log_dir

    on_pass = {}
    for overlay in OVERLAYS:
        (pipeline,) = [
            obj["data"]["shelfwise.yaml"] for obj in built[overlay]
            if obj["kind"] == "ConfigMap" and "shelfwise.yaml" in obj["data"]
        ]  # fmt: skip
        path = tmp_path / f"{overlay}.yaml"
        path.write_text(pipeline)
        config = load_config(path, environ={})
        assert config.project == SPEC.project
        assert event_log_dir(config) == Path("/state/events")  # what the pods write
        on_pass[overlay] = config.retrain.promote_to
    assert on_pass == {"dev": "champion", "prod": "champion", "canary": "challenger"}


def test_canary_overlay_judges_the_canary_on_a_schedule(built: dict[str, Objects]) -> None:
    cronjob = _one(built["canary"], "CronJob", "canary-judge")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:2] == ["canary", "judge"]
    assert container["image"] == f"{SPEC.image}-batch:{SPEC.tag}"
    _locked_down(pod, container)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_retrain_webhook_can_start_exactly_the_retraining_job(
    built: dict[str, Objects], kubernetes_validate: ModuleType, overlay: str
) -> None:
    from shelfwise.serve.k8s_jobs import job_from_cronjob

    cronjob = _one(built[overlay], "CronJob", "retrain")
    role = _one(built[overlay], "Role")
    binding = _one(built[overlay], "RoleBinding")
    account = _one(built[overlay], "ServiceAccount")["metadata"]["name"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (subject,) = binding["subjects"]
    assert (subject["kind"], subject["name"]) == ("ServiceAccount", account)
    rules = {rule["resources"][0]: rule for rule in role["rules"]}
    assert rules["cronjobs"]["resourceNames"] == [cronjob["metadata"]["name"]]
    assert set(rules["cronjobs"]["verbs"]) == {"get"}
    assert set(rules["jobs"]["verbs"]) == {"list", "create"}
    env = {
        key: value
        for obj in built[overlay]
        if obj["kind"] == "ConfigMap"
        for key, value in (obj.get("data") or {}).items()
    }
    assert env["SHELFWISE_SERVE_RETRAIN_CRONJOB"] == cronjob["metadata"]["name"]
    # the Job the serving pod would create passes the strict schema
    live = {**cronjob, "metadata": {**cronjob["metadata"], "uid": "0000-test"}}
    job = job_from_cronjob(live, trigger="alertmanager", alerts=["ShelfwiseItemPopularityDrift"])
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
