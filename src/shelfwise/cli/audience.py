"""`shelfwise audience`: the users most likely to buy each product of a file, for
campaigns (the batch form of `GET /v1/items/{id}/audience`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from shelfwise.cli.app import ConfigOption, SetOption, console, guard, load_cli_config
from shelfwise.cli.models import resolve_bundle

if TYPE_CHECKING:
    from shelfwise.runtime.audience import AudienceResult

_ID_COLUMNS: Final = ("raw_item_id", "item_id")


def audience(
    items: Annotated[
        Path,
        typer.Option(
            "--items",
            help="Products: a .txt file with one id per line, or a csv/tsv/parquet/jsonl "
            "file with a raw_item_id or item_id column.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output Parquet file.")],
    k: Annotated[int, typer.Option("--k", min=1, help="Users per product.")] = 1000,
    active_days: Annotated[
        int | None,
        typer.Option(min=1, help="Only users active in the last N days of the data."),
    ] = None,
    block: Annotated[
        int, typer.Option(min=1, help="Products scored at once (memory: users × block).")
    ] = 256,
    config: ConfigOption = None,
    sets: SetOption = None,
    bundle: Annotated[Path | None, typer.Option(help="Use this bundle folder.")] = None,
    model_version: Annotated[
        str | None, typer.Option(help="Use this registered version (default: the champion).")
    ] = None,
) -> None:
    """Write the k users most likely to buy each product (raw_item_id, rank,
    raw_user_id, score, signal) to a Parquet file, product by product."""

    def body() -> None:
        from shelfwise.runtime import load_engine
        from shelfwise.runtime.audience import AudienceModel

        cfg = load_cli_config(config, sets)
        path = resolve_bundle(cfg, bundle, model_version)
        wanted = read_item_ids(items)
        model = AudienceModel.from_engine(load_engine(path))
        rows = write_audiences(
            model.rank_many(wanted, k, active_days=active_days, block=block), out
        )
        console.print(f"wrote {rows:,} rows ({len(wanted):,} products, k={k}) to {out}")

    guard(body)


def read_item_ids(path: Path) -> list[str]:
    """The product ids of `path`, in file order, without repeats.

    Raises:
        DataError: the file is missing, empty or has no id column.
    """
    import polars as pl

    from shelfwise.errors import DataError

    if not path.is_file():
        raise DataError(f"--items {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        lines = path.read_text(encoding="utf-8").splitlines()
        ids = [line.strip() for line in lines if line.strip()]
    else:
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif suffix == ".jsonl":
            frame = pl.read_ndjson(path)
        else:
            frame = pl.read_csv(
                path, separator="\t" if suffix == ".tsv" else ",", infer_schema=False
            )
        column = next((c for c in _ID_COLUMNS if c in frame.columns), None)
        if column is None:
            raise DataError(
                f"--items {path}: no raw_item_id or item_id column (columns: "
                f"{', '.join(frame.columns)}); name the id column raw_item_id"
            )
        ids = [str(v) for v in frame[column].drop_nulls().to_list()]
    if not ids:
        raise DataError(f"--items {path}: no product ids in the file")
    return list(dict.fromkeys(ids))


def write_audiences(results: Iterable[AudienceResult], out: Path) -> int:
    """Write audiences to Parquet one product at a time; return the rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("raw_item_id", pa.string()),
            ("rank", pa.int32()),
            ("raw_user_id", pa.string()),
            ("score", pa.float64()),
            ("signal", pa.string()),
        ]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    rows = 0
    with pq.ParquetWriter(partial, schema) as writer:
        for result in results:
            n = len(result.user_ids)
            writer.write_table(
                pa.table(
                    {
                        "raw_item_id": [result.raw_item_id] * n,
                        "rank": list(range(1, n + 1)),
                        "raw_user_id": result.user_ids,
                        "score": result.scores,
                        "signal": [result.signal] * n,
                    },
                    schema=schema,
                )
            )
            rows += n
    partial.replace(out)  # a killed run leaves no half-written file under the real name
    return rows
