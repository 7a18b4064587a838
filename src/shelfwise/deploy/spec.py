"""The parameters of a rendered deployment tree (`shelfwise deploy render`).

Every value that differs between two shops or two clusters is a field here; the
templates under `templates/` hold everything else. Defaults render the copy committed
under `deploy/` in the repository.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shelfwise._version import __version__
from shelfwise.errors import ConfigError

if TYPE_CHECKING:
    from shelfwise.config import ShelfwiseConfig

# Kubernetes resource quantities (a subset: plain numbers, milli-CPU, binary/decimal SI).
_QUANTITY: Final = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
_DNS_LABEL: Final = r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$"
# An image reference without tag: registry/path/name, lower case.
_IMAGE: Final = r"^[a-z0-9]+([._/:-][a-z0-9]+)*$"
_TAG: Final = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
_PINNED_IMAGE: Final = r"^[a-z0-9]+([._/-][a-z0-9]+)*:[A-Za-z0-9_][A-Za-z0-9_.-]*$"


class DeploySpec(BaseModel):
    """What `shelfwise deploy render` fills into the templates.

    Relations: `project` and `port` come from the shop's config (`spec_from_config`);
    the rest are deployment choices with defaults sized for a small shop.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    app: str = Field(
        default="shelfwise",
        pattern=_DNS_LABEL,
        description="Prefix of every Kubernetes object and the compose project name.",
    )
    project: str = Field(
        default="shop",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The config's project: the registered MLflow model the service follows.",
    )
    image: str = Field(
        default="ghcr.io/example/shelfwise",
        pattern=_IMAGE,
        description="Image repository of the serving image; the batch image is IMAGE-batch.",
    )
    tag: str = Field(default=__version__, pattern=_TAG, description="Image tag of both images.")
    python_image: str = Field(
        default="python:3.11-slim-bookworm",
        pattern=_PINNED_IMAGE,
        description="Base image of every Dockerfile stage, pinned by tag.",
    )
    torch_index_url: str = Field(
        default="https://download.pytorch.org/whl/cpu",
        pattern=r"^https://\S+$",
        description="Extra pip index with the CPU build of torch (PyPI's pulls CUDA).",
    )
    port: int = Field(default=8000, ge=1024, le=65535, description="Port the service listens on.")
    replicas: int = Field(default=2, ge=1, le=1000, description="Serving replicas (base, canary).")
    dev_replicas: int = Field(default=1, ge=1, le=1000, description="Serving replicas in dev.")
    prod_replicas: int = Field(default=3, ge=1, le=1000, description="Serving replicas in prod.")
    max_replicas: int = Field(default=10, ge=1, le=1000, description="HPA ceiling (base, prod).")
    cpu_target_percent: int = Field(
        default=70, ge=10, le=100, description="HPA target: average CPU use of the requests."
    )
    cpu_request: str = Field(default="500m", pattern=_QUANTITY)
    cpu_limit: str = Field(default="2", pattern=_QUANTITY)
    memory_request: str = Field(default="1Gi", pattern=_QUANTITY)
    memory_limit: str = Field(default="2Gi", pattern=_QUANTITY)
    batch_cpu_request: str = Field(default="2", pattern=_QUANTITY)
    batch_cpu_limit: str = Field(default="4", pattern=_QUANTITY)
    batch_memory_request: str = Field(default="4Gi", pattern=_QUANTITY)
    batch_memory_limit: str = Field(default="8Gi", pattern=_QUANTITY)
    state_storage: str = Field(
        default="20Gi", pattern=_QUANTITY, description="Size of the state volume (PVC)."
    )
    ray_workers: int = Field(
        default=2, ge=1, le=1000, description="Worker pods of a RayJob's cluster (ray overlay)."
    )
    ray_worker_cpu: str = Field(
        default="4", pattern=_QUANTITY, description="CPU of each Ray worker pod (request = limit)."
    )
    ray_worker_memory: str = Field(
        default="8Gi", pattern=_QUANTITY, description="Memory of each Ray worker pod."
    )
    ray_object_store_mb: int = Field(
        default=2048,
        ge=64,
        description="Ray object store of each pod, in MiB: shared memory counted in the "
        "pod's memory limit (the fitted models the tasks share live there).",
    )
    ray_version: str = Field(
        default="2.60.0",
        pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$",
        description="Ray in the batch image (constraints.txt); KubeRay picks its job "
        "submission command by it.",
    )
    ray_ttl_seconds: int = Field(
        default=600,
        ge=0,
        description="Seconds a RayJob's cluster stays after the job ends (to read its logs).",
    )
    retrain_schedule: str = Field(
        default="0 3 * * *", description="Cron schedule of the retraining CronJob (UTC)."
    )
    registry_uri: str = Field(
        default="sqlite:////state/mlflow/mlflow.db",
        pattern=r"^\S+$",
        description="MLflow registry the service follows (champion / challenger aliases).",
    )
    admin_secret: str = Field(
        default="shelfwise-admin-token",
        pattern=_DNS_LABEL,
        description="Name of the Secret holding the admin token under the key `token`.",
    )
    privacy_secret: str = Field(
        default="shelfwise-privacy-key",
        pattern=_DNS_LABEL,
        description="Name of the Secret holding the key user ids are pseudonymised with "
        "(SHELFWISE_PRIVACY_KEY, at least 32 characters) under the key `key`: the serving "
        "pods and the batch jobs must share it.",
    )
    canary_fraction: float = Field(
        default=0.1, gt=0.0, le=1.0, description="Users the challenger answers (canary)."
    )
    redis_url: str = Field(
        default="redis://redis:6379/0",
        pattern=r"^redis://\S+$",
        description="Online store of the prod overlay (a Redis the platform provides).",
    )
    redis_image: str = Field(default="redis:7.4.2-alpine", pattern=_PINNED_IMAGE)
    prometheus_image: str = Field(default="prom/prometheus:v3.1.0", pattern=_PINNED_IMAGE)
    alertmanager_image: str = Field(default="prom/alertmanager:v0.28.0", pattern=_PINNED_IMAGE)
    grafana_image: str = Field(default="grafana/grafana:11.4.0", pattern=_PINNED_IMAGE)
    compose_context: str = Field(
        default="../..",
        pattern=r"^\S+$",
        description="Build context of compose, relative to the compose folder: the repo root.",
    )
    monitoring_dir: str = Field(
        default="../monitoring",
        pattern=r"^\S+$",
        description="deploy/monitoring relative to the compose folder.",
    )

    @field_validator("retrain_schedule")
    @classmethod
    def _five_cron_fields(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5 or not all(re.fullmatch(r"[0-9*/,\-A-Za-z?]+", f) for f in fields):
            raise ValueError(f"{value!r} is not a 5-field cron schedule (e.g. '0 3 * * *')")
        return " ".join(fields)

    def values(self) -> dict[str, str]:
        """The template values: every field as text, plus derived names."""
        values = {name: _text(value) for name, value in self.model_dump().items()}
        values["batch_image"] = f"{self.image}-batch"
        values["ray_object_store_bytes"] = str(self.ray_object_store_mb * 1024 * 1024)
        values["version"] = __version__
        return values


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def spec_from_config(
    config: ShelfwiseConfig | None = None, overrides: Mapping[str, Any] | None = None
) -> DeploySpec:
    """A spec from the shop's config (project, port) and `overrides` (CLI flags).

    Raises:
        ConfigError: an unknown key or a value that fails its check, named.
    """
    values: dict[str, Any] = {}
    if config is not None:
        values["project"] = config.project
        values["port"] = config.serve.port
    values.update(overrides or {})
    unknown = sorted(set(values) - set(DeploySpec.model_fields))
    if unknown:
        raise ConfigError(
            f"unknown deploy parameter(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted(DeploySpec.model_fields))}"
        )
    try:
        return DeploySpec.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"deploy parameters are invalid: {problems}") from None
