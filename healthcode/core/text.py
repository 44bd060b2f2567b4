"""Normalisation of what people type or paste, before any plugin sees it.

Full-width characters (``１２３``, ``ＡＢＣ``, ``＜``) are folded to ASCII with
NFKC; surrounding whitespace is stripped; input is capped in length; control
characters and anything outside the document alphabets are refused with a
stable error code.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from healthcode.core.errors import EmptyInputError, InputTooLongError, InvalidCharactersError

MAX_NUMBER_LENGTH = 64
"""No document number of any supported kind is longer than 18 characters."""
MAX_MRZ_LENGTH = 256
"""The longest MRZ (TD3) is 2 x 44 characters; room for separators and spaces."""

_NUMBER_ALPHABET = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_MRZ_ALPHABET = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<\n")
_CANONICAL_MRZ = re.compile(r"[0-9A-Z<]+(?:\n[0-9A-Z<]+)*")


@dataclass(frozen=True)
class _Field:
    """A typed field's refusals for missing and overlong input."""

    name: str
    max_length: int
    empty_en: str
    empty_zh: str
    too_long_en: str
    too_long_zh: str

    def empty(self) -> EmptyInputError:
        return EmptyInputError(self.empty_en, self.empty_zh, details={"field": self.name})

    def too_long(self, length: int | None = None) -> InputTooLongError:
        details: dict[str, object] = {"field": self.name, "max_length": self.max_length}
        if length is not None:
            details["length"] = length
        return InputTooLongError(self.too_long_en, self.too_long_zh, details=details)

    def check_given(self, text: str | None) -> str:
        """``text`` when there is some, and not absurdly long (checked before
        doing any work on it); else the refusal."""
        if text is None or not text.strip():
            raise self.empty()
        if len(text) > self.max_length * 4:
            raise self.too_long()
        return text


_NUMBER = _Field(
    "number",
    MAX_NUMBER_LENGTH,
    "Enter a document number.",
    "请输入证件号码。",
    f"A document number has at most {MAX_NUMBER_LENGTH} characters.",
    f"证件号码最多 {MAX_NUMBER_LENGTH} 个字符。",
)
_MRZ = _Field(
    "mrz",
    MAX_MRZ_LENGTH,
    "Enter the machine-readable zone.",
    "请输入机读区内容。",
    f"A machine-readable zone has at most {MAX_MRZ_LENGTH} characters.",
    f"机读区最多 {MAX_MRZ_LENGTH} 个字符。",
)


def _fold(text: str) -> str:
    # NFKC turns full-width digits, letters and '＜' into ASCII; it also maps
    # the ideographic space to a plain one.
    return unicodedata.normalize("NFKC", text)


def normalise_number(text: str | None) -> str:
    """Fold, strip and upper-case a typed document number.

    Inner spaces and hyphens, which people type to group digits, are removed.

    >>> normalise_number(" １１０１０５ １９４９１２３１００２ｘ ")
    '11010519491231002X'
    """
    # Fast path for the common case: already compact ASCII letters and digits.
    if text and len(text) <= MAX_NUMBER_LENGTH and text.isascii() and text.isalnum():
        return text.upper()
    folded = _fold(_NUMBER.check_given(text))
    compact = "".join(c for c in folded if not c.isspace() and c != "-").upper()
    if not compact:
        raise _NUMBER.empty()
    if len(compact) > MAX_NUMBER_LENGTH:
        raise _NUMBER.too_long(len(compact))
    bad = sorted({c for c in compact if c not in _NUMBER_ALPHABET})
    if bad:
        raise InvalidCharactersError(
            "A document number holds only the digits 0-9 and the letters A-Z.",
            "证件号码只能包含数字 0-9 和字母 A-Z。",
            details={
                "field": "number",
                "positions": [i for i, c in enumerate(compact) if c in bad],
            },
        )
    return compact


def normalise_mrz(text: str | None) -> tuple[str, bool]:
    """Fold and tidy a pasted MRZ; return it with lines joined by ``\\n``.

    Blank lines and spaces around lines are dropped. Returns ``(mrz, lowered)``
    where ``lowered`` says the input had lower-case letters that were
    upper-cased: callers report that as a warning, never silently.
    """
    # Fast path: an MRZ already in canonical form (what scanners and our own
    # OCR produce) needs no folding.
    if text and len(text) <= MAX_MRZ_LENGTH and _CANONICAL_MRZ.fullmatch(text):
        return text, False
    folded = _fold(_MRZ.check_given(text)).replace("\r\n", "\n").replace("\r", "\n")
    # '|' and '/' are common line separators when an MRZ is pasted on one line
    # in a form; spaces inside a line are never part of an MRZ.
    lines = [
        "".join(line.split()) for line in folded.replace("|", "\n").split("\n") if line.strip()
    ]
    mrz = "\n".join(lines)
    if len(mrz) > MAX_MRZ_LENGTH:
        raise _MRZ.too_long(len(mrz))
    upper = mrz.upper()
    bad = sorted({c for c in upper if c not in _MRZ_ALPHABET})
    if bad:
        raise InvalidCharactersError(
            "A machine-readable zone holds only 0-9, A-Z and '<'.",
            "机读区只能包含 0-9、A-Z 和“<”。",
            details={"field": "mrz", "characters": ["<space>" if c == " " else c for c in bad]},
        )
    return upper, upper != mrz
