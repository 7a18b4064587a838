"""A real two-node Ray cluster on loopback, once per session (`scripts/ray_cluster.sh`).

The head node (127.0.0.2) and a worker node (127.0.0.3) are each their own raylet with
one CPU, started by the same script a person uses. Tests that need the cluster are
skipped, saying why, only when Ray cannot start here (not installed, or `ray start`
fails); the test process joins the cluster once as a driver through
`shelfwise.compute.open_executor`, like a run with `compute.engine: ray` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "scripts" / "ray_cluster.sh"
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"


@dataclass(frozen=True)
class LoopbackCluster:
    """The running cluster: its address, and the fault tests' levers on the worker node."""

    address: str
    folder: Path

    def _script(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), command, str(self.folder)],
            capture_output=True, text=True, timeout=300, check=False,
            env=_script_env(),
        )  # fmt: skip

    def kill_worker(self) -> None:
        """SIGKILL every process of the worker node at once (a lost machine)."""
        done = self._script("kill-worker")
        assert done.returncode == 0, done.stderr

    def add_worker(self) -> None:
        """Start the worker node again (after `kill_worker`)."""
        done = self._script("add-worker")
        assert done.returncode == 0, done.stderr


def _script_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RAY"] = str(Path(sys.executable).parent / "ray")  # the venv's, whatever PATH says
    # Without token authentication (the script's default is on): a driver joining by
    # address uses a token only when RAY_AUTH_MODE=token was set before Ray was first
    # imported, which this test process cannot promise. The cluster lives for the
    # session and listens on loopback addresses.
    env.setdefault("RAY_AUTH_MODE", "disabled")
    return env


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LoopbackCluster]:
    """Head + worker node on loopback, one CPU each; stopped (by pid) at the end."""
    pytest.importorskip("ray", reason="Ray is not installed: `pip install -e '.[cluster]'`")
    if not (Path(sys.executable).parent / "ray").is_file():
        pytest.skip("no `ray` command beside this Python: `pip install -e '.[cluster]'`")
    # a short folder: Ray's unix sockets live under it (at most 107 bytes a path)
    folder = Path(tempfile.mkdtemp(prefix="swray", dir="/tmp"))
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(folder)],
        capture_output=True, text=True, timeout=600, check=False, env=_script_env(),
    )  # fmt: skip
    if started.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"a Ray cluster cannot start here: {started.stderr.strip()[-800:]}")
    cluster = LoopbackCluster(address=started.stdout.strip().splitlines()[-1], folder=folder)
    try:
        yield cluster
    finally:
        from shelfwise.compute.ray_executor import disconnect

        disconnect()
        subprocess.run(
            ["bash", str(SCRIPT), "stop", str(folder)],
            capture_output=True, text=True, timeout=300, check=False, env=_script_env(),
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
