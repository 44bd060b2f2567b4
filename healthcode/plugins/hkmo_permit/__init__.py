"""Built-in plugin: documents of Hong Kong, Macao and Taiwan residents, and of
mainland residents travelling there.

Kinds (see ``kinds.py``): ``hk_mo_home_return_permit`` (H/M/HA/MA numbers, MRZ
``CR``), ``tw_compatriot_permit`` (8 or 10 digits, MRZ ``CT``),
``hmt_residence_permit`` (18 characters, 810000/820000/830000),
``hk_mo_exit_entry_permit`` (C numbers, MRZ ``CS``) and ``tw_exit_entry_permit``
(L numbers, MRZ ``CD``). What each rule rests on is written beside it in
``numbers.py`` and ``machine_zone.py``.

Ordering: ``tryfirst``, so that this plugin claims MRZs with the codes
CR/CT/CS/CD (which a generic TD1 reader would misread) and numbers of its
shapes before the passport and resident-ID plugins look; everything else gets
``None`` and passes on.
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
from healthcode.core.privacy import chinese_surname, latin_surname, mask_number
from healthcode.plugins.hkmo_permit import kinds
from healthcode.plugins.hkmo_permit.kinds import (
    HK_MO_EXIT_ENTRY_PERMIT,
    HOME_RETURN_PERMIT,
    KINDS,
    RESIDENCE_PERMIT,
    TW_COMPATRIOT_PERMIT,
    TW_EXIT_ENTRY_PERMIT,
    problem,
)
from healthcode.plugins.hkmo_permit.machine_zone import is_permit_mrz, parse_permit_mrz
from healthcode.plugins.hkmo_permit.numbers import claimed_kind, parse_permit_number

__all__ = [
    "HK_MO_EXIT_ENTRY_PERMIT",
    "HOME_RETURN_PERMIT",
    "KINDS",
    "RESIDENCE_PERMIT",
    "TW_COMPATRIOT_PERMIT",
    "TW_EXIT_ENTRY_PERMIT",
    "claimed_kind",
    "is_permit_mrz",
    "mask_permit",
    "parse_permit",
    "parse_permit_mrz",
    "parse_permit_number",
    "validate_permit",
]


def parse_permit(
    submission: DocumentSubmission, *, today: dt.date | None = None
) -> Document | None:
    """The hook's logic as a plain function (the benchmark times both).

    An MRZ, when present, is what is read. A number-only submission that names
    an issuing state is a passport number and is left to the passport plugin.
    """
    kind = submission.kind
    if kind is not None and kind not in KINDS:
        return None
    if submission.mrz is not None:
        return parse_permit_mrz(submission.mrz, kind, today=today)
    if submission.number is not None:
        if kind is None and submission.issuing_state is not None:
            return None
        return parse_permit_number(submission.number, kind)
    return None


def validate_permit(document: Document, today: dt.date) -> list[Problem]:
    """Rules that depend on the day: expiry and a birth date in the future."""
    if document.kind not in KINDS:
        return []
    found: list[Problem] = []
    if document.birth_date is not None and document.birth_date > today:
        found.append(
            problem(
                "birth_date_in_future",
                "birth_date",
                "The birth date is in the future.",
                "出生日期晚于今天。",
            )
        )
    if document.expiry_date is not None and document.expiry_date < today:
        found.append(
            problem(
                "document_expired",
                "expiry_date",
                "The document has expired.",
                "证件已过期。",
                expired_days=(today - document.expiry_date).days,
            )
        )
    return found


def mask_permit(document: Document) -> MaskedDocument | None:
    """Surname only (Chinese when known, else the MRZ's Latin primary identifier)
    and the number's first and last 2 characters."""
    if document.kind not in KINDS:
        return None
    if document.name_zh:
        name = chinese_surname(document.name_zh)
    elif document.surname:
        name = latin_surname(document.surname)
    else:
        name = ""
    return MaskedDocument(
        kind=document.kind, masked_name=name, masked_number=mask_number(document.number)
    )


# --- hooks ------------------------------------------------------------------------


@hookimpl
def healthcode_document_types() -> Sequence[DocumentType]:
    return kinds.document_types()


@hookimpl(tryfirst=True)
def healthcode_parse_document(submission: DocumentSubmission) -> Document | None:
    return parse_permit(submission)


@hookimpl
def healthcode_validate_document(document: Document, today: dt.date) -> Sequence[Problem]:
    return validate_permit(document, today)


@hookimpl
def healthcode_mask_document(document: Document) -> MaskedDocument | None:
    return mask_permit(document)
