"""Report lines about the events as a whole: their time column, and dominant ids."""

from __future__ import annotations

from collections import Counter
from typing import Final

from shelfwise.validate._stages import typed

MIN_EVENTS_FOR_SHARES: Final = 1000  # below this, one busy user is no sign of bad data
_KIND_WORDS: Final = {
    "seconds": "unix seconds",
    "milliseconds": "unix milliseconds",
    "iso": "ISO-8601 text",
    "datetime": "native date-times",
    "ordinal": "ordinal positions (order only)",
}
NO_TIME_COLUMN: Final = (
    "events have no timestamp column: file order is used as an ordinal time, so "
    "time-based splits follow the order of the rows (no column is named in "
    "data.events.mapping and none has a time-like name such as timestamp, time, "
    "timeframe, event_time, datetime, date, ts or created_at)"
)


def time_note(
    column: str | None, chosen_by: str, profile: Counter[str], unit: str, rows: int
) -> str:
    """Which column the events' time came from and how its values were read."""
    if not profile or "missing" in profile:
        return NO_TIME_COLUMN
    counted = sum(profile.values()) or 1
    parts = [
        f"{_KIND_WORDS.get(kind, kind)} for {count / counted:.2%}"
        for kind, count in profile.most_common()
    ]
    source = f"column {column!r}" if column else "the timestamp column"
    how = f" ({chosen_by})" if chosen_by else ""
    return (
        f"events: time taken from {source}{how}, read as {', '.join(parts)} of the "
        f"{rows:,} rows (data.events.timestamp_unit: {unit})"
    )


def dominant_id_warnings(heavy: dict[str, Counter[str]], accepted: int, share: float) -> list[str]:
    """One warning per user or item holding more than `share` of the accepted events."""
    if accepted < MIN_EVENTS_FOR_SHARES:
        return []
    warnings = []
    for column, counts in heavy.items():
        name = column.removeprefix(typed(""))
        for value, count in counts.most_common():
            if count / accepted <= share:
                break
            warnings.append(
                f"{name} {value!r} holds {count:,} of the {accepted:,} accepted events "
                f"({count / accepted:.1%}, above data.dominant_id_share {share:.0%}): a "
                "placeholder id (unknown, guest, 0, -1) or a bot? Check the source; rows "
                "with an empty or NA id are already quarantined as missing-id"
            )
    return warnings
