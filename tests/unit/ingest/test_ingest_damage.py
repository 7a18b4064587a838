"""Damaged inputs stop the run (issue 14, point 1) unless data.allow_partial_files.

Each case was red before: a gzip cut at 60% of its bytes, 64 bytes flipped at 75% of
a 4 MiB gzip and of a 1.5 MB gzip were read as far as possible (exit 0, 58-60% of
the rows), and the small one even ended in `empty-data`.
"""

from __future__ import annotations

import gzip
import json
import secrets
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shelfwise.config import EventsConfig
from shelfwise.contracts import RAW_USER_ID, REASON
from shelfwise.errors import DamagedFileError, InputFileError
from shelfwise.ingest import read_source_detailed

HEADER = "user_id,item_id,event,timestamp,extra\n"


def _gzip_of_size(compressed_bytes: int) -> tuple[bytes, int]:
    """A gzipped events CSV of about `compressed_bytes` (random text barely compresses)."""
    rows = []
    size = 0
    number = 0
    while size < compressed_bytes * 1.9:
        stamp = 1_600_000_000 + number
        row = f"u{number % 997},i{number % 5003},view,{stamp},{secrets.token_hex(24)}\n"
        rows.append(row)
        size += len(row)
        number += 1
    return gzip.compress((HEADER + "".join(rows)).encode(), compresslevel=1), number


def _flip(data: bytes, at: float, count: int = 64) -> bytes:
    damaged = bytearray(data)
    start = int(len(data) * at)
    for index in range(start, start + count):
        damaged[index] ^= 0xA5
    return bytes(damaged)


SIZES = {"1.5MB": 1_500_000, "4MiB": 4 << 20}


@pytest.fixture(scope="module", params=sorted(SIZES))
def whole(request: pytest.FixtureRequest) -> tuple[bytes, int]:
    return _gzip_of_size(SIZES[request.param])


@pytest.mark.parametrize("damage", ["cut at 60%", "64 bytes flipped at 75%"])
def test_damaged_gzip_stops_with_file_and_byte_offset(
    tmp_path: Path, whole: tuple[bytes, int], damage: str
) -> None:
    data, _ = whole
    damaged = data[: int(len(data) * 0.6)] if damage.startswith("cut") else _flip(data, 0.75)
    path = tmp_path / "events.csv.gz"
    path.write_bytes(damaged)
    with pytest.raises(DamagedFileError) as caught:
        read_source_detailed(EventsConfig(path=path), "events")
    message = caught.value.message
    assert str(path) in message
    offset = int(message.split(" is damaged at byte ")[1].split(":")[0].replace(",", ""))
    if damage.startswith("cut"):
        assert offset == len(damaged)  # where the stream stops
    else:  # at the flipped bytes, or at the checksum that proves the data is corrupt
        assert int(len(data) * 0.75) <= offset <= len(data)
    assert "data.allow_partial_files: true" in message
    assert caught.value.code == "input-damaged"


def test_allow_partial_keeps_the_rows_before_the_cut_and_records_it(
    tmp_path: Path, whole: tuple[bytes, int]
) -> None:
    data, rows = whole
    path = tmp_path / "events.csv.gz"
    path.write_bytes(data[: int(len(data) * 0.6)])
    read = read_source_detailed(EventsConfig(path=path), "events", allow_partial=True)
    assert 0.5 * rows < read.data.height < 0.7 * rows
    assert read.quarantine[REASON].to_list() in ([], ["truncated-input"])
    (damage,) = read.damaged
    assert damage.file == str(path)
    assert damage.offset == path.stat().st_size
    assert damage.rows_kept == read.data.height
    assert any(
        "kept the" in warning and "allow_partial_files" in warning for warning in read.warnings
    )


def test_corruption_is_located_to_the_byte(tmp_path: Path) -> None:
    first = gzip.compress(b"user_id,item_id\nu1,i1\n")
    second = gzip.compress(b"u2,i2\n")
    path = tmp_path / "events.csv.gz"
    path.write_bytes(first + b"\x00garbage" + second)  # not a gzip member header
    with pytest.raises(DamagedFileError, match=r"damaged at byte (\d+): corrupt gzip") as caught:
        read_source_detailed(EventsConfig(path=path), "events")
    offset = int(caught.value.message.split(" is damaged at byte ")[1].split(":")[0])
    assert len(first) <= offset <= len(first) + 1  # zlib may need a second header byte
    read = read_source_detailed(EventsConfig(path=path), "events", allow_partial=True)
    assert read.data[RAW_USER_ID].to_list() == ["u1"]


def _parquet(path: Path, rows: int = 30_000) -> None:
    table = pa.table({"user_id": [f"u{i}" for i in range(rows)], "item_id": ["i"] * rows})
    pq.write_table(table, path, row_group_size=10_000)


def test_a_cut_parquet_file_stops_even_with_allow_partial(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    _parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    for allow in (False, True):
        with pytest.raises(DamagedFileError, match=r"Parquet footer .* missing or broken"):
            read_source_detailed(EventsConfig(path=path), "events", allow_partial=allow)


def test_a_damaged_parquet_row_group_keeps_the_groups_before_it(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    _parquet(path)
    column = pq.ParquetFile(path).metadata.row_group(2).column(0)
    start = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(path.read_bytes())
    for index in range(start, start + 64):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFileError, match=f"damaged at byte {start:,}: row group 2"):
        read_source_detailed(EventsConfig(path=path), "events")
    read = read_source_detailed(EventsConfig(path=path), "events", allow_partial=True)
    assert read.data.height == 20_000
    assert read.damaged[0].rows_kept == 20_000


def test_not_a_parquet_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    path.write_text("user_id,item_id\n")
    with pytest.raises(InputFileError, match="not a readable Parquet file") as caught:
        read_source_detailed(EventsConfig(path=path), "events")
    assert not isinstance(caught.value, DamagedFileError)


def test_partial_tail_record_is_quarantined_with_its_text(tmp_path: Path) -> None:
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(b"user_id,item_id\nu1,i1\nu2,i")[:-8])
    read = read_source_detailed(EventsConfig(path=path), "events", allow_partial=True)
    assert read.data[RAW_USER_ID].to_list() == ["u1"]
    assert read.quarantine[REASON].to_list() == ["truncated-input"]
    assert json.loads(read.quarantine["raw_row"][0]) == "u2,i"
    assert pl.Series(read.quarantine["detail"]).str.contains("ends early").all()
