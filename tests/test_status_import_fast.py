"""The bulk path of authority imports gives what the row-by-row path gives.

City-scale imports read CSV lines by splitting them, check resident IDs a
batch at a time (``healthcode_canonical_numbers``) and hash with a prepared
HMAC state (``DocumentKeyer``). Each of these is checked here against the
definition it shortcuts: the ``csv`` module, the parse hook and
``document_key``.
"""

from __future__ import annotations

import csv
import functools
import io
import random
from collections.abc import Iterable, Iterator, Sequence

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthcode.core.batch import DocumentChecker
from healthcode.core.checkdigits import gb11643_check_char
from healthcode.core.errors import HealthcodeError
from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import Document, DocumentSubmission, DocumentType
from healthcode.core.plugins import new_plugin_manager
from healthcode.core.privacy import DocumentKeyer, OperatorSecrets, document_key, generate_secrets
from healthcode.core.status.rows import (
    BatchKeyer,
    InvalidRow,
    KeyedRow,
    RawRow,
    Record,
    RowKeyer,
    read_records,
)
from healthcode.plugins.id_card import divisions
from healthcode.testing.resident_id import random_legacy_resident_id, random_resident_id

KIND = "cn_resident_id"
SECRETS = generate_secrets()
_CODES = sorted(divisions())


# --- the resident-ID batch check equals the parse -----------------------------------------


@st.composite
def resident_id_like(draw: st.DrawFn) -> str:
    """18 characters near a resident ID: real or made-up division codes,
    dates real and not, right and wrong check characters, stray letters."""
    code = draw(st.sampled_from(_CODES) | st.from_regex(r"[0-9]{6}", fullmatch=True))
    year = draw(
        st.sampled_from(["0000", "1900", "2000", "2100", "9999"])
        | st.from_regex(r"1[89][0-9]{2}|20[0-2][0-9]", fullmatch=True)
    )
    month = draw(st.integers(0, 13))
    day = draw(st.integers(0, 32))
    body = f"{code}{year}{month:02d}{day:02d}{draw(st.integers(0, 999)):03d}"
    check = draw(st.sampled_from([gb11643_check_char(body)]) | st.sampled_from("0123456789X"))
    number = body + check
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, 17))
        number = number[:at] + draw(st.sampled_from("AXZ")) + number[at + 1 :]
    return number  # fmt: skip


@functools.cache
def _builtin() -> tuple[pluggy.PluginManager, DocumentChecker]:
    pm = new_plugin_manager(autoload=False)
    return pm, DocumentChecker(pm)


def _parsed(pm: pluggy.PluginManager, number: str) -> tuple[str | None, str] | None:
    checker = _builtin()[1] if pm is _builtin()[0] else DocumentChecker(pm)
    try:
        document = checker.parse_hook(DocumentSubmission(kind=KIND, number=number))
    except HealthcodeError:
        return None
    if not isinstance(document, Document):
        return None
    if any(p.severity == "error" for p in document.problems):
        return None
    return document.issuing_state, document.number


@settings(max_examples=300, deadline=None)
@given(st.lists(resident_id_like(), min_size=1, max_size=40))
def test_the_resident_id_batch_check_equals_the_parse(numbers: list[str]) -> None:
    pm = _builtin()[0]
    bulk = pm.hook.healthcode_canonical_numbers(kind=KIND, numbers=numbers)
    # Exact for 18 characters: no valid number is sent the slow way, no invalid one let in.
    assert list(bulk) == [_parsed(pm, n) for n in numbers]


def test_the_batch_check_leaves_other_shapes_and_kinds_to_the_parse(
    pm: pluggy.PluginManager,
) -> None:
    legacy = random_legacy_resident_id(random.Random(3))
    assert _parsed(pm, legacy) is not None  # valid, but the parse makes it 18 digits
    hook = pm.hook.healthcode_canonical_numbers
    assert hook(kind=KIND, numbers=[legacy, "", "E12345678"]) == [None, None, None]
    assert hook(kind="passport", numbers=["E12345678"]) is None
    assert hook(kind=KIND, numbers=[]) == []


# --- the prepared HMAC equals document_key --------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    key=st.binary(min_size=1, max_size=130),
    state=st.none() | st.sampled_from(["CHN", "chn", "UTO"]),
    numbers=st.lists(st.from_regex(r"[0-9A-Z]{1,20}", fullmatch=True), max_size=5),
)
def test_the_prepared_hmac_equals_document_key(
    key: bytes, state: str | None, numbers: list[str]
) -> None:
    secrets = OperatorSecrets(
        subject_hmac_key=key, template_keys={"t1": b"k" * 32}, current_template_key_id="t1"
    )
    expected = [document_key(secrets, KIND, state, n) for n in numbers]
    assert DocumentKeyer(secrets).keys(KIND, state, numbers) == expected


# --- CSV lines split as the csv module reads them -----------------------------------------


def _reference_records(lines: Iterable[str]) -> Iterator[tuple[int, list[str]] | int]:
    """What the csv module reads: (first line, fields) per record; a bare
    line number for a record of the wrong width. Blank records skipped."""
    reader = csv.reader(lines)
    width = len(next(reader))
    ended = reader.line_num
    for record in reader:
        line, ended = ended + 1, reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        yield (line, record) if len(record) == width else line


