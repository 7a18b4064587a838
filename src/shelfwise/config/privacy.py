"""What shelfwise keeps about shoppers (`privacy:`): pseudonymous user ids, query logging.

The key of the keyed hash is a secret, so it is never a config value: it comes from
`SHELFWISE_PRIVACY_KEY` (see `shelfwise.settings` and `shelfwise.privacy`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shelfwise.config._base import Section

QueryLogging = Literal["full", "truncated", "hashed", "none"]


class PrivacyConfig(Section):
    """Pseudonymous user ids and how search queries are logged."""

    pseudonymize_users: bool = Field(
        default=False,
        description="Replace every user id by a keyed hash (HMAC-SHA256 with "
        "$SHELFWISE_PRIVACY_KEY, at least 32 characters) before it is stored: at ingest "
        "(run artefacts, bundle, registry) and at the API edge (event log, online store, "
        "logs). `shelfwise init` writes true for new deployments; the default is false so "
        "that an existing config without this key keeps its users' ids, bundles and "
        "precomputed lists (turning it on later needs one new run: the ids change).",
    )
    log_queries: QueryLogging = Field(
        default="full",
        description="Search queries the server writes to the event log (events' `query`): "
        "full; truncated (the first `query_log_chars` characters); hashed (a keyed hash: "
        "counts and joins still work, the text is gone); none. Search learning and the "
        "query-vocabulary drift gauge read full or truncated queries only.",
    )
    query_log_chars: int = Field(
        default=32,
        ge=1,
        le=256,
        description="With log_queries: truncated, the characters of a query kept.",
    )
