"""Privacy: pseudonymous user ids, the forget list and its audit trail.

One small package both roles import (it sits beside `stores` in the layer map), so the
batch role (ingest) and the online role (the API edge) apply the *same* mapping: a user
id hashed at ingest equals the one the server hashes from a request, so a raw id still
finds its precomputed list.

Modules:

- `keys`: `SHELFWISE_PRIVACY_KEY`, the HMAC-SHA256 `Pseudonymizer`, query redaction
- `forget`: the forget list and the audit trail (`<home>/privacy/`), dropping forgotten
  users from frames, Parquet and JSON-lines files
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shelfwise.config.privacy import PrivacyConfig
from shelfwise.errors import PrivacyKeyError
from shelfwise.privacy.forget import (
    FORGOTTEN_USER,
    ForgetList,
    drop_forgotten,
    forget_in_jsonl,
    forget_in_parquet,
    forgotten_values,
    privacy_dir,
    pseudonymize_column,
)
from shelfwise.privacy.keys import (
    MIN_KEY_CHARS,
    PRIVACY_KEY,
    Pseudonymizer,
    is_pseudonym,
    privacy_key,
    redact_query,
)

__all__ = [
    "FORGOTTEN_USER",
    "ForgetList",
    "MIN_KEY_CHARS",
    "PRIVACY_KEY",
    "Pseudonymizer",
    "UserPrivacy",
    "drop_forgotten",
    "forget_in_jsonl",
    "forget_in_parquet",
    "forgotten_values",
    "is_pseudonym",
    "privacy_dir",
    "privacy_key",
    "pseudonymize_column",
    "redact_query",
]


@dataclass(frozen=True)
class UserPrivacy:
    """The `privacy:` settings with their key and forget list, ready to apply.

    Build it with `UserPrivacy.open`; `pseudonymizer` is None only when no key is set
    and nothing needs one.
    """

    config: PrivacyConfig
    pseudonymizer: Pseudonymizer | None
    forget: ForgetList

    @classmethod
    def open(
        cls,
        config: PrivacyConfig,
        state_dir: Path,
        environ: Mapping[str, str] | None = None,
    ) -> UserPrivacy:
        """The settings, the key (required when the settings need one) and the list.

        Raises:
            PrivacyKeyError: `pseudonymize_users` or `log_queries: hashed` without a
                usable `SHELFWISE_PRIVACY_KEY`, or a weak key.
        """
        env = os.environ if environ is None else environ
        needs = (
            "privacy.pseudonymize_users"
            if config.pseudonymize_users
            else "privacy.log_queries: hashed"
            if config.log_queries == "hashed"
            else ""
        )
        key = privacy_key(env, purpose=needs) if needs or env.get(PRIVACY_KEY) else None
        return cls(
            config=config,
            pseudonymizer=Pseudonymizer(key) if key is not None else None,
            forget=ForgetList(privacy_dir(state_dir)),
        )

    @property
    def enabled(self) -> bool:
        """True when user ids are pseudonymised."""
        return self.config.pseudonymize_users

    def user(self, raw_user_id: str) -> str:
        """The id to store for a raw user id: its pseudonym when enabled, else itself."""
        if self.pseudonymizer is None or not self.config.pseudonymize_users:
            return raw_user_id
        return self.pseudonymizer(raw_user_id)

    def pseudonym(self, raw_user_id: str) -> str:
        """The pseudonym of a raw id whatever the settings (forget list, audit).

        Raises:
            PrivacyKeyError: no key is set.
        """
        if self.pseudonymizer is None:
            raise PrivacyKeyError(
                f"forgetting a user needs {PRIVACY_KEY} (the forget list and the audit "
                "trail hold keyed hashes, never raw ids); set it to at least "
                f"{MIN_KEY_CHARS} random characters, the same for run and serve"
            )
        return self.pseudonymizer(raw_user_id)

    def query(self, text: str | None) -> str | None:
        """A query as `log_queries` lets it be logged (None for none)."""
        if text is None or self.config.log_queries == "none":
            return None
        return redact_query(
            text,
            self.config.log_queries,
            chars=self.config.query_log_chars,
            pseudonymizer=self.pseudonymizer,
        )

    def cache_part(self) -> dict[str, Any]:
        """What a run's ingest output depends on: the settings, which key, the list."""
        return {
            "pseudonymize_users": self.config.pseudonymize_users,
            "key": None if self.pseudonymizer is None else self.pseudonymizer.key_id,
            "forget": self.forget.digest(),
        }
