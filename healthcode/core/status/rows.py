"""Reading an authority list's rows: CSV (with a header) or JSON Lines, each
row turned into a keyed hash and a colour, or a reason it was refused.

Each number is normalised and canonicalised by the document plugins (so a
15-digit resident ID meets its 18-digit form) before it is hashed; the caller
drops it at once. A refused row says where and why, never what it held.
"""

from __future__ import annotations

import csv
import itertools
import json
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import pluggy
from attrs import frozen

from healthcode.core.batch import DocumentChecker
from healthcode.core.errors import HealthcodeError
from healthcode.core.models import Colour, Document, DocumentSubmission
from healthcode.core.privacy import (
    DocumentKeyer,
    OperatorSecrets,
    canonical_document_key,
    document_key,
)
from healthcode.core.storage.errors import ImportFormatError
from healthcode.core.text import MAX_NUMBER_LENGTH, normalise_number

ImportFormat = Literal["csv", "jsonl"]

_COLUMN_ALIASES = {
    "kind": "kind",
    "document_kind": "kind",
    "number": "number",
    "document_number": "number",
    "status": "status",
    "colour": "status",
    "color": "status",
    "issuing_state": "issuing_state",
}
_STATUS_VALUES = {
    "red": Colour.RED,
    "yellow": Colour.YELLOW,
    Colour.RED.label_zh: Colour.RED,
    Colour.YELLOW.label_zh: Colour.YELLOW,
}


@frozen
class InvalidRow:
    """One rejected row. Says where and why, never what the number was."""

    line: int
    """1-based line of the file where the row starts."""
    code: str
    message_en: str
    message_zh: str
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@frozen
class RawRow:
    """One row as read: its line and its fields under their canonical names."""

    line: int
    fields: Mapping[str, Any] = attrs.field(repr=False)


@frozen
class KeyedRow:
    """A valid row: the keyed hash of its document, and its colour."""

    key: bytes
    colour: Colour
    canonical: bytes | None = attrs.field(repr=False, default=None)
    """The canonical document key (it holds the number), only when peer
    hashes are wanted; the caller drops it once they are made."""


def detect_format(path: Path, first_line: str) -> ImportFormat:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"


Record = tuple[int, Any, Any, Any, Any]
"""One row as read: its 1-based first line, then its kind, number, status and
issuing state as they stand in the file (``None`` where absent)."""


def read_records(lines: Iterable[str], fmt: ImportFormat) -> Iterator[Record | InvalidRow]:
    """The rows of ``lines`` in ``fmt``; a row that cannot be read is an ``InvalidRow``."""
    return _iter_csv(lines) if fmt == "csv" else _iter_jsonl(lines)


def read_rows(lines: Iterable[str], fmt: ImportFormat) -> Iterator[RawRow | InvalidRow]:
    """``read_records`` as ``RawRow``s (fields under their canonical names)."""
    for record in read_records(lines, fmt):
        yield record if isinstance(record, InvalidRow) else _raw(record)


def _raw(record: Record) -> RawRow:
    line, kind, number, status, state = record
    return RawRow(line, {"kind": kind, "number": number, "status": status, "issuing_state": state})


def _iter_csv(lines: Iterable[str]) -> Iterator[Record | InvalidRow]:
    """CSV rows. A line without quotes (nearly every line of an authority's
    list) is split on commas, which is what the ``csv`` module would make of
    it; a line with a quote (a field may then span lines) or a NUL (which
    ``csv`` refuses) is read by the ``csv`` module."""
    source = iter(lines)
    reader = csv.reader(source)
    try:
        header = next(reader)
    except StopIteration:
        return
    columns = _csv_columns(header)
    width = len(columns)
    at = {name: i for i, name in enumerate(columns) if name is not None}
    kind_at, number_at, status_at = at["kind"], at["number"], at["status"]
    state_at = at.get("issuing_state")
    line = reader.line_num
    for text in source:
        line += 1
        start = line
        if '"' in text or "\0" in text:
            quoted = csv.reader(itertools.chain((text,), source))
            record = next(quoted, [])
            line += quoted.line_num - 1
        else:
            record = text.rstrip("\r\n").split(",")
        if len(record) != width:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            yield InvalidRow(
                start,
                "import_wrong_column_count",
                f"The row has {len(record)} columns; the header has {width}.",
                f"该行有 {len(record)} 列，表头为 {width} 列。",
            )
            continue
        yield (
            start,
            record[kind_at],
            record[number_at],
            record[status_at],
            None if state_at is None else record[state_at],
        )


