"""`shelfwise retrain`: the pipeline again, on the original data plus the event log.

1. The champion's training-data cutoff comes from its registry tags; the servers'
   event log (`serve.event_log_dir`, default `<home>/events`: see
   `shelfwise.stores.event_log.event_log_dir`) is read, and without at least
   `retrain.min_new_events` events newer than the cutoff nothing happens.
2. The original sources go through `ingest` and `validate` as usual (cached when
   unchanged); their clean events and *every* event of the log (older log events are
   in the champion's data already and must stay in the next one) are merged, exact
   duplicates dropped, into `<home>/retrain/<stamp>/events.parquet`.
3. The whole pipeline runs on that file (stages whose inputs did not change are reused),
   registers the bundle, and the gate decides; a passing version becomes the
   `challenger` for a canary (`retrain.promote_to`), judged later by `shelfwise canary
   judge`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from shelfwise.config import EventsConfig, ShelfwiseConfig
from shelfwise.contracts import EVENT_TYPE, POSITION, QUERY, RAW_ITEM_ID, RAW_USER_ID, TIMESTAMP
from shelfwise.errors import ConfigError
from shelfwise.stores.event_log import event_log_dir, read_event_log

if TYPE_CHECKING:
    from shelfwise.pipeline import RunOutcome, StageEvent

KEY = (RAW_USER_ID, RAW_ITEM_ID, EVENT_TYPE, TIMESTAMP)


@dataclass(frozen=True)
class RetrainOutcome:
    """What a retrain did: skipped for lack of new events, or a finished run."""

    status: str  # "nothing-new" | "ran"
    cutoff: int | None
    new_events: int
    log_events: int
    events_file: Path | None = None
    run: RunOutcome | None = None


def champion_cutoff(config: ShelfwiseConfig) -> int | None:
    """Unix time of the newest event in the champion's training data (None: no champion)."""
    from shelfwise.registry import CHAMPION, open_registry
    from shelfwise.registry.base import TAG_DATA_CUTOFF

    champion = open_registry(config).by_alias(CHAMPION)
    if champion is None:
        return None
    text = champion.tags.get(TAG_DATA_CUTOFF, "")
    try:
        return int(float(text))
    except ValueError:
        return None


def retrain(
    config: ShelfwiseConfig,
    *,
    force: bool = False,
    on_event: Callable[[StageEvent], None] | None = None,
) -> RetrainOutcome:
    """Retrain on the original data plus the event log (see the module docstring).

    Raises:
        ConfigError: no `data.events` to start from.
        RegistryError, ShelfwiseError: as `run_pipeline`.
    """
    from shelfwise.pipeline import run_pipeline

    if config.data.events is None:
        raise ConfigError("retrain needs data.events (the original events) in the config")
    cutoff = champion_cutoff(config)
    log = read_event_log(event_log_dir(config), since=0)
    new = log.height if cutoff is None else log.filter(pl.col(TIMESTAMP) > cutoff).height
    if new < config.retrain.min_new_events and not force:
        return RetrainOutcome("nothing-new", cutoff, new, log.height)

    base = run_pipeline(config, until="validate", on_event=on_event)
    clean = pl.read_parquet(base.run_dir / "validate" / "events.parquet")
    merged = _merge(clean, log)
    folder = config.state_dir() / "retrain" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    folder.mkdir(parents=True, exist_ok=True)
    events_file = folder / "events.parquet"
    merged.write_parquet(events_file)
    retrained = config.model_copy(
        update={
            "data": config.data.model_copy(
                update={"events": EventsConfig(path=events_file.resolve(), timestamp_unit="s")}
            ),
            "gate": config.gate.model_copy(update={"on_pass": config.retrain.promote_to}),
        }
    )
    outcome = run_pipeline(retrained, on_event=on_event)
    return RetrainOutcome("ran", cutoff, new, log.height, events_file, outcome)


def _merge(clean: pl.DataFrame, log: pl.DataFrame) -> pl.DataFrame:
    """Clean source events + the log, in the canonical columns, exact duplicates dropped."""
    columns: dict[str, Any] = {
        RAW_USER_ID: pl.String(),
        RAW_ITEM_ID: pl.String(),
        EVENT_TYPE: pl.String(),
        TIMESTAMP: pl.Int64(),
        QUERY: pl.String(),
        POSITION: pl.Int64(),
    }

    def canonical(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(
            [
                pl.col(name).cast(dtype)
                if name in frame.columns
                else pl.lit(None, dtype).alias(name)
                for name, dtype in columns.items()
            ]
        )

    return (
        pl.concat([canonical(clean), canonical(log.filter(pl.col(RAW_ITEM_ID).is_not_null()))])
        .unique(subset=list(KEY), keep="first", maintain_order=True)
        .sort(TIMESTAMP, maintain_order=True)
    )
