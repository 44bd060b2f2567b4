"""Reading an authority list's rows: CSV (with a header) or JSON Lines, each
row turned into a keyed hash and a colour, or a reason it was refused.

Each number is normalised and canonicalised by the document plugins (so a
15-digit resident ID meets its 18-digit form) before it is hashed; the caller
drops it at once. A refused row says where and why, never what it held.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import pluggy
from attrs import frozen

from healthcode.core.batch import DocumentChecker
from healthcode.core.errors import HealthcodeError
from healthcode.core.models import Colour, Document, DocumentSubmission
from healthcode.core.privacy import OperatorSecrets, canonical_document_key, document_key
from healthcode.core.storage.errors import ImportFormatError
from healthcode.core.text import normalise_number

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


def read_rows(lines: Iterable[str], fmt: ImportFormat) -> Iterator[RawRow | InvalidRow]:
    """The rows of ``lines`` in ``fmt``; a row that cannot be read is an ``InvalidRow``."""
    return _iter_csv(lines) if fmt == "csv" else _iter_jsonl(lines)


def _iter_csv(lines: Iterable[str]) -> Iterator[RawRow | InvalidRow]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    columns = _csv_columns(header)
    width = len(columns)
    ended = reader.line_num
    for record in reader:
        # A quoted field may span lines: report the line where the record starts.
        line, ended = ended + 1, reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if len(record) != width:
            yield InvalidRow(
                line,
                "import_wrong_column_count",
                f"The row has {len(record)} columns; the header has {width}.",
                f"该行有 {len(record)} 列，表头为 {width} 列。",
            )
            continue
        yield RawRow(line, {c: v for c, v in zip(columns, record, strict=True) if c is not None})


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


def _iter_jsonl(lines: Iterable[str]) -> Iterator[RawRow | InvalidRow]:
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
        yield RawRow(line_no, fields)


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
        self._kinds = frozenset(checker.kinds)
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
        if not kind or kind not in self._kinds:
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