def _csv_columns(header: list[str]) -> list[str | None]:
    """The canonical name of each header column (None: a column we ignore)."""
    columns = [_COLUMN_ALIASES.get(name.strip().lower().lstrip("\ufeff")) for name in header]
    missing = {"kind", "number", "status"} - {c for c in columns if c}
    if missing:
        raise ImportFormatError(
            f"The CSV header lacks the column(s): {', '.join(sorted(missing))}.",
            f"CSV 表头缺少列：{'、'.join(sorted(missing))}。",
            details={"missing_columns": sorted(missing)},
        )
    return columns


def _iter_jsonl(lines: Iterable[str]) -> Iterator[Record | InvalidRow]:
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            # Not JSON; or an integer past Python's 4,300-digit limit
            # (ValueError), or nesting deeper than the parser's stack.
            obj = None
        if not isinstance(obj, dict):
            yield InvalidRow(
                line_no,
                "import_invalid_json",
                "The line is not a JSON object.",
                "该行不是 JSON 对象。",
            )
            continue
        fields = {
            _COLUMN_ALIASES[k]: v
            for k, v in obj.items()
            if isinstance(k, str) and k in _COLUMN_ALIASES
        }
        get = fields.get
        yield (line_no, get("kind"), get("number"), get("status"), get("issuing_state"))


def _invalid(line: int, error: HealthcodeError, field: str | None) -> InvalidRow:
    return InvalidRow(line, error.code, error.message_en, error.message_zh, field)


class RowKeyer:
    """Turns one row's fields into a ``KeyedRow``, or an ``InvalidRow``."""

    def __init__(
        self, secrets: OperatorSecrets, pm: pluggy.PluginManager, *, canonical: bool = False
    ) -> None:
        self._secrets = secrets
        self._canonical = canonical
        # The batch path: the parse hook's implementations resolved once for
        # the whole import, not dispatched through pluggy per row.
        checker = DocumentChecker(pm)
        self.kinds = frozenset(checker.kinds)
        self._parse = checker.parse_hook

    def __call__(self, row: RawRow) -> KeyedRow | InvalidRow:
        kind = self._kind(row)
        if isinstance(kind, InvalidRow):
            return kind
        colour = _colour(row)
        if isinstance(colour, InvalidRow):
            return colour
        document = self._document(row, kind)
        if isinstance(document, InvalidRow):
            return document
        key = document_key(self._secrets, document.kind, document.issuing_state, document.number)
        canonical = (
            canonical_document_key(document.kind, document.issuing_state, document.number)
            if self._canonical
            else None
        )
        return KeyedRow(key, colour, canonical)

    def _kind(self, row: RawRow) -> str | InvalidRow:
        kind = row.fields.get("kind")
        kind = kind.strip() if isinstance(kind, str) else None
        if not kind or kind not in self.kinds:
            return InvalidRow(
                row.line,
                "import_unknown_kind",
                "The document kind is missing or unknown.",
                "证件类型缺失或无法识别。",
                "kind",
            )
        return kind

    def _document(self, row: RawRow, kind: str) -> Document | InvalidRow:
        """The row's document, parsed by its plugin into the canonical form (a
        15-digit resident ID becomes 18 digits, the issuing state is filled
        in), so that the key equals the one enrollment derives from it."""
        number = row.fields.get("number")
        state = row.fields.get("issuing_state")
        try:
            normalised = normalise_number(number if isinstance(number, str) else None)
            norm_state = (
                normalise_number(state) if isinstance(state, str) and state.strip() else None
            )
            document = self._parse(
                DocumentSubmission(kind=kind, number=normalised, issuing_state=norm_state)
            )
        except HealthcodeError as error:
            return _invalid(row.line, error, "number")
        if not isinstance(document, Document):
            return InvalidRow(
                row.line,
                "import_number_not_of_kind",
                "The number does not have the shape of this document kind.",
                "号码与该证件类型的格式不符。",
                "number",
            )
        errors = [p for p in document.problems if p.severity == "error"]
        if errors:
            first = errors[0]
            return InvalidRow(row.line, first.code, first.message_en, first.message_zh, "number")
        return document


@frozen
class KeyedBatch:
    """What a batch of rows came to: the valid rows' keys and colours (in
    step; ``canonicals`` too when asked for), and the refused rows in line order."""

    rows: int
    keys: list[bytes] = attrs.field(repr=False)
    colours: list[Colour]
    canonicals: list[bytes] | None = attrs.field(repr=False)
    invalid: list[InvalidRow]


_FastGroup = tuple[list[Record], list[str], list[Colour]]
_NUMBER = operator.itemgetter(1)


