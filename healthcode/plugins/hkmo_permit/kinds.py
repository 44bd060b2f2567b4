"""Kind identifiers, display names and small helpers shared by the number and
MRZ readers of the ``hkmo_permit`` plugin."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from healthcode.core.models import Document, DocumentType, InputKind, Problem

HOME_RETURN_PERMIT: Final = "hk_mo_home_return_permit"
"""港澳居民来往内地通行证 (Home Return Permit), issued to HK and Macao residents."""
TW_COMPATRIOT_PERMIT: Final = "tw_compatriot_permit"
"""台湾居民来往大陆通行证 (Mainland Travel Permit for Taiwan Residents)."""
RESIDENCE_PERMIT: Final = "hmt_residence_permit"
"""港澳台居民居住证 (Residence Permit for HK, Macao and Taiwan Residents)."""
HK_MO_EXIT_ENTRY_PERMIT: Final = "hk_mo_exit_entry_permit"
"""往来港澳通行证 (mainland residents travelling to and from HK and Macao)."""
TW_EXIT_ENTRY_PERMIT: Final = "tw_exit_entry_permit"
"""往来台湾通行证 (mainland residents travelling to and from Taiwan)."""

KINDS: Final = frozenset(
    {
        HOME_RETURN_PERMIT,
        TW_COMPATRIOT_PERMIT,
        RESIDENCE_PERMIT,
        HK_MO_EXIT_ENTRY_PERMIT,
        TW_EXIT_ENTRY_PERMIT,
    }
)

# MRZ document code -> kind. CR/CT/CS/CD are the codes named in issue 2 and
# corroborated by third-party readers (see machine_zone.py).
KIND_BY_MRZ_CODE: Final = {
    "CR": HOME_RETURN_PERMIT,
    "CT": TW_COMPATRIOT_PERMIT,
    "CS": HK_MO_EXIT_ENTRY_PERMIT,
    "CD": TW_EXIT_ENTRY_PERMIT,
}
MRZ_CODE_BY_KIND: Final = {kind: code for code, kind in KIND_BY_MRZ_CODE.items()}
ISSUING_STATE: Final = "CHN"

NAMES: Final[dict[str, tuple[str, str]]] = {
    HOME_RETURN_PERMIT: (
        "Mainland Travel Permit for Hong Kong and Macao Residents (Home Return Permit)",
        "港澳居民来往内地通行证",
    ),
    TW_COMPATRIOT_PERMIT: (
        "Mainland Travel Permit for Taiwan Residents",
        "台湾居民来往大陆通行证",
    ),
    RESIDENCE_PERMIT: (
        "Residence Permit for Hong Kong, Macao and Taiwan Residents",
        "港澳台居民居住证",
    ),
    HK_MO_EXIT_ENTRY_PERMIT: (
        "Exit-Entry Permit for Travelling to and from Hong Kong and Macao",
        "往来港澳通行证",
    ),
    TW_EXIT_ENTRY_PERMIT: (
        "Exit-Entry Permit for Travelling to and from Taiwan",
        "往来台湾通行证",
    ),
}


def document_types() -> list[DocumentType]:
    """The registration records of this plugin's kinds."""
    examples = {
        HOME_RETURN_PERMIT: "H12345678",
        TW_COMPATRIOT_PERMIT: "12345678",
        RESIDENCE_PERMIT: "810000199408230021",
        HK_MO_EXIT_ENTRY_PERMIT: "CA1234567",
        TW_EXIT_ENTRY_PERMIT: "L12345678",
    }
    return [
        DocumentType(
            kind=kind,
            name_en=NAMES[kind][0],
            name_zh=NAMES[kind][1],
            # The residence permit card carries no MRZ.
            inputs=frozenset(
                {"number"} if kind == RESIDENCE_PERMIT else {"number", "mrz", "image"}
            ),
            example=examples[kind],
        )
        for kind in sorted(KINDS)
    ]


def permit_document(
    kind: str,
    number: str,
    *,
    source: InputKind,
    raw: str,
    problems: list[Problem],
    **fields: Any,
) -> Document:
    """A permit read from a typed number or an MRZ (all are issued by China);
    ``fields``: what the source holds."""
    return Document(
        kind=kind,
        number=number,
        source=source,
        issuing_state=ISSUING_STATE,
        problems=tuple(problems),
        raw=raw,
        **fields,
    )


def problem(code: str, field: str, en: str, zh: str, **details: Any) -> Problem:
    """An error-severity finding; ``details`` must hold nothing personal."""
    return Problem(
        code=code, field=field, message_en=en, message_zh=zh, severity="error", details=details
    )


def invalid_date_problem(field: str) -> Problem:
    if field == "birth_date":
        return problem(
            "invalid_birth_date",
            field,
            "The birth date is not a real calendar date.",
            "出生日期不是有效的日期。",
        )
    return problem(
        "invalid_expiry_date",
        field,
        "The expiry date is not a real calendar date.",
        "有效期不是有效的日期。",
    )


def yyyymmdd(text: str) -> dt.date | None:
    """An 8-digit YYYYMMDD date, or ``None`` when it is not a calendar date."""
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None
