"""Where the batch role's heavy work runs (`compute:`): in this process, or on Ray.

The engine changes where blocks of work run, never what they produce: both engines give
the same results (tests compare them). So the section is left out of the config
fingerprint and out of every stage's cache key: a run started on one engine resumes on
the other, and its finished stages are reused.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from shelfwise.config._base import Section

# `local`, `auto`, `ray://host:port` (Ray Client) or `host:port` (a cluster's GCS).
_ADDRESS: Final = re.compile(r"local|auto|(ray://)?[A-Za-z0-9_.\-\[\]:]+:[0-9]{1,5}")


class ComputeConfig(Section):
    """The compute engine of the batch role: `local` (in-process) or `ray`."""

    engine: Literal["local", "ray"] = Field(
        default="local",
        description="local: blocks of work run in this process, in order. ray: they run "
        "as Ray tasks over the cluster's CPUs (install the `cluster` extra).",
    )
    address: str = Field(
        default="local",
        description="With engine ray: local starts a Ray inside this process (stopped at "
        "exit); auto joins the running cluster ($RAY_ADDRESS, else the one `ray start` "
        "began on this machine; what a KubeRay RayJob uses); host:port joins a cluster by "
        "its GCS address; ray://host:port through Ray Client (needs `ray[client]`).",
    )
    num_cpus: int | None = Field(
        default=None,
        ge=1,
        description="CPUs of a Ray started here (address local); null = every core. A "
        "cluster's own nodes decide their CPUs.",
    )
    object_store_mb: int | None = Field(
        default=None,
        ge=64,
        description="Object store of a Ray started here (address local), in MiB; null = "
        "Ray's default (30% of memory).",
    )
    max_retries: int = Field(
        default=3,
        ge=0,
        description="Times Ray reruns a block whose worker or node died (a lost machine, "
        "the OOM killer) before the run fails naming that block; errors raised by the "
        "work itself are never retried.",
    )

    tune_concurrent_trials: int | None = Field(
        default=None,
        ge=1,
        description="With engine ray: tuning trials run at once (Ray Tune); null = the "
        "cluster's CPUs. 1 gives exactly the local study's proposals and choice; more "
        "runs faster, and TPE's proposals after its seeded start-up trials then depend "
        "on which trials finished first.",
    )

    @field_validator("address")
    @classmethod
    def _known_address(cls, value: str) -> str:
        value = value.strip()
        if not _ADDRESS.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Ray address; use local, auto, HOST:PORT (a cluster's "
                "GCS, e.g. 10.0.0.5:6379) or ray://HOST:PORT (Ray Client)"
            )
        return value

    @model_validator(mode="after")
    def _local_only_sizes(self) -> ComputeConfig:
        sized = [
            name for name in ("num_cpus", "object_store_mb") if getattr(self, name) is not None
        ]
        if sized and self.address != "local":
            raise ValueError(
                f"{' and '.join(sized)} size a Ray started here and need address local, "
                f"not {self.address!r}: a cluster's nodes set their own resources "
                "(`ray start --num-cpus …`, the RayCluster's rayStartParams)"
            )
        return self
