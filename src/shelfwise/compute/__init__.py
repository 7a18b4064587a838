"""Where the batch role's heavy work runs: in this process, or on a Ray cluster.

Stages hand an executor plain data and plain functions, "map this pure function over
these blocks of work", and never import Ray: the engine is chosen by config
(`compute.engine`), and Ray is imported only when it is `ray`.

    executor = open_executor(config.compute)
    scores = executor.map(score_users, user_blocks, shared=model, what="user block")

- `LocalExecutor`: the blocks in this process, in order (the default).
- `RayExecutor` (`ray_executor`): Ray tasks over the cluster's CPUs, the shared input
  put once in the object store, results in input order, lost blocks retried and a
  `ComputeTaskError` naming the block when retries run out.

`stream` is the data stages' map (ingest's files, validate's parts): a generator
function over small block descriptions, every result in block order; on Ray a Ray Data
dataset (`ray_data`).

The online role (serve, runtime) never imports this package.
"""

from __future__ import annotations

from shelfwise.compute.base import Executor, LocalExecutor
from shelfwise.config.compute import ComputeConfig


def open_executor(config: ComputeConfig | None = None) -> Executor:
    """The executor `config` asks for; with Ray, connected (once per process).

    Args:
        config: the `compute:` section; None = the local engine.

    Raises:
        ComputeUnavailableError: engine ray, but Ray is not installed or the address
            does not answer.
    """
    if config is None or config.engine == "local":
        return LocalExecutor()
    from shelfwise.compute.ray_executor import RayExecutor, connect

    connect(config)
    return RayExecutor(max_retries=config.max_retries)


__all__ = ["Executor", "LocalExecutor", "open_executor"]
