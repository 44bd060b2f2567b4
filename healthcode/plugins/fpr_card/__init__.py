"""Foreign Permanent Resident ID Card (外国人永久居留身份证), both versions.

Written as a third-party plugin would be: it imports only the public core
API (hook specs, models, errors, privacy helpers) and proves itself with the
kit's conformance suite (``healthcode.testing.conformance``). The number
formats and their sources are in ``numbers.py`` and ``README.md``.

Problem codes (stable):

* ``check_digit_mismatch`` -- 2023 version: the 18th character is not the
  MOD 11-2 check character of the first 17 digits;
* ``invalid_birth_date`` -- the birth date is not a calendar date;
* ``birth_date_in_future`` -- after ``today`` (from the validate hook);
* ``unknown_province_code`` -- the accepting authority's code is not a
  mainland province-level code of GB/T 2260;
* ``unknown_nationality_code`` -- not an ISO 3166-1 code (numeric in the
  2023 version, alpha-3 in the 2017 version).

A number of the wrong shape raises ``MalformedNumberError`` (code
``malformed_number``) naming this card when the kind is named, and also
without a kind for a string of digits (and X) beginning with 9, 14 to 19
characters long:
such a number can only be this card's, mistyped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import (
    Document,
    DocumentSubmission,
    DocumentType,
    MaskedDocument,
    Problem,
)
from healthcode.plugins.fpr_card.numbers import (
    DOCUMENT_TYPE_EXAMPLE,
    KIND,
    NAME_EN,
    NAME_ZH,
    mask_permanent_resident_id,
    parse_permanent_resident_id,
    validate_permanent_resident_id,
)

__all__ = ["DOCUMENT_TYPE", "KIND", "parse_permanent_resident_id"]

DOCUMENT_TYPE = DocumentType(
    kind=KIND,
    name_en=NAME_EN,
    name_zh=NAME_ZH,
    inputs=frozenset({"number"}),
    example=DOCUMENT_TYPE_EXAMPLE,
)


@hookimpl
def healthcode_document_types() -> Sequence[DocumentType]:
    return [DOCUMENT_TYPE]


@hookimpl
def healthcode_parse_document(submission: DocumentSubmission) -> Document | None:
    if submission.kind not in (None, KIND) or submission.number is None:
        return None
    return parse_permanent_resident_id(submission.number, explicit=submission.kind == KIND)


@hookimpl
def healthcode_validate_document(document: Document, today: dt.date) -> Sequence[Problem]:
    return validate_permanent_resident_id(document, today)


@hookimpl
def healthcode_mask_document(document: Document) -> MaskedDocument | None:
    return mask_permanent_resident_id(document)
