"""Where the data comes from (`data:`) and how its events are split (`split:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from shelfwise.config._base import Section
from shelfwise.config.fake_traffic import FakeTrafficConfig
from shelfwise.contracts import EventType

FileFormat = Literal["auto", "csv", "tsv", "parquet", "jsonl", "recbole", "sequence"]
Encoding = Literal["utf-8", "utf-16", "gb18030", "cp1252", "latin-1", "auto"]


class SourceConfig(Section):
    """One input file (or folder of files) and how to read it."""

    path: Path = Field(description="File or folder; .gz files are decompressed on the fly.")
    format: FileFormat = Field(
        default="auto",
        description="auto guesses from the extension: .csv .tsv .parquet .jsonl "
        ".inter/.item/.user (RecBole atomic files) .txt (sequence: `user item1 item2 …`).",
    )
    has_header: bool = Field(default=True, description="False for header-less CSV/TSV.")
    column_names: list[str] | None = Field(
        default=None, description="Column names of a header-less file, in file order."
    )
    separator: str | None = Field(
        default=None, description="Field separator; default from the format."
    )
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description="Your column name -> shelfwise column name (see contracts.py), e.g. "
        "{movie_title: title}. Common names such as item_id/user_id map by themselves.",
    )
    id_from: list[str] | None = Field(
        default=None,
        description="Build raw_item_id as a hash of these (your) columns, for files "
        "without an item id (e.g. products known only by title and description).",
    )
    encoding: Encoding = Field(
        default="utf-8",
        description="Text encoding of csv/tsv/jsonl/sequence files. utf-16 finds the byte "
        "order from the BOM; auto reads a BOM (UTF-8/16/32) and otherwise expects UTF-8.",
    )


class EventsConfig(SourceConfig):
    """The event log."""

    event_type_values: dict[str, EventType] = Field(
        default_factory=dict,
        description="Your event-type values -> ours, e.g. {pv: view, buy: purchase, fav: cart}.",
    )
    default_event_type: EventType = Field(
        default=EventType.VIEW,
        description="Event type for files without an event-type column (ratings: rating).",
    )
    timestamp_unit: Literal["auto", "s", "ms", "iso", "ordinal"] = Field(
        default="auto",
        description="auto: numbers above 1e11 are milliseconds, other numbers seconds, "
        "strings ISO-8601. ordinal: order only (sequence files).",
    )


class FieldLimits(Section):
    """Longest accepted text values (characters); longer ones are quarantined."""

    id_chars: int = Field(default=256, ge=1, description="raw_user_id, raw_item_id and session_id.")
    title_chars: int = Field(
        default=2048, ge=1, description="title, category and brand (catalog and events)."
    )
    query_chars: int = Field(default=2048, ge=1, description="query (events and queries).")
    description_chars: int = Field(
        default=65536, ge=1, description="description and attributes (catalog)."
    )


class DataConfig(Section):
    """Input files and validation thresholds."""

    catalog: SourceConfig | None = Field(
        default=None,
        description="Product catalog. Without one, items are taken from the events "
        "(no titles: search is then disabled).",
    )
    events: EventsConfig | None = Field(
        default=None, description="User events. Without them, only search is trained."
    )
    queries: SourceConfig | None = Field(
        default=None, description="Labelled queries (query, item, graded relevance)."
    )
    max_rejected_share: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Stop the run when a source rejects more than this share of its rows.",
    )
    min_timestamp: int = Field(
        default=631152000, description="Earliest plausible event time (unix s; 1990-01-01)."
    )
    max_future_seconds: int = Field(
        default=86400,
        ge=0,
        description="Events later than now + this many seconds are rejected.",
    )
    limits: FieldLimits = Field(
        default_factory=FieldLimits,
        description="Longest accepted text values; longer rows go to the quarantine.",
    )
    allow_partial_files: bool = Field(
        default=False,
        description="Keep the rows read before damage in a cut or corrupt file (gzip "
        "CRC/truncation, cut Parquet) instead of stopping the run; warns and marks the run.",
    )
    max_row_drop_share: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Stop before training when a source's accepted rows fall by more "
        "than this share against the last complete run on the same path; 1 disables.",
    )
    dominant_id_share: float = Field(
        default=0.25,
        gt=0.0,
        le=1.0,
        description="Warn when one user or item holds more than this share of the "
        "accepted events (e.g. a placeholder id such as 'unknown').",
    )
    batch_rows: int = Field(
        default=250_000,
        ge=1,
        description="Rows per batch in ingest and validate: memory use follows this, "
        "not the size of the input.",
    )
    fake_traffic: FakeTrafficConfig = Field(
        default_factory=FakeTrafficConfig,
        description="Bot-like users and fake orders: quarantined as suspected-bot / "
        "suspected-fake-order (docs/data.md).",
    )

    @field_validator("events", "catalog", "queries")
    @classmethod
    def _paths_not_empty(cls, value: SourceConfig | None) -> SourceConfig | None:
        if value is not None and str(value.path) in ("", "."):
            raise ValueError("path must name a file or folder")
        return value


class SplitConfig(Section):
    """How events are split into train / valid / test (frozen per run)."""

    method: Literal[
        "time", "leave_last_out", "random", "given", "last_basket", "session", "auto"
    ] = Field(
        default="time",
        description="time: one global cutoff, test strictly after train (production-like); "
        "leave_last_out: each user's last event is test, the one before valid; "
        "random: per user, shuffled (seeded) and cut by the fractions (RecBole's RS 8:1:1); "
        "given: the events' own split column (train/valid/test), e.g. a published split; "
        "last_basket (next-basket protocol): each user's last order is test, the one before "
        "valid (orders: a session_id with purchases, else purchases grouped by "
        "`basket_gap_minutes`); "
        "session (anonymous sessions): events cut into sessions (`session_id`, else "
        "`session_gap_minutes` of inactivity); the last sessions by start time are test, "
        "those before them valid (`test_fraction`, `valid_fraction` of sessions with two "
        "or more events); "
        "auto: chosen from the data before the features stage — session when the events "
        "look like anonymous visits (a session_id with most users holding one session, or "
        "user ids seen on one day only with short histories), else time; `shelfwise plan` "
        "shows the choice and the numbers behind it.",
    )
    test_fraction: float = Field(default=0.1, gt=0.0, lt=1.0, description="time and random splits.")
    valid_fraction: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="time and random splits; 0 disables validation (leave_last_out too).",
    )
    min_user_events: int = Field(
        default=3, ge=1, description="leave_last_out: users with fewer events stay in train."
    )
    basket_gap_minutes: float = Field(
        default=60.0,
        gt=0.0,
        description="last_basket without a session_id: a user's purchases less than this "
        "many minutes apart are one order. Users with fewer than three orders stay in train.",
    )
    session_gap_minutes: float = Field(
        default=30.0,
        gt=0.0,
        description="session split without a session_id: minutes of inactivity that end "
        "a user's session (30: the usual cut for click sessions).",
    )
    session_targets: Literal["last", "every"] = Field(
        default="last",
        description="session split: predict each held-out session's last item from its "
        "earlier items (last), or every next item (every).",
    )
