"""Loading the configuration: the file, the environment and the flags, in that order.

Precedence, lowest first: defaults in the models < the YAML file < environment
variables < overrides (the CLI's `--set` and its other flags).

Environment variables:

- `SHELFWISE_SERVE_<KEY>` sets `serve.<key>` (one underscore after SERVE: the names the
  Kubernetes manifests use). `SHELFWISE_SERVE__<KEY>` is refused with the name to use.
- `SHELFWISE_<SECTION>__<KEY>` sets any other key, nested keys joined by `__`, e.g.
  `SHELFWISE_EVALUATE__K_VALUES="[5, 10]"`; `SHELFWISE_<KEY>` a top-level key.
- Values are YAML scalars, except for text keys (strings, paths, secrets), which take the
  text as written (a token of digits stays text); `null`, `~` or nothing unsets those.
- `PROCESS_VARIABLES` (`SHELFWISE_HOME`, ...) are not config keys and are skipped.

Every variable is listed in `shelfwise.settings`. Unknown keys and wrong types are
errors that name the key path and the expected type. Relative data paths and `home` are
resolved against the folder holding the config file.
"""

from __future__ import annotations

import os
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from shelfwise.config.data import SourceConfig
from shelfwise.config.root import ShelfwiseConfig
from shelfwise.config.serve import SERVE_ENV_PREFIX
from shelfwise.errors import ConfigError

ENV_PREFIX: Final = "SHELFWISE_"
# Variables with the prefix that are not config keys (see shelfwise.settings): the state
# folder, names the CI templates and the server's retrain trigger set for their commands.
PROCESS_VARIABLES: Final = frozenset(
    {
        "SHELFWISE_HOME",
        "SHELFWISE_BUNDLE_SIGNING_KEY",  # a secret: never a config value (shelfwise.settings)
        "SHELFWISE_PRIVACY_KEY",  # a secret too: the keyed hash of user ids (shelfwise.privacy)
        "SHELFWISE_LOG_LEVEL",
        "SHELFWISE_CONFIG",
        "SHELFWISE_RETRAIN_TRIGGER",
        "SHELFWISE_RETRAIN_ALERTS",
    }
)
# Keys that moved, so that an old config is told where its value goes now.
_MOVED_KEYS: Final = {"retrain.event_log": "serve.event_log_dir"}
_TEXT_TYPES: Final = (str, Path, SecretStr)


def load_config(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ShelfwiseConfig:
    """Load the config with precedence defaults < file < environment < overrides.

    Args:
        path: the YAML file; None uses defaults only.
        environ: environment to read `SHELFWISE_*` keys from (default `os.environ`).
        overrides: dotted keys from CLI flags, e.g. {"serve.port": 9000}.

    Raises:
        ConfigError: unreadable file, unknown keys or wrong types, naming each key path;
            a `SHELFWISE_SERVE__<KEY>` variable, naming the one to use instead.
    """
    raw: dict[str, Any] = {}
    base_dir = Path.cwd()
    if path is not None:
        raw = _read_yaml(path)
        base_dir = path.resolve().parent
    env = os.environ if environ is None else environ
    for key, text in sorted(env.items()):
        dotted = config_key_of(key)
        if dotted is not None:
            value = _env_value(dotted, text)
            _set_dotted(raw, dotted, value, origin=f"environment variable {key}")
    if "home" not in raw and env.get("SHELFWISE_HOME"):
        raw["home"] = str(Path(env["SHELFWISE_HOME"]).resolve())
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value, origin="command-line flag")
    try:
        config = ShelfwiseConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path)) from None
    return _resolve_paths(config, base_dir)


def config_key_of(variable: str) -> str | None:
    """The dotted config key an environment variable sets; None when it sets none.

    Raises:
        ConfigError: `SHELFWISE_SERVE__<KEY>`, the serve section's old second namespace.
    """
    if not variable.startswith(ENV_PREFIX) or variable in PROCESS_VARIABLES:
        return None
    if variable.startswith(SERVE_ENV_PREFIX + "_"):
        key = variable[len(SERVE_ENV_PREFIX) + 1 :]
        raise ConfigError(
            f"environment variable {variable} is not read: serve settings take one "
            f"underscore after SERVE; use {SERVE_ENV_PREFIX}{key} instead"
        )
    if variable.startswith(SERVE_ENV_PREFIX):
        return "serve." + variable[len(SERVE_ENV_PREFIX) :].lower()
    return variable[len(ENV_PREFIX) :].lower().replace("__", ".")


def parse_overrides(items: Iterable[str] | None) -> dict[str, Any]:
    """`KEY=VALUE` strings (the CLI's and benchmarks' `--set`) as dotted key -> YAML value.

    Raises:
        ConfigError: an item without `=` or without a key.
    """
    overrides: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; create one with `shelfwise init`")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, got {type(loaded).__name__}")
    return loaded


def _env_value(dotted: str, text: str) -> Any:
    """A variable's value: YAML for numbers, flags and lists; the text itself for text keys.

    Text keys keep what was written: as YAML, an admin token of digits would become a
    number and a retrain command would lose everything after a ` #`.
    """
    value = _parse_scalar(text)
    if value is not None and _is_text_key(dotted):
        return text
    return value


def _is_text_key(dotted: str) -> bool:
    """Whether the key's type is text (str, path or secret, optional or not)."""
    model: type[BaseModel] = ShelfwiseConfig
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        options = _union_members(field.annotation)
        if depth == len(parts) - 1:
            return any(option in _TEXT_TYPES for option in options)
        nested = [o for o in options if isinstance(o, type) and issubclass(o, BaseModel)]
        if not nested:
            return False
        model = nested[0]
    return False


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_dotted(target: dict[str, Any], dotted: str, value: Any, *, origin: str) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {dotted!r} goes inside {part!r}, which is not a section")
        node = child
    node[parts[-1]] = value


def _explain(exc: ValidationError, path: Path | None) -> str:
    where = f"in {path}" if path else "in the configuration"
    lines = [f"{exc.error_count()} problem(s) {where}:"]
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden" and key in _MOVED_KEYS:
            lines.append(f"  {key}: unknown key; it is {_MOVED_KEYS[key]} now")
        elif error["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (see `shelfwise init` for every key)")
        else:
            got = error.get("input")
            got_text = "" if isinstance(got, dict | list) else f" (got {got!r})"
            lines.append(f"  {key}: {error['msg']}{got_text}")
    return "\n".join(lines)


def _resolve_paths(config: ShelfwiseConfig, base_dir: Path) -> ShelfwiseConfig:
    def resolve(source: SourceConfig | None) -> SourceConfig | None:
        if source is None or source.path.is_absolute():
            return source
        return source.model_copy(update={"path": (base_dir / source.path).resolve()})

    data = config.data.model_copy(
        update={
            "catalog": resolve(config.data.catalog),
            "events": resolve(config.data.events),
            "queries": resolve(config.data.queries),
        }
    )
    update: dict[str, Any] = {"data": data}
    if config.home is not None and not config.home.is_absolute():
        update["home"] = (base_dir / config.home).resolve()
    return config.model_copy(update=update)
