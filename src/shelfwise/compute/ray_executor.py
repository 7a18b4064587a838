"""The Ray executor: blocks of work as Ray tasks spread over a cluster's CPUs.

Ray is imported here only, and only when `compute.engine: ray` asks for it (this module
imports nothing from Ray at import time), so the local engine never pays for it.

- **Connection**: `ray.init` once per process (`connect`); later executors reuse the
  connection. `address: local` starts a Ray inside this process, shut down at exit;
  `auto`, `host:port` and `ray://host:port` join a running cluster, and an address that
  does not answer is a `ComputeUnavailableError` within seconds, not Ray's minute of
  retries.
- **Shared input**: `ray.put` once per map; every task gets the reference, and Ray hands
  the worker the object store's copy (numpy arrays zero-copy, read-only), so a fitted
  model or a CSR matrix crosses the wire once per node, not once per block.
- **Order and memory**: at most `2 x CPUs` blocks are in flight; results come back in
  input order as they finish (`imap`), so a generator of blocks and a consumer that
  writes results out keep the driver's memory bounded.
- **Failures**: a block whose worker or node dies is rerun by Ray (`max_retries`, on any
  node with a free CPU). When the retries are used up the map stops with a
  `ComputeTaskError` naming the block, and the blocks still running are cancelled: a
  map never returns part of its results. An exception raised by the function itself is
  not retried (a pure function fails the same way twice); it is re-raised as itself,
  with a note naming the block and the remote traceback chained.
- **Data stages**: `stream` runs ingest's files and validate's parts as a Ray Data
  dataset instead of plain tasks (`ray_data`).
"""

from __future__ import annotations

import atexit
import logging
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

from shelfwise.compute.base import (
    BlockT,
    Executor,
    ResultT,
    SharedT,
    block_name,
    count_of,
)
from shelfwise.config.compute import ComputeConfig
from shelfwise.errors import ComputeTaskError, ComputeUnavailableError

RAY: Final = "ray"
# Blocks in flight per CPU: two keeps every CPU busy while results travel back, and
# bounds what the object store and the driver hold at once.
IN_FLIGHT_PER_CPU: Final = 2
# Seconds to wait for a TCP answer from a cluster's address before calling it
# unreachable (ray.init itself retries for about a minute before it gives up).
CONNECT_TIMEOUT_S: Final = 5.0
_INSTALL_HINT: Final = (
    "install the cluster extra (`pip install -c constraints.txt 'shelfwise[cluster]'`) "
    "or set compute.engine: local"
)


# The address this process joined through `connect` (None: not connected by us). One
# connection per process: ray.init may be called once until ray.shutdown.
_connected_address: str | None = None
_shutdown_registered = False


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise ComputeUnavailableError(
            f"compute.engine is ray but Ray cannot be imported ({error}); {_INSTALL_HINT}"
        ) from None
    return ray


def connect(config: ComputeConfig) -> None:
    """Connect this process to Ray as `config` says, once: later calls reuse it.

    A connection to another address is closed first. A Ray initialised by someone else
    in this process (a notebook, a Ray worker) is used as it is.

    Raises:
        ComputeUnavailableError: Ray is not installed, or nothing answers at the address.
    """
    global _connected_address, _shutdown_registered
    ray = _import_ray()
    if ray.is_initialized() and _connected_address in (None, config.address):
        return
    if config.address not in ("local", "auto"):
        _check_reachable(config.address)  # before leaving a working connection
    disconnect()
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        # Workers' prints (progress bars of a dozen tasks at once) stay in their logs
        # under the session folder instead of interleaving with the run's output.
        "log_to_driver": False,
    }
    if config.address == "local":
        kwargs["num_cpus"] = config.num_cpus
        if config.object_store_mb is not None:
            kwargs["object_store_memory"] = config.object_store_mb * 1024 * 1024
    try:
        ray.init(address=config.address, **kwargs)
    except (
        ConnectionError,
        RuntimeError,
        ValueError,
        TimeoutError,
        ray.exceptions.RayError,
    ) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ComputeUnavailableError(
            f"cannot connect to Ray at compute.address={config.address!r}: {reason}; start "
            "the cluster (`ray start --head`), fix compute.address, or set "
            "compute.engine: local (a cluster with token authentication also needs "
            "RAY_AUTH_MODE=token and its token in this process's environment)"
        ) from error
    _connected_address = config.address
    if not _shutdown_registered:  # a Ray started here stops with the process
        atexit.register(disconnect)
        _shutdown_registered = True


def disconnect() -> None:
    """Leave Ray: stops a Ray started here, detaches from a cluster (no-op if not joined)."""
    global _connected_address
    if _connected_address is None:
        return
    _connected_address = None
    ray = _import_ray()
    if ray.is_initialized():
        ray.shutdown()


