"""Every environment variable shelfwise reads, in one table.

`environment_variables()` lists them: the process variables below, the two patterns that
reach any config key, and one `SHELFWISE_SERVE_<KEY>` per field of the `serve:` section,
made from `ServeSettings` itself (type, default and its description), so the table
cannot miss a field or keep one that is gone. `environment_table()` renders it as
Markdown.

| variable | type | default | meaning |
|---|---|---|---|
| `SHELFWISE_HOME` | path | `./.shelfwise` | state folder: runs, bundles, event log (unless `home:` is set in the config) |
| `SHELFWISE_BUNDLE_SIGNING_KEY` | secret | (none) | HMAC-SHA256 key: `package` signs bundles, loading requires the signature |
| `SHELFWISE_PRIVACY_KEY` | secret | (none) | HMAC-SHA256 key of pseudonymous user ids (`privacy:`), the same for run and serve |
| `SHELFWISE_SERVE_<KEY>` | per key | see `environment_table()` | `serve.<key>`: the online role's settings, one underscore after `SERVE` |
| `SHELFWISE_<SECTION>__<KEY>` | YAML scalar | – | any other config key, e.g. `SHELFWISE_EVALUATE__K_VALUES="[5, 10]"` |
| `SHELFWISE_<KEY>` | YAML scalar | – | a top-level config key, e.g. `SHELFWISE_PROJECT=my-shop` |

All of them go through the one config loader (`shelfwise.config.load_config`):
defaults < file < environment < `--set` flags. `SHELFWISE_SERVE__<KEY>` is an error
that names the variable to use instead.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from shelfwise.config import ENV_PREFIX, SERVE_ENV_PREFIX, ServeSettings

__all__ = [
    "BUNDLE_SIGNING_KEY",
    "CONFIG_PATTERNS",
    "ENV_PREFIX",
    "PROCESS",
    "SKIPPED",
    "EnvironmentVariable",
    "environment_table",
    "environment_variables",
    "serve_variables",
]


# Read by `shelfwise.package.integrity` (signing at package time, checking at load).
BUNDLE_SIGNING_KEY: Final = "SHELFWISE_BUNDLE_SIGNING_KEY"


@dataclass(frozen=True)
class EnvironmentVariable:
    """One variable: its name, value type, default (as text) and meaning."""

    name: str
    type: str
    default: str
    meaning: str


PROCESS: Final = (
    EnvironmentVariable(
        "SHELFWISE_HOME",
        "path",
        "./.shelfwise",
        "State folder: runs, bundles, MLflow store, event log (a config's `home:` wins).",
    ),
    EnvironmentVariable(
        BUNDLE_SIGNING_KEY,
        "secret",
        "(none)",
        "HMAC-SHA256 key (at least 32 random bytes) that signs bundles: the package stage "
        "writes a `signature` over the manifest and loading refuses a bundle without a "
        "valid one. Unset: bundles are neither signed nor checked for a signature.",
    ),
    EnvironmentVariable(
        "SHELFWISE_PRIVACY_KEY",
        "secret",
        "(none)",
        "HMAC-SHA256 key (at least 32 random characters) of pseudonymous user ids: "
        "required with privacy.pseudonymize_users (run and serve must share it) and by "
        "`shelfwise forget` / DELETE /v1/users/{id}. Changing it changes every pseudonym.",
    ),
)
CONFIG_PATTERNS: Final = (
    EnvironmentVariable(
        "SHELFWISE_<SECTION>__<KEY>",
        "YAML scalar",
        "–",
        "Any config key outside `serve:`, nested keys joined by `__`, e.g. "
        'SHELFWISE_EVALUATE__K_VALUES="[5, 10]"; beats the file, loses to --set.',
    ),
    EnvironmentVariable(
        "SHELFWISE_<KEY>",
        "YAML scalar",
        "–",
        "A top-level config key, e.g. SHELFWISE_PROJECT=my-shop.",
    ),
)
# Names with the prefix that the config loader leaves alone, and why (the loader's
# `shelfwise.config.PROCESS_VARIABLES`; tests/unit/config checks that they agree).
SKIPPED: Final = {
    "SHELFWISE_HOME": "read as the state folder (above)",
    BUNDLE_SIGNING_KEY: "the bundle signing key (above), a secret kept out of the config",
    "SHELFWISE_PRIVACY_KEY": "the privacy key (above), a secret kept out of the config",
    "SHELFWISE_CONFIG": "the config path the rendered CI pipelines pass to --config",
    "SHELFWISE_LOG_LEVEL": "reserved; not a config key",
    "SHELFWISE_RETRAIN_TRIGGER": "set by the server for SHELFWISE_SERVE_RETRAIN_COMMAND",
    "SHELFWISE_RETRAIN_ALERTS": "set by the server for SHELFWISE_SERVE_RETRAIN_COMMAND",
}


def serve_variables() -> tuple[EnvironmentVariable, ...]:
    """`SHELFWISE_SERVE_<KEY>` for every field of `ServeSettings`, in field order."""
    return tuple(
        EnvironmentVariable(
            SERVE_ENV_PREFIX + name.upper(),
            _type_name(info.annotation),
            _default_text(info),
            info.description or "",
        )
        for name, info in ServeSettings.model_fields.items()
    )


def environment_variables() -> tuple[EnvironmentVariable, ...]:
    """Every variable shelfwise reads: process, config patterns, then the serve settings."""
    return (*PROCESS, *CONFIG_PATTERNS, *serve_variables())


def environment_table() -> str:
    """`environment_variables()` as a Markdown table."""
    lines = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for variable in environment_variables():
        meaning = variable.meaning.replace("|", "\\|")
        lines.append(f"| `{variable.name}` | {variable.type} | {variable.default} | {meaning} |")
    return "\n".join(lines) + "\n"


def _type_name(annotation: Any) -> str:
    options = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else ()
    if options:
        return " or ".join(_type_name(o) for o in options if o is not type(None))
    if get_origin(annotation) is Literal:
        return " | ".join(str(value) for value in get_args(annotation))
    names = {Path: "path", SecretStr: "secret", bool: "bool", int: "int", float: "float"}
    return names.get(annotation, "str")


def _default_text(info: FieldInfo) -> str:
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
