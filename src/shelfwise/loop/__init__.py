"""The control loop: retrain on new events, judge the canary, promote or roll back."""

from __future__ import annotations

__all__: list[str] = []
