"""`shelfwise forget`: forget shoppers on the batch side, now and at the next run."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from shelfwise.cli.app import (
    ConfigOption,
    SetOption,
    console,
    err_console,
    guard,
    load_cli_config,
)
from shelfwise.config import ShelfwiseConfig
from shelfwise.contracts import RAW_USER_ID
from shelfwise.errors import ConfigError, InputFileError
from shelfwise.privacy import UserPrivacy, forget_in_jsonl, forget_in_parquet

# One line per paragraph: the help renderer wraps lines to the terminal itself.
_HELP = "\n\n".join(
    (
        (
            "Forget users: remove their events now from the files the next run reads under the "
            "shelfwise home, and list them so that every later run drops them."
        ),
        (
            "Removed now: their rows in the event log (every hour's files except the current "
            "hour's, which a running server may still be appending to), in each run's ingest "
            "parts and validated events (`runs/*/ingest/events/`, "
            "`runs/*/validate/events.parquet`, which a retrain starts from) and in retrain inputs"
            " (`retrain/*/events.parquet`)."
        ),
        (
            "At the next run: they are on the forget list (`<home>/privacy/forget.jsonl`), so "
            "ingest drops their events from every input, the shop's own files and the current "
            "hour of the event log included (`forgotten-user` in the validation report), and the "
            "new bundle and precomputed lists no longer know them. Bundles already built keep "
            "them until replaced: run `shelfwise run` (or retrain) and promote the new version. A"
            " Redis online store (serve.online_store_url) is cleared now too; a server's "
            "in-process store by `DELETE /v1/users/{id}`."
        ),
        (
            "Each user gets an audit record (`<home>/privacy/audit.jsonl`) with their pseudonym, "
            "never the raw id. Needs SHELFWISE_PRIVACY_KEY (the same key as run and serve)."
        ),
    )
)


def forget(
    users: Annotated[
        list[str] | None, typer.Argument(help="Raw user ids, as the shop knows them.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="A text file of raw user ids, one per line."),
    ] = None,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Forget users (see `shelfwise forget --help` for what is removed now and later)."""

    def body() -> None:
        raw_ids = _user_ids(users or [], file)
        cfg = load_cli_config(config, sets)
        privacy = UserPrivacy.open(cfg.privacy, cfg.state_dir())
        pseudonyms = {raw: privacy.pseudonym(raw) for raw in raw_ids}
        new = set(privacy.forget.add(pseudonyms.values(), via="cli"))
        forgotten = frozenset(pseudonyms.values())
        removed = _remove_now(cfg, forgotten, privacy)
        removed["online_store"] = _forget_in_redis(cfg, [privacy.user(raw) for raw in raw_ids])
        actor = f"cli:{_who()}"
        for pseudonym in pseudonyms.values():
            privacy.forget.audit(
                actor=actor,
                action="forget-user",
                pseudonym=pseudonym,
                detail={"newly_listed": pseudonym in new, "rows_removed_now": removed},
            )
        total = sum(removed.values())
        console.print(
            f"forgot {len(pseudonyms)} user(s) ({len(new)} new on the forget list "
            f"{privacy.forget.path}); removed now: {total:,} rows "
            f"({', '.join(f'{k} {v:,}' for k, v in removed.items())}); the next run drops "
            "the rest at ingest (forgotten-user). Audit: "
            f"{privacy.forget.audit_path}"
        )

    guard(body)


forget.__doc__ = _HELP


def _user_ids(users: list[str], file: Path | None) -> list[str]:
    ids = [user.strip() for user in users if user.strip()]
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputFileError(f"cannot read --file {file}: {exc.strerror}") from exc
        ids += [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise ConfigError("name at least one user id (arguments or --file FILE)")
    return list(dict.fromkeys(ids))


def _remove_now(
    cfg: ShelfwiseConfig, forgotten: frozenset[str], privacy: UserPrivacy
) -> dict[str, int]:
    """Rows removed from the files under the home that the next run reads."""
    from shelfwise.stores.event_log import event_log_dir

    pseudonymizer = privacy.pseudonymizer
    home = cfg.state_dir()
    log = sum(
        forget_in_jsonl(path, RAW_USER_ID, forgotten, pseudonymizer)
        for path in _closed_log_files(event_log_dir(cfg))
    )
    artefacts = [
        *home.glob("runs/*/ingest/events/*.parquet"),
        *home.glob("runs/*/validate/events.parquet"),
        *home.glob("retrain/*/events.parquet"),
    ]
    runs = sum(forget_in_parquet(path, RAW_USER_ID, forgotten, pseudonymizer) for path in artefacts)
    return {"event_log": log, "run_artefacts": runs}


def _forget_in_redis(cfg: ShelfwiseConfig, keys: list[str]) -> int:
    """Recent events removed from a Redis online store (`serve.online_store_url`); an
    in-process store (memory://) lives in the server: use DELETE /v1/users/{id}."""
    url = cfg.serve.online_store_url
    if not url.startswith(("redis://", "rediss://")):
        return 0
    import redis

    from shelfwise.stores.redis_store import RedisStore

    store = RedisStore(url, timeout=max(cfg.serve.online_store_timeout_s, 2.0))
    try:
        return sum(store.forget_user(key) for key in keys)
    except (redis.RedisError, OSError) as exc:
        err_console.print(
            f"warning: the online store at {url.split('@')[-1]} did not answer ({exc}); the "
            "files and the forget list are done: clear the store with DELETE /v1/users/{id}"
        )
        return 0
    finally:
        store.close()


def _closed_log_files(root: Path) -> Iterator[Path]:
    """The event log's files but the current hour's (a server may append to those)."""
    now = datetime.now(UTC)
    current = root / f"date={now:%Y-%m-%d}" / f"hour={now:%H}"
    for path in sorted(root.rglob("*.jsonl")):
        if path.parent != current:
            yield path


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's random uid)
        return "unknown"
