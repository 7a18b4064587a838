"""The Ray executor on a real two-node loopback cluster (see conftest.py).

Same results as the local executor for real work (item-kNN scoring of user blocks, the
fitted model shared through the object store); the work really spread over both nodes;
lost blocks retried; retries used up, or a node lost mid-map, never give a partial result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import scipy.sparse as sp
from tests.unit.compute.conftest import HEAD_IP, WORKER_IP, LoopbackCluster

from shelfwise.compute import LocalExecutor, open_executor
from shelfwise.compute.ray_executor import RayExecutor
from shelfwise.config import ComputeConfig
from shelfwise.errors import ComputeTaskError
from shelfwise.retrieval.base import UserHistories, recommend_top_k
from shelfwise.retrieval.item_knn import ItemKNNRecommender

ray = pytest.importorskip("ray", reason="Ray is not installed: `pip install -e '.[cluster]'`")
# Ray workers cannot import this test module by name (pytest put its folder on sys.path
# of this process only): its functions travel by value, as a notebook's would.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

N_USERS, N_ITEMS, N_BLOCKS = 240, 60, 8
Shop = tuple[ItemKNNRecommender, sp.csr_matrix]


@pytest.fixture(scope="module")
def executor(ray_cluster: LoopbackCluster) -> RayExecutor:
    """The executor a run with `compute: {engine: ray, address: <cluster>}` gets."""
    made = open_executor(ComputeConfig(engine="ray", address=ray_cluster.address))
    assert isinstance(made, RayExecutor)
    return made


@pytest.fixture(scope="module")
def shop() -> Shop:
    """A fitted item-kNN model and its train matrix (random weights: no score ties)."""
    rng = np.random.default_rng(7)
    dense = rng.uniform(0.5, 5.0, (N_USERS, N_ITEMS)) * (rng.random((N_USERS, N_ITEMS)) < 0.15)
    train = sp.csr_matrix(dense.astype(np.float32))
    model = ItemKNNRecommender(neighbours=20)
    model.fit(train)
    return model, train


def _user_blocks() -> list[np.ndarray]:
    return np.array_split(np.arange(N_USERS), N_BLOCKS)


def _score_block(users: np.ndarray, shared: Shop) -> tuple[np.ndarray, np.ndarray]:
    model, train = shared
    return recommend_top_k(model, UserHistories.select(train, None, users), k=10)


def _node_of(block: int, pause_s: float) -> str:
    time.sleep(pause_s)  # long enough that one node cannot take every block
    return str(ray.get_runtime_context().get_node_id())


def _alive_nodes() -> dict[str, str]:
    return {node["NodeManagerAddress"]: node["NodeID"] for node in ray.nodes() if node["Alive"]}


def test_ray_gives_exactly_the_local_results(executor: RayExecutor, shop: Shop) -> None:
    local = LocalExecutor().map(_score_block, _user_blocks(), shop, what="user block")
    on_ray = executor.map(_score_block, iter(_user_blocks()), shop, what="user block")
    assert len(on_ray) == N_BLOCKS
    for (local_ids, local_scores), (ray_ids, ray_scores) in zip(local, on_ray, strict=True):
        np.testing.assert_array_equal(ray_ids, local_ids)
        np.testing.assert_array_equal(ray_scores, local_scores)
    assert executor.name == "ray"
    assert executor.parallelism == 2  # one CPU per node


def test_work_is_spread_over_both_nodes(executor: RayExecutor) -> None:
    nodes = _alive_nodes()
    assert set(nodes) == {HEAD_IP, WORKER_IP}  # two raylets
    ran_on = executor.map(_node_of, range(8), 0.3)
    assert set(ran_on) == set(nodes.values())


def test_the_shared_input_is_the_object_stores_copy(executor: RayExecutor) -> None:
    # Read-only in every task: the array was put once and mapped from the object store,
    # not pickled into each task (which would give each task a writable copy).
    array = np.arange(100_000, dtype=np.float64)
    flags = executor.map(lambda block, shared: bool(shared.flags.writeable), range(4), array)
    assert flags == [False] * 4
    assert LocalExecutor().map(lambda block, shared: shared is array, range(2), array) == [True] * 2


def test_an_error_in_the_work_keeps_its_type_and_names_the_block(executor: RayExecutor) -> None:
    def fail_on_two(block: int, _: None) -> int:
        if block == 2:
            raise KeyError(f"no such user {block}")
        return block

    with pytest.raises(KeyError, match="no such user 2") as caught:
        executor.map(fail_on_two, range(4), None, what="user block")
    notes = caught.value.__notes__
    assert any("in user block 3 of 4 (compute engine ray" in note for note in notes)
    assert executor.map(fail_on_two, [0, 1], None) == [0, 1]  # still usable afterwards


def _die_once(block: int, folder: str) -> int:
    marker = Path(folder) / f"died-{block}"
    if block == 2 and not marker.exists():
        marker.touch()
        os._exit(1)  # the worker process dies mid-task
    return block * block


def _always_die(block: int, _: None) -> int:
    if block == 2:
        os._exit(1)
    return block


def test_a_block_whose_worker_died_is_rerun(executor: RayExecutor, tmp_path: Path) -> None:
    assert executor.map(_die_once, range(5), str(tmp_path)) == [0, 1, 4, 9, 16]
    assert (tmp_path / "died-2").exists()  # it did die once


def test_retries_used_up_fail_naming_the_block(executor: RayExecutor) -> None:
    one_retry = RayExecutor(max_retries=1)
    with pytest.raises(
        ComputeTaskError, match=r"^user block 3 of 5 was lost on Ray after 2 tries \("
    ) as caught:
        one_retry.map(_always_die, range(5), None, what="user block")
    assert "kept no partial result" in str(caught.value)
    assert executor.map(_always_die, [0, 1], None) == [0, 1]


def _slow_square(block: int, folder: str) -> int:
    node = ray.get_runtime_context().get_node_id()
    (Path(folder) / f"{block}-{node}").touch()  # where each try of the block started
    time.sleep(1.0)
    return block * block


@pytest.mark.slow  # ~30 s: node death detection, then a new worker node
def test_losing_the_worker_node_mid_map_still_gives_every_result(
    executor: RayExecutor, ray_cluster: LoopbackCluster, tmp_path: Path
) -> None:
    worker = _alive_nodes()[WORKER_IP]

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 120
        while not any(path.name.endswith(worker) for path in tmp_path.iterdir()):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        ray_cluster.kill_worker()  # SIGKILL to its raylet and workers, mid-task

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    try:
        results = executor.map(_slow_square, range(10), str(tmp_path))
    finally:
        killer.join()
        ray_cluster.add_worker()
    assert results == [block * block for block in range(10)]
    started = [path.name.split("-", 1) for path in tmp_path.iterdir()]
    lost = {int(block) for block, node in started if node == worker}
    assert lost, "no block ran on the worker node before it was killed"
    head = _alive_nodes()[HEAD_IP]
    for block in lost:  # each block cut short on the lost node ran again on the head
        assert [str(block), head] in started


LOCAL_RAY = """
import json, ray
from shelfwise.compute import open_executor
from shelfwise.config import ComputeConfig
executor = open_executor(ComputeConfig(engine="ray", num_cpus=1, object_store_mb=128))
session = ray._private.worker._global_node.get_session_dir_path()
squares = executor.map(lambda block, shared: block * block + shared, range(6), 1)
print(json.dumps({"session": session, "squares": squares}))
"""


@pytest.mark.slow  # starts and stops a whole Ray (~15 s)
def test_address_local_starts_ray_here_and_stops_it_at_exit() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOCAL_RAY], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["squares"] == [b * b + 1 for b in range(6)]
    time.sleep(2)  # let the last processes of the session go
    leftovers = [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if any(result["session"] in part for part in process.info["cmdline"] or [])
    ]
    assert not leftovers, f"processes of the local Ray outlived the run: {leftovers}"
