"""The document of an enrollment: read, validated, and checked against the
name the person typed (a false declaration is refused as ``name_mismatch``)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence

import attrs
import pluggy

from healthcode.core.documents import mask_document, parse_document, validate_document
from healthcode.core.enrollment.errors import (
    DemoDocumentError,
    DocumentExpiredError,
    DocumentNotAcceptedError,
    NameMismatchError,
    NameRequiredError,
    SpecimenDocumentError,
)
from healthcode.core.models import Document, DocumentSubmission, MaskedDocument, Problem

# ICAO 9303 part 3 transliterations that differ from dropping the accent.
_ICAO_TRANSLITERATION = str.maketrans(
    {
        "Ä": "AE",
        "Ö": "OE",
        "Ü": "UE",
        "ß": "SS",
        "Å": "AA",
        "Æ": "AE",
        "Ø": "OE",
        "Þ": "TH",
        "Œ": "OE",
        "Ĳ": "IJ",
    }
)
_NOT_LETTERS = re.compile(r"[^A-Z]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_CJK_SEPARATORS = re.compile(r"[\s·•・.\u00b7\u2027\u30fb]+")


def _latin_variants(text: str) -> set[tuple[str, ...]]:
    """Token lists of a Latin name: accents dropped, and ICAO-transliterated."""
    variants = set()
    upper = text.upper()
    for form in (upper, upper.translate(_ICAO_TRANSLITERATION)):
        decomposed = unicodedata.normalize("NFKD", form)
        ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
        tokens = tuple(t for t in _NOT_LETTERS.split(ascii_only.replace("<", " ")) if t)
        variants.add(tokens)
    return variants


def names_agree(declared: str, document: Document) -> bool | None:
    """Whether the typed name agrees with the document's; None when the document
    carries no name to compare with.

    Latin names agree when they hold the same words (any order, spaces, hyphens
    and accents aside) or the same letters in surname-first or given-first
    order; a name the MRZ truncated agrees when it is the start of the typed
    one. Chinese names agree when equal apart from spaces and middle dots."""
    if _CJK.search(declared):
        if document.name_zh:
            return _CJK_SEPARATORS.sub("", declared) == _CJK_SEPARATORS.sub("", document.name_zh)
        return False if document.surname else None
    if not document.surname:
        return False if document.name_zh else None
    truncated = any(p.code == "name_truncated" for p in document.problems)
    for surname in _latin_variants(document.surname):
        for given in _latin_variants(document.given_names or ""):
            expected = surname + given
            for typed in _latin_variants(declared):
                if sorted(typed) == sorted(expected):
                    return True
                joined = "".join(typed)
                orders = ("".join(surname + given), "".join(given + surname))
                if joined in orders:
                    return True
                if truncated and joined.startswith(orders[0]):
                    return True
    return False


def with_declared_name(document: Document, declared: str) -> Document:
    """The document with the typed name filled in when it carries none, so the
    plugin's mask shows a surname (a typed resident ID number has no name)."""
    if document.surname or document.name_zh:
        return document
    if _CJK.search(declared):
        return attrs.evolve(document, name_zh=_CJK_SEPARATORS.sub("", declared))
    # Latin names are typed as in an MRZ: surname first ("ERIKSSON, ANNA MARIA").
    surname = declared.split(",", 1)[0].split()[0] if declared.split() else ""
    return attrs.evolve(document, surname=surname.upper())


_NAME_NOT_VERIFIED = Problem(
    code="name_not_verified",
    severity="warning",
    field="name",
    message_en="The document carries no name; the name entered could not be compared with it.",
    message_zh="证件号码不含姓名信息，所填姓名无法与证件比对。",
)


def _refuse_errors(problems: Sequence[Problem]) -> None:
    """Raise the error that says why a document with these problems is refused."""
    codes = [p.code for p in problems if p.severity == "error"]
    # A specimen is refused as such even when it is also expired.
    if any(p.code == "specimen_document" for p in problems):
        raise SpecimenDocumentError(details={"problems": ["specimen_document", *codes]})
    if "document_expired" in codes:
        raise DocumentExpiredError(details={"problems": codes})
    if codes:
        raise DocumentNotAcceptedError(
            "The document has errors: " + ", ".join(dict.fromkeys(codes)) + ".",
            "证件存在错误：" + "、".join(dict.fromkeys(codes)) + "。",
            details={"problems": list(dict.fromkeys(codes))},
        )


def _name_warnings(declared_name: str, document: Document) -> list[Problem]:
    """Refuse a missing or disagreeing name; warn when there is none to compare with."""
    if not declared_name.strip():
        raise NameRequiredError()
    agree = names_agree(declared_name, document)
    if agree is False:
        raise NameMismatchError(
            details={"script": "han" if _CJK.search(declared_name) else "latin"}
        )
    return [_NAME_NOT_VERIFIED] if agree is None else []


DEMO_DOCUMENT_MARKER = "HEALTHCODEDEMO"
"""The optional-data field of the synthetic passport pages ``healthcode demo``
makes: only a demo instance enrolls them."""


def read_document(
    pm: pluggy.PluginManager,
    submission: DocumentSubmission,
    declared_name: str,
    today: dt.date,
    warnings: Sequence[Problem] = (),
    *,
    require_name: bool = True,
    allow_demo: bool = False,
) -> tuple[Document, MaskedDocument, list[Problem]]:
    """The parsed document, its mask and the warnings to pass on; refused with
    the reason when it has errors or the typed name disagrees with it. A page
    made by ``healthcode demo`` (:data:`DEMO_DOCUMENT_MARKER`) is refused
    unless ``allow_demo`` (an instance started with ``--demo``)."""
    document = parse_document(submission, pm)
    if not allow_demo and document.extra.get("optional_data") == DEMO_DOCUMENT_MARKER:
        raise DemoDocumentError(details={"problems": ["demo_document"]})
    problems = list(warnings) + validate_document(document, today, pm)
    _refuse_errors(problems)
    kept = [p for p in problems if p.severity == "warning"]
    if require_name or declared_name.strip():
        kept += _name_warnings(declared_name, document)
    masked = mask_document(with_declared_name(document, declared_name), pm)
    return document, masked, kept
