"""The data stages' map on Ray Data: blocks as a dataset, results back in block order.

`RayExecutor.stream` (ingest's files, validate's parts) runs here. Ray is imported by
the caller (`ray_executor`), only with `compute.engine: ray`.

- **The dataset**: one row per block (`ray.data.from_items`, one Ray Data block per row,
  so every block is its own task), `flat_map` over our generator function. The blocks
  are descriptions (a file, a part and its first row number); the function reads its
  data where it runs, so the driver never ships the input.
- **Order**: `preserve_order` in the execution options: Ray Data's streaming executor
  hands rows back in the input's order, whichever task finishes first. The data
  stages' outputs (row order, first-wins duplicates, the quarantine's order and counts)
  then equal the local engine's by construction.
- **Memory**: results are pickled into one binary column (Arrow cannot hold a polars
  frame or a list of bad rows); Ray Data buffers them into blocks of at most
  `target_max_block_size` and its backpressure bounds what waits in the object store,
  so the driver holds one block of results at a time.
- **Errors**: an exception raised by the function is caught in the worker and sent back
  as itself (a `DamagedFileError` stays one, with its exit code), never retried (a pure
  function fails the same way twice). A task whose worker or node died is rerun by Ray
  Data itself, which retries system failures of its tasks until they complete (its own
  default; passing `compute.max_retries` through is deprecated in Ray 2.60); any other
  Ray error stops the stream with `ComputeTaskError`.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

from shelfwise.compute.base import block_name
from shelfwise.errors import ComputeTaskError

_OK: Final = "ok"
_ERROR: Final = "error"


def _rows(
    row: dict[str, Any],
    function: Callable[[Any, Any], Iterable[Any]],
    shared: list[Any],
) -> Iterator[dict[str, Any]]:
    """What a Ray Data task runs for one block: the function's results as pickled rows."""
    import ray

    index = int(row["index"])
    block = pickle.loads(row["block"])
    value = ray.get(shared[0])  # the object store's copy, once per block
    try:
        for result in function(block, value):
            yield {"index": index, "payload": pickle.dumps((_OK, result), protocol=5)}
    except Exception as error:  # sent back as itself; see the module doc
        try:
            payload = pickle.dumps((_ERROR, error), protocol=5)
        except Exception:  # an exception that cannot be pickled: its text travels
            payload = pickle.dumps((_ERROR, RuntimeError(f"{type(error).__name__}: {error}")))
        yield {"index": index, "payload": payload}


def stream(
    ray: Any,
    function: Callable[[Any, Any], Iterable[Any]],
    blocks: Sequence[Any],
    shared: Any,
    *,
    what: str,
) -> Iterator[Any]:
    """Every result of `function` over `blocks` as a Ray Data dataset, in block order.

    Args:
        ray: the imported `ray` module (connected).
        function: a generator function of (block, shared).
        blocks: small, picklable descriptions of the work.
        shared: the read-only input every block needs; put once in the object store.
        what: what a block is, for messages.

    Raises:
        ComputeTaskError: Ray Data stopped (a task that could not run, a node lost
            for good); nothing past the last result is yielded.
        Exception: whatever `function` raised, as itself, with a note naming the block.
    """
    if not blocks:
        return
    from ray.data import DataContext

    with warnings.catch_warnings():
        # Ray 2.60's DataContext() sets its own deprecated `use_push_based_shuffle` field
        # and warns about it (DeprecationWarning): nothing a caller can change.
        warnings.simplefilter("ignore", DeprecationWarning)
        context = DataContext.get_current()
    # The stages consume results in source order (see the module doc); set on the
    # process's context, which every dataset copies when it is created.
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    items = [
        {"index": index, "block": pickle.dumps(block, protocol=5)}
        for index, block in enumerate(blocks)
    ]
    shared_ref = ray.put(shared)
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).flat_map(
        _rows,
        fn_kwargs={"function": function, "shared": [shared_ref]},
        num_cpus=1,
    )
    total = len(blocks)
    index = 0
    try:
        for row in dataset.iter_rows():
            index = int(row["index"])
            status, value = pickle.loads(row["payload"])
            if status == _ERROR:
                value.add_note(
                    f"in {block_name(what, index, total)} (compute engine ray, Ray Data)"
                )
                raise value
            yield value
    except ray.exceptions.RayError as error:
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        raise ComputeTaskError(
            f"Ray Data stopped at {block_name(what, index, total)} or a later one "
            f"({type(error).__name__}: {first_line}); the stage stopped there. "
            "Check the nodes (`ray status`), their memory (the OOM killer) and that every "
            "node can read the run's folder, then rerun with --resume"
        ) from error
    finally:
        del shared_ref
