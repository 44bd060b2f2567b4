"""Passports, travel identity cards and visas: ICAO 9303 machine-readable zones.

Reads TD3 (passports), TD1 and TD2 (cards) and MRV-A/MRV-B (visas) from MRZ
text, and typed passport numbers (which carry no check digit). Reading MRZs
from images is a separate step that hands each OCR candidate to
``healthcode.plugins.passport.mrz.parse_mrz``.

MRZs whose document code is CR, CT, CS or CD are the Chinese permits of the
``hkmo_permit`` plugin: when no kind is named they are left to it.
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
from healthcode.core.privacy import latin_surname, mask_number
from healthcode.plugins.passport.mrz import (
    KIND_PASSPORT,
    KIND_TRAVEL_ID,
    KIND_VISA,
    KINDS,
    looks_like_icao_mrz,
    parse_mrz,
    parse_passport_number,
)

__all__ = ["parse_mrz", "parse_passport_number"]

TD3_SPECIMEN = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
)
TD1_SPECIMEN = (
    "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
)
MRVA_SPECIMEN = (
    "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL8988901C4XXX4009078F96121096ZE184226B<<<<<<"
)


# --- documents ------------------------------------------------------------------


@hookimpl
def healthcode_document_types() -> Sequence[DocumentType]:
    return [
        DocumentType(
            kind=KIND_PASSPORT,
            name_en="Passport",
            name_zh="护照",
            inputs=frozenset({"number", "mrz", "image"}),
            example=TD3_SPECIMEN,
        ),
        DocumentType(
            kind=KIND_TRAVEL_ID,
            name_en="Travel identity card",
            name_zh="旅行身份证件",
            inputs=frozenset({"mrz", "image"}),
            example=TD1_SPECIMEN,
        ),
        DocumentType(
            kind=KIND_VISA,
            name_en="Visa",
            name_zh="签证",
            inputs=frozenset({"mrz", "image"}),
            example=MRVA_SPECIMEN,
        ),
    ]


@hookimpl
def healthcode_parse_document(submission: DocumentSubmission) -> Document | None:
    kind = submission.kind
    if kind is not None and kind not in KINDS:
        return None
    if submission.mrz is not None:
        # With no kind named, only MRZs that look like ours are ours; with one
        # of our kinds named, any MRZ is read (and rejected if malformed).
        if kind is None and not looks_like_icao_mrz(submission.mrz):
            return None
        return parse_mrz(submission.mrz, claimed_kind=kind)
    if submission.number is not None and kind == KIND_PASSPORT:
        # A bare number is too ambiguous to claim when no kind is named.
        return parse_passport_number(submission.number, submission.issuing_state)
    return None


@hookimpl
def healthcode_validate_document(document: Document, today: dt.date) -> Sequence[Problem]:
    if document.kind not in KINDS:
        return []
    problems = []
    if document.expiry_date is not None and document.expiry_date < today:
        problems.append(
            Problem(
                code="document_expired",
                field="expiry_date",
                message_en="The document has expired.",
                message_zh="证件已过期。",
                details={"days_expired": (today - document.expiry_date).days},
            )
        )
    if document.birth_date is not None and document.birth_date > today:
        problems.append(
            Problem(
                code="birth_date_in_future",
                field="birth_date",
                message_en="The date of birth is in the future.",
                message_zh="出生日期晚于今天。",
            )
        )
    return problems


@hookimpl
def healthcode_mask_document(document: Document) -> MaskedDocument | None:
    if document.kind not in KINDS:
        return None
    return MaskedDocument(
        kind=document.kind,
        masked_name=latin_surname(document.surname) if document.surname else "",
        masked_number=mask_number(document.number),
    )
