"""Settings of the online role, read from the environment by the app factory.

Environment variables (prefix `SHELFWISE_SERVE_`), each declared once here:

======================================  =======  ==========  ================================
variable                                type     default     meaning
======================================  =======  ==========  ================================
SHELFWISE_SERVE_BUNDLE_PATH             path     (none)      bundle folder, or a state folder
                                                             whose latest stored version loads
SHELFWISE_SERVE_HOST                    str      127.0.0.1   interface to listen on
SHELFWISE_SERVE_PORT                    int      8000        TCP port
SHELFWISE_SERVE_MAX_K                   int      100         largest k a request may ask for
SHELFWISE_SERVE_DEFAULT_K               int      10          k when a request gives none
SHELFWISE_SERVE_EXCLUDE_SEEN            bool     true        never recommend a user's items
SHELFWISE_SERVE_MAX_BODY_BYTES          int      65536       larger request bodies get 413
SHELFWISE_SERVE_VERIFY_BUNDLE           bool     true        re-hash bundle files on load
SHELFWISE_SERVE_LOG_LEVEL               str      info        uvicorn log level
======================================  =======  ==========  ================================

Nothing is read at import time: `create_app` builds `ServeSettings()` when it is not
given one, and routes receive it from the app's state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shelfwise.config import ServeConfig

ENV_PREFIX = "SHELFWISE_SERVE_"


class ServeSettings(BaseSettings):
    """Process settings of `shelfwise serve`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    bundle_path: Path | None = Field(
        default=None,
        description="Bundle folder, or a state folder whose latest stored version is "
        "served. None starts the service not ready (readyz answers 503).",
    )
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8000, ge=1, le=65535)
    max_k: int = Field(default=100, ge=1, le=10_000, description="Largest k a request may ask.")
    default_k: int = Field(default=10, ge=1, description="k when a request gives none.")
    exclude_seen: bool = Field(default=True, description="Never recommend a user's own items.")
    max_body_bytes: int = Field(
        default=65_536, ge=1024, description="Request bodies above this size get 413."
    )
    verify_bundle: bool = Field(default=True, description="Re-hash every bundle file on load.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @model_validator(mode="after")
    def _default_k_within_max(self) -> Self:
        if self.default_k > self.max_k:
            raise ValueError(f"default_k ({self.default_k}) must not exceed max_k ({self.max_k})")
        return self

    @classmethod
    def from_config(cls, config: ServeConfig, **overrides: Any) -> ServeSettings:
        """Settings from the config's `serve:` section, the environment, then `overrides`.

        Precedence, lowest first: the config section (itself defaults < file <
        `SHELFWISE_SERVE__*`), `SHELFWISE_SERVE_*` variables, then `overrides` (CLI flags).
        """
        values: dict[str, Any] = {
            "host": config.host,
            "port": config.port,
            "max_k": config.max_k,
            "default_k": config.default_k,
            "exclude_seen": config.exclude_seen,
        }
        from_env = cls()
        values.update({name: getattr(from_env, name) for name in from_env.model_fields_set})
        values.update(overrides)
        return cls(**values)