def _check_reachable(address: str) -> None:
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ComputeUnavailableError(
            f"no Ray cluster answers at compute.address={address!r} ({reason} after at most "
            f"{CONNECT_TIMEOUT_S:.0f} s); start it (`ray start --head --port {port}`), fix "
            "the address, or set compute.engine: local"
        ) from None


def _run_block(function: Callable[[Any, Any], Any], block: Any, shared: Any) -> Any:
    """What a Ray task runs: one block (Ray has resolved `shared` to the stored value)."""
    return function(block, shared)


_remote_block: Any = None


def _remote() -> Any:
    global _remote_block
    if _remote_block is None:
        _remote_block = _import_ray().remote(_run_block)
    return _remote_block


class RayExecutor(Executor):
    """Runs blocks as Ray tasks, one CPU each, spread over the cluster's nodes.

    Relations: same results and order as `LocalExecutor` (the tests run both on a real
    two-node cluster); build it with `open_executor(config)`, which connects first.

    Args:
        max_retries: reruns of a block whose worker or node died (`compute.max_retries`).
    """

    def __init__(self, *, max_retries: int = 3) -> None:
        self._ray = _import_ray()
        if not self._ray.is_initialized():
            raise ComputeUnavailableError(
                "RayExecutor needs a Ray connection; build it with "
                "shelfwise.compute.open_executor(config.compute)"
            )
        self._max_retries = max_retries

    @property
    def name(self) -> str:
        """`ray`."""
        return RAY

    @property
    def parallelism(self) -> int:
        """The cluster's CPUs now (nodes may join or leave later)."""
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def imap(
        self,
        function: Callable[[BlockT, SharedT], ResultT],
        blocks: Iterable[BlockT],
        shared: SharedT,
        *,
        what: str = "block",
    ) -> Iterator[ResultT]:
        """`function(block, shared)` for each block as a Ray task, yielded in input order.

        See `shelfwise.compute.Executor.imap`; the module docstring says how shared
        inputs, ordering, memory and failures are handled.
        """
        ray = self._ray
        total = count_of(blocks)
        task = _remote().options(
            num_cpus=1,
            max_retries=self._max_retries,
            retry_exceptions=False,
            scheduling_strategy="SPREAD",  # blocks go round the nodes, not pile on one
        )
        shared_ref = ray.put(shared)
        window = IN_FLIGHT_PER_CPU * self.parallelism
        pending: deque[tuple[int, Any]] = deque()
        source = enumerate(blocks)
        try:
            for index, block in source:
                pending.append((index, task.remote(function, block, shared_ref)))
                if len(pending) >= window:
                    yield self._result(*pending.popleft(), what=what, total=total)
            while pending:
                yield self._result(*pending.popleft(), what=what, total=total)
        finally:
            for _, ref in pending:  # on failure or an abandoned iterator: stop the rest
                ray.cancel(ref)
            del shared_ref

    def stream(
        self,
        function: Callable[[BlockT, SharedT], Iterable[ResultT]],
        blocks: Sequence[BlockT],
        shared: SharedT,
        *,
        what: str = "part",
    ) -> Iterator[ResultT]:
        """Every result of `function` over `blocks` as a Ray Data dataset, in block order.

        See `shelfwise.compute.Executor.stream` and `shelfwise.compute.ray_data`.
        """
        from shelfwise.compute import ray_data

        return ray_data.stream(
            self._ray,
            function,
            blocks,
            shared,
            what=what,
        )

    def _result(self, index: int, ref: Any, *, what: str, total: int | None) -> Any:
        exceptions = self._ray.exceptions
        name = block_name(what, index, total)
        try:
            return self._ray.get(ref)
        except exceptions.RayTaskError as error:
            cause = error.cause
            if not isinstance(cause, Exception) or isinstance(cause, exceptions.RayError):
                # the work's error could not travel back as itself: Ray's wrapper carries
                # its name and the remote traceback
                error.add_note(f"in {name} (compute engine ray)")
                raise
            cause.add_note(f"in {name} (compute engine ray; remote traceback above)")
            raise cause from error
        except exceptions.RayError as error:
            raise self._lost(name, error) from error

    def _lost(self, name: str, error: BaseException) -> ComputeTaskError:
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        tries = self._max_retries + 1
        return ComputeTaskError(
            f"{name} was lost on Ray after {tries} tr{'y' if tries == 1 else 'ies'} "
            f"({type(error).__name__}: {first_line}); the map stopped and kept no partial "
            "result. Its worker or node died: check the nodes (`ray status`) and their "
            "memory (the OOM killer), then rerun with --resume; compute.max_retries sets "
            "how often a lost block is rerun"
        )
