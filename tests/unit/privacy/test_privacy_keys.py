"""The keyed hash of user ids: the key's checks, the pseudonym form, query redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import PrivacyConfig
from shelfwise.errors import PrivacyKeyError
from shelfwise.privacy import (
    PRIVACY_KEY,
    Pseudonymizer,
    UserPrivacy,
    is_pseudonym,
    privacy_key,
    redact_query,
)

KEY = "k3y-for-tests-0123456789abcdefghijkl"


def test_the_key_is_required_and_must_not_be_weak() -> None:
    with pytest.raises(PrivacyKeyError, match="SHELFWISE_PRIVACY_KEY is not set"):
        privacy_key({}, purpose="privacy.pseudonymize_users")
    with pytest.raises(PrivacyKeyError, match=r"too weak \(5 characters"):
        privacy_key({PRIVACY_KEY: "short"})
    with pytest.raises(PrivacyKeyError, match="1 distinct"):
        privacy_key({PRIVACY_KEY: "x" * 40})
    assert privacy_key({PRIVACY_KEY: KEY}) == KEY.encode()
    assert PrivacyKeyError.code == "privacy-key"


def test_pseudonyms_are_stable_keyed_and_recognisable() -> None:
    one, other = Pseudonymizer(KEY.encode()), Pseudonymizer((KEY + "!").encode())
    assert one("u42") == Pseudonymizer(KEY.encode())("u42")  # same key, same id
    assert one("u42") != other("u42")
    assert one("u42") != one("u43")
    assert is_pseudonym(one("u42"))
    assert not is_pseudonym("u42")
    assert one.keep_or_hash(one("u42")) == one("u42")  # never hashed twice
    assert one.keep_or_hash("u42") == one("u42")
    assert KEY not in one.key_id
    assert len(one.key_id) == 16


def test_queries_are_logged_as_the_setting_says() -> None:
    hasher = Pseudonymizer(KEY.encode())
    text = "red running shoes for winter"
    assert redact_query(text, "full", chars=8, pseudonymizer=None) == text
    assert redact_query(text, "truncated", chars=8, pseudonymizer=None) == "red runn"
    assert redact_query(text, "none", chars=8, pseudonymizer=None) is None
    hashed = redact_query(text, "hashed", chars=8, pseudonymizer=hasher)
    assert hashed == hasher.text_digest(text)
    assert "shoes" not in str(hashed)
    with pytest.raises(PrivacyKeyError, match="log_queries: hashed needs"):
        redact_query(text, "hashed", chars=8, pseudonymizer=None)


def test_user_privacy_opens_only_with_what_it_needs(tmp_path: Path) -> None:
    off = UserPrivacy.open(PrivacyConfig(), tmp_path, environ={})
    assert off.user("u1") == "u1"
    assert off.pseudonymizer is None
    with pytest.raises(PrivacyKeyError, match="forgetting a user needs"):
        off.pseudonym("u1")
    with pytest.raises(PrivacyKeyError, match="privacy.pseudonymize_users"):
        UserPrivacy.open(PrivacyConfig(pseudonymize_users=True), tmp_path, environ={})
    on = UserPrivacy.open(
        PrivacyConfig(pseudonymize_users=True, log_queries="truncated", query_log_chars=3),
        tmp_path,
        environ={PRIVACY_KEY: KEY},
    )
    assert on.user("u1") == on.pseudonym("u1") != "u1"
    assert on.query("laptop") == "lap"
    assert on.cache_part()["key"] == on.pseudonymizer.key_id  # type: ignore[union-attr]
