"""Encodings and robust parsing (issue 14, point 6): each case failed before.

- a UTF-16 CSV printed a pyarrow traceback ("Expected 8 columns, got 10: S K U 0 0 0");
- a cp1252 file was 100% rejected, and there was no encoding option;
- a field over ~1 MiB or one unclosed quote in a large file rejected the whole file
  ("straddling object straddles two block boundaries"), with no row number;
- a JSONL `"timestamp": 1e400` stopped ingest with "ComputeError: InvalidNumber".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwise.config import EventsConfig, SourceConfig
from shelfwise.contracts import RAW_ITEM_ID, RAW_USER_ID, REASON, ROW_NUMBER, TIMESTAMP, TITLE
from shelfwise.errors import InputFileError
from shelfwise.ingest import read_source, read_source_detailed
from shelfwise.ingest._chunks import record_chunks

CATALOG = "item_id,title\nSKU0001,Café crème – €5\nSKU0002,联想 笔记本电脑\n"


@pytest.mark.parametrize(
    ("encoding", "configured"),
    [
        ("utf-16", "utf-16"),
        ("utf-16", "auto"),  # the byte order mark says which
        ("utf-8-sig", "auto"),
        ("gb18030", "gb18030"),
        ("utf-8", "utf-8"),
    ],
)
def test_configured_or_detected_encodings_read_the_same_rows(
    tmp_path: Path, encoding: str, configured: str
) -> None:
    path = tmp_path / "catalog.csv"
    path.write_bytes(CATALOG.encode(encoding))
    data, quarantine = read_source(SourceConfig(path=path, encoding=configured), "catalog")  # type: ignore[arg-type]
    assert data[RAW_ITEM_ID].to_list() == ["SKU0001", "SKU0002"]
    assert data[TITLE].to_list() == ["Café crème – €5", "联想 笔记本电脑"]
    assert quarantine.is_empty()


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_single_byte_encodings(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "catalog.csv"
    text = "item_id,title\nSKU0001,Café crème\n"
    path.write_bytes(text.encode(encoding))
    data, _ = read_source(SourceConfig(path=path, encoding=encoding), "catalog")  # type: ignore[arg-type]
    assert data[TITLE].to_list() == ["Café crème"]


def test_utf16_read_as_utf8_names_the_encoding_instead_of_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_bytes(CATALOG.encode("utf-16"))
    with pytest.raises(
        InputFileError,
        match=r"catalog\.csv: cannot read as utf-8: .*UTF-16 byte order mark.*"
        r"data\.catalog\.encoding: utf-16",
    ):
        read_source(SourceConfig(path=path), "catalog")


def test_utf16_without_bom_read_as_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_bytes(CATALOG.encode("utf-16-le"))
    with pytest.raises(InputFileError, match="NUL bytes"):
        read_source(SourceConfig(path=path), "catalog")


def test_a_cp1252_file_read_as_utf8_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_bytes("item_id,title\nSKU1,Café\nSKU2,Crème brûlée\nSKU3,Tea\n".encode("cp1252"))
    with pytest.raises(
        InputFileError,
        match=r"is not UTF-8: 2 of its 3 rows .*catalog\.encoding to the file's encoding, "
        r"e\.g\. cp1252",
    ):
        read_source(SourceConfig(path=path), "catalog")
    with pytest.raises(InputFileError, match=r"encoding is auto.*byte 22 \(0xe9\) is not UTF-8"):
        read_source(SourceConfig(path=path, encoding="auto"), "catalog")


def test_wrong_multibyte_encoding_names_encoding_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_bytes(b"item_id,title\nSKU1,\x81\x20\n")  # 0x81 0x20 is no GB18030 character
    with pytest.raises(InputFileError, match=r"cannot decode as gb18030: byte 0x81 at byte 19"):
        read_source(SourceConfig(path=path, encoding="gb18030"), "catalog")


def test_a_field_over_one_mebibyte_is_read_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    big = "x" * (1 << 21)
    path.write_text(f"item_id,title\ni1,ok\ni2,{big}\ni3,fine\n")
    data, quarantine = read_source(SourceConfig(path=path), "catalog")
    assert data[RAW_ITEM_ID].to_list() == ["i1", "i2", "i3"]  # validate rejects i2's length
    assert quarantine.is_empty()


def test_one_unclosed_quote_quarantines_one_row_not_the_file(tmp_path: Path) -> None:
    lines = [
        f"u{n},i{n},a title with some words to make the file larger {n}" for n in range(60_000)
    ]
    lines[5000] = 'u5000,i5000,"the quote of this field is never closed'
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,title\n" + "\n".join(lines) + "\n")
    assert path.stat().st_size > 3 << 20  # several of pyarrow's 1 MiB blocks
    read = read_source_detailed(EventsConfig(path=path), "events")
    assert read.data.height == 59_999
    assert read.quarantine.select(ROW_NUMBER, REASON).rows() == [(5001, "malformed-row")]
    assert "unclosed quote" in read.quarantine["detail"][0]
    assert json.loads(read.quarantine["raw_row"][0]).startswith('u5000,i5000,"the quote')
    after = read.data.filter(read.data[RAW_USER_ID] == "u5001")
    assert after[ROW_NUMBER].to_list() == [5002]  # the rows after it keep their numbers


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("1e400", "number 1e400 is out of range"),
        ("NaN", "NaN is not a JSON number"),
    ],
)
def test_jsonl_numbers_no_column_can_hold_are_quarantined(
    tmp_path: Path, value: str, detail: str
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"user_id": "u1", "item_id": "i1", "timestamp": 5}\n'
        f'{{"user_id": "u2", "item_id": "i2", "timestamp": {value}}}\n'
        '{"user_id": "u3", "item_id": "i3", "timestamp": 7}\n'
    )
    data, quarantine = read_source(EventsConfig(path=path), "events")
    assert data[RAW_USER_ID].to_list() == ["u1", "u3"]
    assert data[TIMESTAMP].to_list() == [5, 7]
    assert quarantine.select(ROW_NUMBER, REASON).rows() == [(2, "malformed-row")]
    assert detail in quarantine["detail"][0]
    assert "(line 2)" in quarantine["detail"][0]


def test_jsonl_with_mixed_types_across_lines_is_read(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"user_id": 1, "item_id": "i1"}\n{"user_id": "u2", "item_id": [1, 2]}\n\n'
        '{"user_id": "u3", "item_id": "i3"}\n'
    )
    data, quarantine = read_source(EventsConfig(path=path), "events")
    assert data.height == 3
    assert data[ROW_NUMBER].to_list() == [1, 2, 4]
    assert quarantine.is_empty()


# --- the chunker ----------------------------------------------------------------------


def _records(data: bytes, target: int, **kwargs: object) -> list[tuple[str, bytes]]:
    blocks = [data[i : i + 7] for i in range(0, len(data), 7)]
    chunks = record_chunks(
        blocks,
        quote=b'"',
        delimiter=b",",
        target_bytes=target,
        **kwargs,  # type: ignore[arg-type]
    )
    return [(chunk.kind, chunk.data) for chunk in chunks]


CSV = b'a,"x\ny",1\nb,"say ""hi""\n,",2\nc,12" screen,3\n"d",plain,4\ne,"",5\n'


@pytest.mark.parametrize("target", [1, 5, 16, 1 << 20])
def test_chunks_end_between_records_whatever_the_target(target: int) -> None:
    chunks = _records(CSV, target)
    assert all(kind == "records" for kind, _ in chunks)
    assert b"".join(data for _, data in chunks) == CSV
    records = [record for _, data in chunks for record in [data]]
    for data in records:  # every chunk starts a record: never inside a quoted field
        assert not data.startswith((b"y", b",", b'"hi'))


def test_an_unclosed_quote_is_cut_to_its_first_line_and_reading_goes_on() -> None:
    data = b'a,1\nb,"never closed\nc,3\nd,4\n'
    chunks = _records(data, 4)
    assert chunks[0] == ("records", b"a,1\n")
    assert ("broken", b'b,"never closed\n') in chunks
    assert b"".join(d for kind, d in chunks if kind == "records") == b"a,1\nc,3\nd,4\n"


def test_a_cut_stream_hands_back_its_partial_tail() -> None:
    chunks = _records(b'a,1\nb,"open\nstill', 1 << 20, ended_early=lambda: True)
    assert chunks == [("records", b"a,1\n"), ("truncated", b'b,"open\nstill')]
