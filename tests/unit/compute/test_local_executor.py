"""The local executor and engine selection: order, shared input, errors naming the block."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from shelfwise.compute import Executor, LocalExecutor, open_executor
from shelfwise.config import ComputeConfig
from shelfwise.errors import ComputeUnavailableError


def _row_sums(block: range, shared: np.ndarray) -> list[float]:
    return [float(shared[row].sum()) for row in block]


def test_blocks_run_in_order_with_the_shared_input() -> None:
    matrix = np.arange(12.0).reshape(6, 2)
    blocks = [range(0, 2), range(2, 4), range(4, 6)]
    executor: Executor = LocalExecutor()
    assert executor.map(_row_sums, blocks, matrix) == [[1.0, 5.0], [9.0, 13.0], [17.0, 21.0]]
    assert (executor.name, executor.parallelism) == ("local", 1)


def test_shared_input_is_passed_as_it_is_not_copied() -> None:
    shared = {"model": object()}
    seen = LocalExecutor().map(lambda block, value: value is shared, [1, 2], shared)
    assert seen == [True, True]


def test_imap_reads_blocks_as_it_goes() -> None:
    read: list[int] = []

    def blocks() -> Iterator[int]:
        for index in range(3):
            read.append(index)
            yield index

    results = LocalExecutor().imap(lambda block, _: block * 10, blocks(), None)
    assert next(results) == 0
    assert read == [0]  # the next block is not read before its turn
    assert list(results) == [10, 20]


def test_an_error_in_the_work_keeps_its_type_and_names_the_block() -> None:
    def fail_on_two(block: int, _: None) -> int:
        if block == 2:
            raise ValueError(f"bad block {block}")
        return block

    with pytest.raises(ValueError, match="bad block 2") as caught:
        LocalExecutor().map(fail_on_two, [0, 1, 2, 3], None, what="user block")
    assert "in user block 3 of 4 (compute engine local)" in caught.value.__notes__


def test_default_and_local_config_give_the_local_engine() -> None:
    assert isinstance(open_executor(), LocalExecutor)
    assert isinstance(open_executor(ComputeConfig()), LocalExecutor)


def test_ray_without_ray_installed_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    with pytest.raises(ComputeUnavailableError, match=r"cannot be imported.*shelfwise\[cluster\]"):
        open_executor(ComputeConfig(engine="ray", address="127.0.0.1:1"))


def test_an_unreachable_cluster_is_a_clear_error() -> None:
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ComputeConfig(engine="ray", address=f"127.0.0.1:{port}")
    with pytest.raises(
        ComputeUnavailableError,
        match=rf"no Ray cluster answers at compute.address='127.0.0.1:{port}'.*"
        r"compute.engine: local",
    ):
        open_executor(config)