class BatchKeyer:
    """Keys a batch of records at once. Rows of a kind whose plugin has a bulk
    fast path (``healthcode_canonical_numbers``) are checked together and
    hashed with the HMAC state prepared once; every other row, and each row
    the fast path does not accept, goes through ``RowKeyer`` (the parse hook),
    which also says why a row is refused. Both give the same keys."""

    def __init__(
        self, secrets: OperatorSecrets, pm: pluggy.PluginManager, *, canonical: bool = False
    ) -> None:
        self._row_keyer = RowKeyer(secrets, pm, canonical=canonical)
        self._hashes = DocumentKeyer(secrets)
        self._canonical = canonical
        self._bulk = pm.hook.healthcode_canonical_numbers
        self._fast_kinds = frozenset(
            kind for kind in self._row_keyer.kinds if self._bulk(kind=kind, numbers=[]) is not None
        )

    def __call__(self, records: Sequence[Record | InvalidRow]) -> KeyedBatch:
        invalid, slow, fast = self._sort(records)
        keys: list[bytes] = []
        colours: list[Colour] = []
        canonicals: list[bytes] | None = [] if self._canonical else None
        for kind, group in fast.items():
            slow.extend(self._key_fast(kind, *group, keys, colours, canonicals))
        for record in slow:
            keyed = self._row_keyer(_raw(record))
            if isinstance(keyed, InvalidRow):
                invalid.append(keyed)
                continue
            keys.append(keyed.key)
            colours.append(keyed.colour)
            if canonicals is not None:
                assert keyed.canonical is not None
                canonicals.append(keyed.canonical)
        invalid.sort(key=lambda row: row.line)
        return KeyedBatch(len(records), keys, colours, canonicals, invalid)

    def _sort(
        self, records: Sequence[Record | InvalidRow]
    ) -> tuple[list[InvalidRow], list[Record], dict[str, _FastGroup]]:
        """The rows already refused, those for the parse hook, and per kind
        with a fast path its rows, their numbers and colours (in step)."""
        invalid: list[InvalidRow] = []
        slow: list[Record] = []
        fast: dict[str, _FastGroup] = {}
        fast_kinds, statuses = self._fast_kinds, _STATUS_VALUES
        for record in records:
            if isinstance(record, InvalidRow):
                invalid.append(record)
                continue
            _, kind, number, status, state = record
            if type(kind) is str and type(number) is str and type(status) is str and not state:
                colour = statuses.get(status) or statuses.get(status.strip().lower())
                kind = kind if kind in fast_kinds else kind.strip()
                if (
                    colour is not None
                    and kind in fast_kinds
                    and len(number) <= MAX_NUMBER_LENGTH
                    and number.isascii()
                    and number.isalnum()
                ):
                    group = fast.get(kind)
                    if group is None:
                        group = fast[kind] = ([], [], [])
                    group[0].append(record)
                    group[1].append(number.upper())
                    group[2].append(colour)
                    continue
            slow.append(record)
        return invalid, slow, fast

    def _key_fast(
        self,
        kind: str,
        records: list[Record],
        numbers: list[str],
        row_colours: list[Colour],
        keys: list[bytes],
        colours: list[Colour],
        canonicals: list[bytes] | None,
    ) -> list[Record]:
        """Key the rows the plugin accepts; return the others."""
        results = self._bulk(kind=kind, numbers=numbers)
        if results is None or len(results) != len(numbers):
            return records
        rest = [record for record, result in zip(records, results, strict=True) if result is None]
        if rest:
            row_colours = [
                c for c, result in zip(row_colours, results, strict=True) if result is not None
            ]
            results = [result for result in results if result is not None]
        states = {result[0] for result in results}
        for state in states:
            if len(states) == 1:
                canonical, their_colours = list(map(_NUMBER, results)), row_colours
            else:
                canonical = [result[1] for result in results if result[0] == state]
                their_colours = [
                    c for c, result in zip(row_colours, results, strict=True) if result[0] == state
                ]
            keys.extend(self._hashes.keys(kind, state, canonical))
            colours.extend(their_colours)
            if canonicals is not None:
                canonicals.extend(canonical_document_key(kind, state, n) for n in canonical)
        return rest


def _colour(row: RawRow) -> Colour | InvalidRow:
    status = row.fields.get("status")
    colour = _STATUS_VALUES.get(status.strip().lower()) if isinstance(status, str) else None
    if colour is None:
        return InvalidRow(
            row.line,
            "import_invalid_status",
            "The status must be red or yellow (green is everyone not listed).",
            "状态必须为 red（集中观察）或 yellow（居家观察）；未列出者即为未见异常。",
            "status",
        )
    return colour
