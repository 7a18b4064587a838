"""Checking a large source (events, labelled queries) in batches with bounded memory.

Three passes over the source's batches, none of which holds the whole source:

1. Stage 1 (row-local checks) per batch; rejected rows go to the quarantine. The
   keys of the accepted rows (duplicate key, sequence number, row number) are
   hash-partitioned on `(user, item)` — `(query, item)` for labels, the id for the
   catalog — into bucket
   files on disk, so every duplicate lands in the same bucket as its original.
   Partitioning on the pair, not the user alone, keeps one very active (or
   placeholder) user from filling one bucket.
2. Per bucket, in source order: stage 2 (duplicates, the first kept; for the catalog,
   identical repeats are merged first) and stage 3 (items not in the catalog, whose
   accepted ids stay in memory). The rejects — sequence number, check, row number of
   the kept original — are all that is kept: memory follows the number of rejected
   rows, not of rows.
3. Stage 1 again per batch (it is a pure function of the batch), minus the rejects of
   pass 2; the accepted rows go to the output in source order, so the output equals
   what one in-memory pass would give.

Ids holding a large share of the events are found with a mergeable Misra–Gries
summary in pass 1 (at most `_HEAVY_COUNTERS` candidates) and counted exactly in pass 3.

Stage 1 runs where the executor says (`check_source(..., blocks, executor)`: with
`compute.engine: ray` a Ray Data dataset over ingest's part files, `_check_file`); its
results come back in source order, and everything across rows stays here.

A plan with a `user_check` (the fake-traffic check) also spills a few typed columns of
the accepted rows into buckets by user in pass 1, so that each bucket holds every event
of its users; after pass 2 the check reads them one bucket at a time, and the users it
flags are quarantined in pass 3 with its reason and detail.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import polars as pl

from shelfwise.compute import Executor
from shelfwise.contracts import RAW_ITEM_ID, RAW_USER_ID, ROW_NUMBER, QuarantineReason
from shelfwise.validate._parts import PartBlock, file_slices
from shelfwise.validate._scratch import ScratchFile, read_scratch
from shelfwise.validate._stages import (
    _DETAIL,
    _REASON,
    Check,
    Checked,
    apply_stages,
    first_row,
    raw_columns,
    to_quarantine,
    typed,
    typed_col,
    with_provenance,
)

PartSource = Callable[[], Iterator[pl.DataFrame]]  # a fresh iterator over raw batches
RowsCheck = Callable[[pl.DataFrame, int], tuple[pl.DataFrame, list[Check]]]
Profile = Callable[[pl.DataFrame], dict[str, int]]
BUCKET_ROWS: Final = 400_000  # about this many accepted rows per bucket file
_MAX_BUCKETS: Final = 256  # open bucket writers at once


def _scratch_writer(path: Path) -> ScratchFile:
    """A bucket file: written once, read once, deleted (an Arrow IPC stream: `_scratch`)."""
    return ScratchFile(path)


_HEAVY_COUNTERS: Final = 64  # finds every id above 1/65 of the rows
_SEQ: Final = "__seq"
_CODE: Final = "__code"
_CONTENT: Final = ("__content_a", "__content_b")  # two 64-bit hashes of a row's content
_FLAG_REASON: Final = "__flag_reason"
_FLAG_DETAIL: Final = "__flag_detail"
_DUPLICATE, _UNKNOWN, _MERGED, _FLAGGED = 0, 1, 2, 3
_FIRST_ROW: Final = first_row().meta.output_name()


class Sink(Protocol):
    """Where checked rows go: a Parquet appender or an in-memory list."""

    def write(self, frame: pl.DataFrame) -> None:
        """Take one batch of rows."""


class UserCheck(Protocol):
    """A check over every event of a user (the fake-traffic check, validate/_bots.py)."""

    @property
    def columns(self) -> dict[str, str]:
        """Typed column -> the name the check reads it under (user first)."""

    def find(self, paths: list[Path], skip: np.ndarray) -> pl.DataFrame:
        """Flagged rows (seq, reason, detail) from user buckets, minus `skip`."""


@dataclass(frozen=True)
class SourcePlan:
    """How to check one streamed source.

    Attributes:
        kind: "events" or "queries".
        rows: stage 1 of a batch: (raw batch, rows before it) -> (typed frame, checks).
        keys: the typed duplicate key; its first two columns partition the buckets.
        duplicate_reason: the reason code of a duplicate.
        duplicate_detail: its detail (may use `first_row()`).
        output: accepted typed rows -> the contract schema.
        heavy_columns: typed id columns whose dominant values are reported.
        profile: counts over each raw batch in pass 1 (how timestamps were read).
        content: typed columns whose identical repeats are merged, not rejected (the
            catalog); compared through two 64-bit hashes, so a false merge needs two
            rows with the same id whose 128 hash bits collide.
        user_check: a check over each user's events (fake traffic), or None.
    """

    kind: str
    rows: RowsCheck
    keys: tuple[str, ...]
    duplicate_reason: QuarantineReason
    duplicate_detail: pl.Expr
    output: Callable[[pl.DataFrame], pl.DataFrame]
    heavy_columns: tuple[str, ...] = ()
    profile: Profile | None = None
    content: tuple[str, ...] = ()
    user_check: UserCheck | None = None


@dataclass
class SourceTally:
    """What checking a source counted."""

    rows: int = 0  # rows checked (parse rejects not included)
    accepted: int = 0
    merged: int = 0  # identical repeats folded into their first row (catalog)
    heavy: dict[str, Counter[str]] = field(default_factory=dict)  # column -> id -> events
    profile: Counter[str] = field(default_factory=Counter)


def bucket_count(expected_rows: int) -> int:
    """Buckets for a source of about `expected_rows` rows."""
    return max(1, min(_MAX_BUCKETS, math.ceil(expected_rows / BUCKET_ROWS)))


def check_source(
    plan: SourcePlan,
    parts: PartSource,
    *,
    catalog_ids: pl.Series | None,
    work: Path,
    buckets: int,
    quarantine: Sink,
    output: Sink,
    on_accepted: Callable[[pl.DataFrame], None] = lambda frame: None,
    blocks: list[PartBlock] | None = None,
    executor: Executor | None = None,
) -> SourceTally:
    """Check one source in three passes (see the module doc).

    Args:
        plan: the source's checks.
        parts: its raw batches, in source order; called twice.
        catalog_ids: accepted catalog ids, or None to skip the unknown-item check.
        work: a folder for the bucket files (emptied afterwards).
        buckets: how many buckets (see `bucket_count`).
        quarantine: receives rejected rows (QUARANTINE_SCHEMA).
        output: receives accepted rows in the contract schema.
        on_accepted: called with every batch of accepted typed rows (derived catalog).
        blocks: the same batches as part files (`_parts.part_blocks`), for `executor`.
        executor: with `blocks`, where stage 1 runs (`compute.engine: ray`: a Ray Data
            dataset over the part files, its results consumed in source order); None
            = in this process over `parts`.
    """
    tally = SourceTally()
    paths = [work / f"{plan.kind}-bucket-{index:03d}.parquet" for index in range(buckets)]
    user_paths = [work / f"{plan.kind}-users-{index:03d}.parquet" for index in range(buckets)]
    summaries = {column: _HeavyHitters() for column in plan.heavy_columns}
    remote = (blocks, executor) if blocks is not None and executor is not None else None
    _first_pass(plan, parts, paths, quarantine, summaries, tally, user_paths, remote)
    rejects = _bucket_rejects(plan, paths, catalog_ids)
    if plan.user_check is not None:
        flagged = plan.user_check.find(user_paths, rejects[_SEQ].to_numpy())
        flagged.columns = [_SEQ, _FLAG_REASON, _FLAG_DETAIL]
        rejects = pl.concat(
            [
                rejects,
                flagged.with_columns(
                    pl.lit(_FLAGGED, pl.Int8).alias(_CODE), pl.lit(None, pl.Int64).alias(_FIRST_ROW)
                ),
            ],
            how="diagonal",
        ).sort(_SEQ)
    numbers = rejects[_SEQ].to_numpy()
    for path in [*paths, *user_paths]:
        path.unlink(missing_ok=True)
    candidates = {column: summary.candidates() for column, summary in summaries.items()}
    tally.heavy = {column: Counter() for column in plan.heavy_columns}
    sequence = 0
    for part in _checked_parts(plan, parts, remote, profile=False):
        checked = part.checked
        low, high = np.searchsorted(numbers, [sequence, sequence + part.height])
        mine = rejects.slice(int(low), int(high - low))
        accepted = _drop_rejects(plan, checked.accepted, mine, part.columns, quarantine)
        tally.merged += checked.accepted.height - accepted.height - _rejected(mine)
        sequence += part.height
        tally.accepted += accepted.height
        output.write(plan.output(accepted))
        on_accepted(accepted)
        for column, wanted in candidates.items():
            values = accepted[column]
            counts = values.filter(values.is_in(wanted)).value_counts()
            tally.heavy[column].update(dict(counts.iter_rows()))
    return tally


@dataclass(frozen=True)
class _Part:
    """One batch after stage 1: what the passes need of it (not its raw rows)."""

    height: int
    columns: list[str]  # the columns as read (`raw_columns`), for the quarantine
    checked: Checked
    profile: dict[str, int] | None  # the plan's profile of the raw batch, when asked


# stage 1, the profile, and the accepted columns to keep (None: all): an executor's shared
_Work = tuple[RowsCheck, Profile | None, list[str] | None]


def _check_part(work: _Work, raw: pl.DataFrame, sequence: int) -> _Part:
    """Stage 1 of one raw batch whose first row has sequence number `sequence`."""
    rows, profile, keep = work
    raw = with_provenance(raw)
    frame, checks = rows(raw, sequence)
    frame = frame.with_columns(pl.int_range(sequence, sequence + raw.height).alias(_SEQ))
    checked = apply_stages(frame, [checks])
    if keep is not None:  # pass 1 reads a few columns: only those travel back from Ray
        checked.accepted = checked.accepted.select(keep)
    return _Part(
        height=raw.height,
        columns=raw_columns(raw),
        checked=checked,
        profile=profile(raw) if profile is not None else None,
    )


def _check_file(block: PartBlock, work: _Work) -> Iterator[_Part]:
    """Stage 1 of every slice of one part file (an executor's unit of work)."""
    for sequence, raw in file_slices(block):
        yield _check_part(work, raw, sequence)


def _checked_parts(
    plan: SourcePlan,
    parts: PartSource,
    remote: tuple[list[PartBlock], Executor] | None,
    *,
    profile: bool,
    keep: list[str] | None = None,
) -> Iterator[_Part]:
    """Stage 1 of every batch of the source, in source order, here or on `remote`.

    Stage 1 is a pure function of a batch and its first sequence number, and both
    paths cut the same batches (`_parts`), so they give the same parts.
    """
    work: _Work = (plan.rows, plan.profile if profile else None, keep)
    if remote is not None:
        blocks, executor = remote
        yield from executor.stream(_check_file, blocks, work, what=f"{plan.kind} part")
        return
    sequence = 0
    for raw in parts():
        part = _check_part(work, raw, sequence)
        sequence += part.height
        yield part


def _first_pass(
    plan: SourcePlan,
    parts: PartSource,
    paths: list[Path],
    quarantine: Sink,
    summaries: dict[str, _HeavyHitters],
    tally: SourceTally,
    user_paths: list[Path],
    remote: tuple[list[PartBlock], Executor] | None,
) -> None:
    check = plan.user_check
    users = [_scratch_writer(path) for path in user_paths] if check is not None else []
    writers = [_scratch_writer(path) for path in paths]
    for writer in [*writers, *users]:
        writer.__enter__()
    item = [] if typed(RAW_ITEM_ID) in plan.keys else [typed(RAW_ITEM_ID)]
    read = [*plan.keys, *item, *plan.content, _SEQ, ROW_NUMBER, *summaries]
    keep = list(dict.fromkeys([*read, *(check.columns if check is not None else ())]))
    try:
        parts_checked = _checked_parts(
            plan, parts, remote, profile=plan.profile is not None, keep=keep
        )
        for part in parts_checked:
            checked = part.checked
            tally.rows += part.height
            quarantine.write(to_quarantine(checked, plan.kind, part.columns))
            content = [
                pl.struct(list(plan.content)).hash(seed=seed).alias(name)
                for seed, name in zip((11, 13), _CONTENT, strict=True)
                if plan.content
            ]
            keys = checked.accepted.select(
                *plan.keys, *item, *content, _SEQ, ROW_NUMBER
            ).with_columns(
                (pl.struct(list(plan.keys[:2])).hash(seed=7) % len(writers)).alias("__bucket")
            )
            for key, bucket in keys.partition_by("__bucket", as_dict=True).items():
                writers[int(key[0])].write(bucket.drop("__bucket"))
            if check is not None:
                _spill_users(checked.accepted, check, users)
            for column, summary in summaries.items():
                summary.add(checked.accepted[column])
            if part.profile is not None:
                tally.profile.update(part.profile)
    finally:
        for writer in [*writers, *users]:
            writer.__exit__(None, None, None)


def _spill_users(accepted: pl.DataFrame, check: UserCheck, writers: list[ScratchFile]) -> None:
    """A batch's accepted rows, a few columns, into buckets by user (whole users)."""
    names = check.columns
    first = next(iter(names))
    rows = accepted.select(
        *[pl.col(column).alias(name) for column, name in names.items()],
        pl.col(_SEQ).alias("seq"),
        (pl.col(first).hash(seed=5) % len(writers)).alias("__bucket"),
    )
    for key, part in rows.partition_by("__bucket", as_dict=True).items():
        writers[int(key[0])].write(part.drop("__bucket"))


def _bucket_rejects(
    plan: SourcePlan, paths: list[Path], catalog_ids: pl.Series | None
) -> pl.DataFrame:
    """Stages 2 and 3 per bucket: (sequence, check, first row) of every reject, sorted."""
    found = [pl.DataFrame(schema={_SEQ: pl.Int64, _CODE: pl.Int8, _FIRST_ROW: pl.Int64})]
    keys = list(plan.keys)
    for path in paths:
        if not path.is_file():
            continue
        frame = read_scratch(path).sort(_SEQ)
        if plan.content:
            same = ~pl.struct([*keys, *_CONTENT]).is_first_distinct()
            found.append(
                frame.filter(same).select(
                    _SEQ,
                    pl.lit(_MERGED, pl.Int8).alias(_CODE),
                    pl.lit(None, pl.Int64).alias(_FIRST_ROW),
                )
            )
            frame = frame.filter(~same)
        repeated = ~pl.struct(keys).is_first_distinct()
        kept = frame.filter(~repeated)
        firsts = kept.select(*keys, pl.col(ROW_NUMBER).alias(_FIRST_ROW))
        duplicates = frame.filter(repeated).join(
            firsts, on=keys, how="left", nulls_equal=True, maintain_order="left"
        )
        found.append(duplicates.select(_SEQ, pl.lit(_DUPLICATE, pl.Int8).alias(_CODE), _FIRST_ROW))
        if catalog_ids is not None:
            unknown = kept.filter(~typed_col(RAW_ITEM_ID).is_in(catalog_ids.implode()))
            found.append(
                unknown.select(
                    _SEQ,
                    pl.lit(_UNKNOWN, pl.Int8).alias(_CODE),
                    pl.lit(None, pl.Int64).alias(_FIRST_ROW),
                )
            )
    return pl.concat(found).sort(_SEQ)


def _drop_rejects(
    plan: SourcePlan,
    accepted: pl.DataFrame,
    mine: pl.DataFrame,
    columns: list[str],
    quarantine: Sink,
) -> pl.DataFrame:
    """The accepted rows of a batch minus its rejects from pass 2 (quarantined here)."""
    if mine.is_empty():
        return accepted
    tagged = accepted.join(mine, on=_SEQ, how="left", maintain_order="left")
    code = pl.col(_CODE)
    if _FLAG_REASON not in tagged.columns:
        tagged = tagged.with_columns(
            pl.lit(None, pl.String).alias(_FLAG_REASON), pl.lit(None, pl.String).alias(_FLAG_DETAIL)
        )
    rejected = tagged.filter(code.is_not_null() & (code != _MERGED)).with_columns(
        pl.when(code == _DUPLICATE)
        .then(pl.lit(plan.duplicate_reason.value))
        .when(code == _FLAGGED)
        .then(pl.col(_FLAG_REASON))
        .otherwise(pl.lit(QuarantineReason.UNKNOWN_ITEM.value))
        .alias(_REASON),
        pl.when(code == _DUPLICATE)
        .then(plan.duplicate_detail)
        .when(code == _FLAGGED)
        .then(pl.col(_FLAG_DETAIL))
        .otherwise(pl.format("raw_item_id {} is not in the catalog", typed_col(RAW_ITEM_ID)))
        .alias(_DETAIL),
    )
    checked = Checked(accepted=accepted, rejected=[rejected])
    quarantine.write(to_quarantine(checked, plan.kind, columns))
    return tagged.filter(code.is_null()).drop(_CODE, _FIRST_ROW, _FLAG_REASON, _FLAG_DETAIL)


def _rejected(mine: pl.DataFrame) -> int:
    """Rows of a batch's pass-2 results that are quarantined (not merged)."""
    return int((mine[_CODE] != _MERGED).sum()) if mine.height else 0


class _HeavyHitters:
    """A mergeable Misra–Gries summary: every value above about 2/k of the rows survives.

    Each batch's top 4k exact counts are added, then the (k+1)-th largest count is
    taken off every counter and counters at zero are dropped (Agarwal et al.,
    "Mergeable Summaries", 2012); the batch cut-off adds at most 1/(4k) of the rows to
    the summary's error of 1/(k+1). Memory: k counters plus one batch's value counts.
    """

    def __init__(self, k: int = _HEAVY_COUNTERS) -> None:
        self.k = k
        self.counts: Counter[str] = Counter()

    def add(self, values: pl.Series) -> None:
        batch = values.drop_nulls().value_counts(sort=True).head(4 * self.k)
        self.counts.update(dict(batch.iter_rows()))
        if len(self.counts) > self.k:
            ranked = self.counts.most_common()
            cut = ranked[self.k][1]
            self.counts = Counter({value: n - cut for value, n in ranked[: self.k] if n > cut})

    def candidates(self) -> pl.Series:
        return pl.Series(list(self.counts), dtype=pl.String)


# The typed id columns whose dominant values validate reports, per source.
HEAVY_EVENT_COLUMNS: Final = (typed(RAW_USER_ID), typed(RAW_ITEM_ID))
