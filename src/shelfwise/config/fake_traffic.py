"""Thresholds of the fake-traffic check (`data.fake_traffic:`): bots and fake orders.

The defaults sit well outside what human shoppers do and were checked on the sample
shop (no human flagged among 1,800 generated shoppers with up to 369 events) and
against the injected bots of `shelfwise generate --bots` (benchmarks/bots.py).
"""

from __future__ import annotations

from pydantic import Field

from shelfwise.config._base import Section


class FakeTrafficConfig(Section):
    """Which users validate quarantines as bots (`suspected-bot`) or fake-order
    accounts (`suspected-fake-order`). Only browse events (view, click, cart,
    purchase) with real time (not ordinal) are looked at; ratings never are."""

    enabled: bool = Field(default=True, description="Run the fake-traffic check at all.")
    max_events_per_minute: float = Field(
        default=30.0,
        gt=0,
        description="Bot when a user's events within any rate_window_seconds exceed this "
        "rate (sustained, not a single burst).",
    )
    rate_window_seconds: int = Field(
        default=300, ge=1, description="Window over which the event rate must hold."
    )
    min_events: int = Field(
        default=20,
        ge=3,
        description="Events a user needs before the dwell and regularity patterns apply.",
    )
    min_dwell_seconds: float = Field(
        default=1.0,
        ge=0,
        description="A view or click this soon after the user's previous event had no dwell.",
    )
    max_no_dwell_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Bot when more than this share of a user's view/click gaps have no dwell.",
    )
    regular_tolerance: float = Field(
        default=0.1,
        gt=0,
        description="A gap within this relative distance (or 1 s) of the user's median gap "
        "counts as regular.",
    )
    max_regular_share: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Bot (scripted) when more than this share of a user's gaps are regular.",
    )
    new_account_seconds: int = Field(
        default=86_400,
        ge=1,
        description="A purchase this soon after the user's first event is a new account's.",
    )
    ring_max_user_events: int = Field(
        default=10,
        ge=1,
        description="Only users with at most this many events can be part of a fake-order ring.",
    )
    ring_window_seconds: int = Field(
        default=3_600,
        ge=1,
        description="Window in which new accounts buying the same product form a ring.",
    )
    ring_min_accounts: int = Field(
        default=5,
        ge=2,
        description="Fake-order ring when at least this many new accounts buy the same "
        "product within ring_window_seconds.",
    )
    unviewed_min_purchases: int = Field(
        default=3,
        ge=1,
        description="Fake orders when a user has at least this many purchases, none "
        "after a view, click or cart of the item, and browsed no more than they bought "
        "(only when the shop logs views).",
    )
    warn_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Warn when more than this share of the events is quarantined as fake.",
    )
    max_share: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="When more than this share of the events would be flagged, quarantine "
        "none and warn: the rules do not fit how this shop logs (impressions as views, bulk "
        "imports, generated data); adjust the thresholds.",
    )
