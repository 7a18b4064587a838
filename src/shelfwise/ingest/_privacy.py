"""Pseudonymous user ids and the forget list, applied as ingest writes the events.

Applied here, before any part is written, so that no run artefact downstream (parts,
validated tables, id maps, the bundle, the registry's copy) holds a raw user id or a
forgotten user's event. Rows of forgotten users are dropped, not quarantined: keeping
them anywhere would defeat the forgetting; the count goes to `ingest.json` and the
validation report (`forgotten-user`).
"""

from __future__ import annotations

import json
from typing import Final

import polars as pl

from shelfwise.contracts import RAW_ROW, RAW_USER_ID, SOURCE
from shelfwise.errors import PrivacyKeyError
from shelfwise.privacy import PRIVACY_KEY, UserPrivacy, drop_forgotten, pseudonymize_column

_REDACTED: Final = "(not kept: privacy.pseudonymize_users is on and the row holds a user id)"


class EventsPrivacy:
    """Pseudonymise and filter the events' batches; count what was dropped.

    Args:
        privacy: the run's privacy settings, key and forget list.
    """

    def __init__(self, privacy: UserPrivacy) -> None:
        """Read the forget list once for the whole run.

        Raises:
            PrivacyKeyError: users are on the forget list but no key is set, so raw ids
                could not be matched with it (their events would silently stay).
        """
        self.privacy = privacy
        self.forgotten_users = privacy.forget.pseudonyms()
        self.forgotten = 0
        if self.forgotten_users and privacy.pseudonymizer is None:
            raise PrivacyKeyError(
                f"{len(self.forgotten_users)} user(s) are on the forget list "
                f"{privacy.forget.path}, but {PRIVACY_KEY} is not set, so their events "
                "cannot be found among raw ids; set the key used when they were forgotten"
            )

    @property
    def active(self) -> bool:
        """False when there is nothing to do (off, and nobody to forget)."""
        return self.privacy.enabled or bool(self.forgotten_users)

    def events(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One batch of events without forgotten users, their ids pseudonymised if on."""
        if not frame.columns or RAW_USER_ID not in frame.columns:
            return frame
        pseudonymizer = self.privacy.pseudonymizer
        if self.privacy.enabled and pseudonymizer is not None:
            frame = pseudonymize_column(frame, RAW_USER_ID, pseudonymizer)
        kept, dropped = drop_forgotten(frame, RAW_USER_ID, self.forgotten_users, pseudonymizer)
        self.forgotten += dropped
        return kept

    def quarantine(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Unparsable event rows with their raw text withheld when pseudonymising.

        A row that could not be parsed cannot have its user id found and hashed, so
        its text is replaced by a note; source, file, row number and reason stay.
        """
        if not self.privacy.enabled or frame.is_empty() or RAW_ROW not in frame.columns:
            return frame
        is_events = pl.col(SOURCE) == "events"
        return frame.with_columns(
            pl.when(is_events)
            .then(pl.lit(json.dumps(_REDACTED)))
            .otherwise(pl.col(RAW_ROW))
            .alias(RAW_ROW)
        )
