"""The executor protocol and the local (in-process) executor.

An executor maps a pure function over blocks of work: `function(block, shared)` for
every block, results in input order. `shared` is the large read-only input every block
needs (a fitted model, a CSR matrix): the Ray executor puts it in the object store once
and every task reads it from there, the local one passes it as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, Protocol, TypeVar

BlockT = TypeVar("BlockT")
SharedT = TypeVar("SharedT")
ResultT = TypeVar("ResultT")

LOCAL: Final = "local"


class Executor(Protocol):
    """Maps a pure function over blocks of work, on one engine.

    Relations: `LocalExecutor` runs the blocks in this process, in order;
    `shelfwise.compute.ray_executor.RayExecutor` runs them as Ray tasks spread over a
    cluster. Both give the same results in the same order, so a stage calls
    `open_executor(config.compute)` and never knows which one it got.
    """

    @property
    def name(self) -> str:
        """The engine: `local` or `ray`."""
        ...

    @property
    def parallelism(self) -> int:
        """How many blocks run at once (a hint for choosing block sizes)."""
        ...

    def imap(
        self,
        function: Callable[[BlockT, SharedT], ResultT],
        blocks: Iterable[BlockT],
        shared: SharedT,
        *,
        what: str = "block",
    ) -> Iterator[ResultT]:
        """`function(block, shared)` for each block, yielded in input order.

        Blocks are read from `blocks` as work is handed out, so a generator of blocks
        (partitions read one at a time) keeps memory bounded.

        Args:
            function: a pure function of one block and the shared input; with Ray it
                must be importable or picklable (a module-level function, not a lambda
                over large arrays: put those in `shared`).
            blocks: the blocks of work, in order.
            shared: the read-only input every block needs (None when there is none);
                put once where the work runs, never copied per block by the caller.
            what: what a block is, for messages ("user block" -> "user block 3 of 8").

        Raises:
            ComputeTaskError: a block was lost (its worker or node died) more often
                than the engine's retries allow; nothing is yielded past it.
            Exception: whatever `function` raised, with a note naming the block.
        """
        ...

    def map(
        self,
        function: Callable[[BlockT, SharedT], ResultT],
        blocks: Iterable[BlockT],
        shared: SharedT,
        *,
        what: str = "block",
    ) -> list[ResultT]:
        """Every result of `imap`, as a list in input order (see `imap`); shared by the
        executors that subclass this protocol."""
        return list(self.imap(function, blocks, shared, what=what))

    def stream(
        self,
        function: Callable[[BlockT, SharedT], Iterable[ResultT]],
        blocks: Sequence[BlockT],
        shared: SharedT,
        *,
        what: str = "part",
    ) -> Iterator[ResultT]:
        """Every result `function(block, shared)` yields, block after block, in order.

        The data stages' map (ingest's files, validate's parts): a block is a small
        description of where its data lies (a file, a part and its first row number),
        and `function` reads it where it runs and yields its results one at a time, so
        neither a block nor its results are held whole. Locally the blocks run here one
        after the other (this default); on Ray they are a Ray Data dataset
        (`ray_data.stream`), its results streamed back in block order.

        Args:
            function: a pure generator function of one block and the shared input; with
                Ray, importable or picklable (see `imap`).
            blocks: the blocks, in order (descriptions, not data: with Ray they are
                listed into the dataset up front).
            shared: the read-only input every block needs (None when there is none).
            what: what a block is, for messages ("events file" -> "events file 2 of 3").

        Raises:
            ComputeTaskError: a block was lost more often than the retries allow.
            Exception: whatever `function` raised, with a note naming the block.
        """
        total = len(blocks)
        for index, block in enumerate(blocks):
            try:
                yield from function(block, shared)
            except Exception as error:
                error.add_note(f"in {block_name(what, index, total)} (compute engine {self.name})")
                raise


def block_name(what: str, index: int, total: int | None) -> str:
    """`user block 3 of 8` (1-based), or `user block 3` when the count is unknown."""
    return f"{what} {index + 1}" + (f" of {total}" if total is not None else "")


def count_of(blocks: Iterable[object]) -> int | None:
    """The number of blocks when `blocks` knows it (a list, a range), else None."""
    try:
        return len(blocks)  # type: ignore[arg-type]  # Sized or not: that is the question
    except TypeError:
        return None


class LocalExecutor(Executor):
    """Runs every block in this process, one after the other, in order.

    The embedded default (`compute.engine: local`): no cluster, no serialisation, the
    shared input passed by reference. The reference the Ray executor is tested against.
    """

    @property
    def name(self) -> str:
        """`local`."""
        return LOCAL

    @property
    def parallelism(self) -> int:
        """1: one block at a time (the work may use threads of its own)."""
        return 1

    def imap(
        self,
        function: Callable[[BlockT, SharedT], ResultT],
        blocks: Iterable[BlockT],
        shared: SharedT,
        *,
        what: str = "block",
    ) -> Iterator[ResultT]:
        """`function(block, shared)` for each block, in order (see `Executor.imap`)."""
        total = count_of(blocks)
        for index, block in enumerate(blocks):
            try:
                result = function(block, shared)
            except Exception as error:
                error.add_note(f"in {block_name(what, index, total)} (compute engine local)")
                raise
            yield result