_FIELD = st.text(alphabet='ab1 ,"\r\n', max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.lists(_FIELD, min_size=1, max_size=4), max_size=8),
    terminator=st.sampled_from(["\n", "\r\n"]),
)
def test_csv_lines_are_read_as_the_csv_module_reads_them(
    rows: list[list[str]], terminator: str
) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=terminator)
    writer.writerow(["kind", "number", "status"])
    writer.writerows(rows)
    text = out.getvalue()
    lines = list(io.StringIO(text, newline=""))
    got: list[tuple[int, list[str]] | int] = []
    for record in read_records(lines, "csv"):
        if isinstance(record, InvalidRow):
            assert record.code == "import_wrong_column_count"
            got.append(record.line)
        else:
            got.append((record[0], [record[1], record[2], record[3]]))
    assert got == list(_reference_records(lines))


def test_an_issuing_state_column_is_read() -> None:
    lines = ["status,issuing_state,number,kind\n", "red,UTO,L898902C3,passport\n"]
    assert list(read_records(lines, "csv")) == [(2, "passport", "L898902C3", "red", "UTO")]


# --- a batch keys as the rows key one by one --------------------------------------------------


def _mixed_records(rng: random.Random) -> list[Record | InvalidRow]:
    records: list[Record | InvalidRow] = []
    for line in range(2, 402):
        number: object = random_resident_id(rng)
        kind: object = KIND
        status: object = rng.choice(["red", "yellow", " RED ", "Yellow", "green", "红码"])
        state: object = None
        roll = rng.random()
        if roll < 0.1:
            number = random_legacy_resident_id(rng)
        elif roll < 0.2:
            assert isinstance(number, str)
            number = number[:17] + ("0" if number[17] != "0" else "1")  # wrong check
        elif roll < 0.25:
            assert isinstance(number, str)
            number = number[:17].lower() + "x"
        elif roll < 0.3:
            kind, number, state = "passport", "L898902C3", rng.choice(["UTO", "utopia", ""])
        elif roll < 0.33:
            kind = rng.choice(["", " cn_resident_id ", "nope", 7])
        elif roll < 0.36:
            number = rng.choice([None, 110101, "", " 1101 0519 4912 3100 2X ", "１１０"])
        elif roll < 0.38:
            records.append(InvalidRow(line, "import_invalid_json", "x", "x"))
            continue
        records.append((line, kind, number, status, state))
    return records


def _one_by_one(
    pm: pluggy.PluginManager, records: Sequence[Record | InvalidRow]
) -> tuple[list[tuple[bytes, str]], list[tuple[int, str]]]:
    keyer = RowKeyer(SECRETS, pm)
    keyed: list[tuple[bytes, str]] = []
    invalid: list[tuple[int, str]] = []
    for record in records:
        if isinstance(record, InvalidRow):
            invalid.append((record.line, record.code))
            continue
        line, kind, number, status, state = record
        fields = {"kind": kind, "number": number, "status": status, "issuing_state": state}
        result = keyer(RawRow(line, fields))
        if isinstance(result, KeyedRow):
            keyed.append((result.key, result.colour.value))
        else:
            invalid.append((result.line, result.code))
    return keyed, invalid


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_batch_keys_as_the_rows_key_one_by_one(pm: pluggy.PluginManager, seed: int) -> None:
    records = _mixed_records(random.Random(seed))
    batch = BatchKeyer(SECRETS, pm, canonical=True)(records)
    keyed, invalid = _one_by_one(pm, records)
    assert batch.rows == len(records)
    assert sorted(zip(batch.keys, [c.value for c in batch.colours], strict=True)) == sorted(keyed)
    assert [(row.line, row.code) for row in batch.invalid] == invalid
    assert batch.canonicals is not None and len(batch.canonicals) == len(batch.keys)
    assert len(keyed) > 150 and len(invalid) > 50  # both paths were exercised


class _WrongLengthFastPath:
    """A plugin whose fast path answers with the wrong number of results."""

    @hookimpl
    def healthcode_document_types(self) -> Sequence[DocumentType]:
        return [DocumentType("xx_card", "XX card", "XX 卡", frozenset({"number"}))]

    @hookimpl
    def healthcode_parse_document(self, submission: DocumentSubmission) -> Document | None:
        if submission.kind != "xx_card" or submission.number is None:
            return None
        return Document(kind="xx_card", number=submission.number, issuing_state="XXA")

    @hookimpl
    def healthcode_canonical_numbers(
        self, kind: str, numbers: Sequence[str]
    ) -> Sequence[tuple[str | None, str] | None] | None:
        return None if kind != "xx_card" else [("XXA", "WRONG")] * (len(numbers) + 1)


def test_a_fast_path_that_breaks_its_contract_is_not_trusted(pm: pluggy.PluginManager) -> None:
    pm.register(_WrongLengthFastPath())
    records: list[Record | InvalidRow] = [(2, "xx_card", "A1", "red", None)]
    batch = BatchKeyer(SECRETS, pm)(records)
    assert batch.keys == [document_key(SECRETS, "xx_card", "XXA", "A1")]
