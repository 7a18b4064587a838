"""The local store under kills and concurrent writers (issue 14, crash-safe state)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import shelfwise.registry.local as local
from shelfwise._internal.artifacts import set_crash_hook
from shelfwise.registry import CHAMPION, LocalRegistry

if TYPE_CHECKING:
    from tests.unit.package.conftest import BundleFactory


class _Killed(BaseException):
    """Stands in for a SIGKILL at a crash point."""


@pytest.fixture
def kill_at() -> Iterator[list[str]]:
    """`kill_at.append(step)`: raise _Killed when `crash_point(step)` is reached."""
    steps: list[str] = []

    def hook(step: str) -> None:
        if step in steps:
            raise _Killed(step)

    set_crash_hook(hook)
    try:
        yield steps
    finally:
        set_crash_hook(None)


def test_a_first_publish_killed_before_its_tags_makes_no_champion(
    tmp_path: Path, make_bundle: BundleFactory, kill_at: list[str]
) -> None:
    registry = LocalRegistry(tmp_path / "home")
    kill_at.append("local-store:published")
    with pytest.raises(_Killed):
        registry.publish(make_bundle(), tags={"shelfwise.run_id": "run-1"})
    # a store without registry.json reads "latest is champion": that must not happen to
    # a version no gate has seen
    assert (tmp_path / "home" / "bundles" / "1").is_dir()
    assert registry.by_alias(CHAMPION) is None
    kill_at.clear()
    version, new = registry.publish(make_bundle("again"), tags={"shelfwise.run_id": "run-1"})
    assert (version.version, new) == ("1", False)
    assert version.run_id == "run-1"  # the tags the killed publisher never wrote


def test_a_publish_killed_while_staging_leaves_no_version(
    tmp_path: Path, make_bundle: BundleFactory, kill_at: list[str]
) -> None:
    registry = LocalRegistry(tmp_path / "home")
    kill_at.append("local-store:staged")
    with pytest.raises(_Killed):
        registry.publish(make_bundle())
    assert registry.versions() == []
    kill_at.clear()
    assert registry.publish(make_bundle("again"))[0].version == "1"


def test_concurrent_writers_do_not_lose_each_others_changes(
    tmp_path: Path, make_bundle: BundleFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = LocalRegistry(tmp_path / "home")
    registry.publish(make_bundle())
    write, read = local.atomic_write_json, LocalRegistry._read_state
    first_read, second_read = threading.Event(), threading.Event()

    def reading(self: LocalRegistry) -> Any:
        state = read(self)
        if threading.current_thread().name == "second":
            second_read.set()
        return state

    def writing(path: Path, value: Any) -> None:
        if threading.current_thread().name == "first":
            first_read.set()
            # Without a lock the second writer reads the old state now and writes it
            # back after us; with the lock it cannot read before we are done.
            second_read.wait(timeout=1.0)
        write(path, value)

    monkeypatch.setattr(LocalRegistry, "_read_state", reading)
    monkeypatch.setattr(local, "atomic_write_json", writing)

    def tag(key: str) -> None:
        LocalRegistry(tmp_path / "home").set_tag("1", key, "yes")

    first = threading.Thread(target=tag, args=("first",), name="first")
    second = threading.Thread(target=tag, args=("second",), name="second")
    first.start()
    assert first_read.wait(timeout=5)
    second.start()
    first.join(timeout=10)
    second.join(timeout=10)
    tags = registry.get("1").tags
    assert (tags.get("first"), tags.get("second")) == ("yes", "yes")
