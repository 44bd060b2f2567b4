"""Document service: the one place the CLI and the API go through to read,
check and mask identity documents. It holds no format knowledge: that lives in
the plugins, reached through the hooks."""

from __future__ import annotations

import datetime as dt
import weakref

import pluggy

from healthcode.core.clock import today_shanghai
from healthcode.core.errors import (
    DuplicateDocumentKindError,
    PluginError,
    UnknownDocumentKindError,
    UnsupportedInputError,
)
from healthcode.core.models import (
    CheckResult,
    Document,
    DocumentSubmission,
    DocumentType,
    MaskedDocument,
    Problem,
)
from healthcode.core.plugins import get_plugin_manager
from healthcode.core.privacy import latin_surname, mask_number
from healthcode.core.text import normalise_mrz, normalise_number

# Registration results per manager, keyed by the set of registered plugins so
# that registering or unregistering a plugin invalidates the entry.
_TYPES_CACHE: weakref.WeakKeyDictionary[
    pluggy.PluginManager, tuple[frozenset[int], dict[str, DocumentType]]
] = weakref.WeakKeyDictionary()


def document_types(pm: pluggy.PluginManager | None = None) -> dict[str, DocumentType]:
    """Every registered document kind, by kind id; duplicates are an error."""
    pm = pm or get_plugin_manager()
    registered = frozenset(id(plugin) for plugin in pm.get_plugins())
    cached = _TYPES_CACHE.get(pm)
    if cached is not None and cached[0] == registered:
        return cached[1]
    types = _collect_document_types(pm)
    _TYPES_CACHE[pm] = (registered, types)
    return types


def _collect_document_types(pm: pluggy.PluginManager) -> dict[str, DocumentType]:
    types: dict[str, DocumentType] = {}
    for result in pm.hook.healthcode_document_types():
        for record in result or ():
            if not isinstance(record, DocumentType):
                raise PluginError(
                    f"healthcode_document_types returned {type(record).__name__}, "
                    "expected DocumentType records.",
                    "healthcode_document_types 返回值类型错误。",
                )
            if record.kind in types:
                raise DuplicateDocumentKindError(
                    f"Two plugins register the document kind {record.kind!r}.",
                    f"两个插件注册了相同的证件类型 {record.kind!r}。",
                    details={"kind": record.kind},
                )
            types[record.kind] = record
    return types


def make_submission(
    *,
    kind: str | None = None,
    number: str | None = None,
    mrz: str | None = None,
    image: bytes | None = None,
    issuing_state: str | None = None,
) -> tuple[DocumentSubmission, list[Problem]]:
    """Normalise raw user input into a submission.

    Returns the submission and the warnings normalisation produced (e.g. a
    lower-case MRZ that was upper-cased). Raises ``InputError`` subclasses for
    empty, over-long or unreadable input.
    """
    warnings: list[Problem] = []
    norm_number = normalise_number(number) if number is not None else None
    norm_mrz = None
    if mrz is not None:
        norm_mrz, lowered = normalise_mrz(mrz)
        if lowered:
            warnings.append(
                Problem(
                    code="mrz_lowercase",
                    severity="warning",
                    field="mrz",
                    message_en="The MRZ was typed in lower case; it was read as upper case.",
                    message_zh="机读区以小写字母输入，已按大写读取。",
                )
            )
    state = normalise_number(issuing_state) if issuing_state else None
    submission = DocumentSubmission(
        kind=kind, number=norm_number, mrz=norm_mrz, image=image, issuing_state=state
    )
    return submission, warnings


def parse_document(
    submission: DocumentSubmission, pm: pluggy.PluginManager | None = None
) -> Document:
    """Parse through the plugins; raise ``UnknownDocumentKindError`` when none answers."""
    pm = pm or get_plugin_manager()
    if submission.kind is not None and submission.kind not in (kinds := document_types(pm)):
        raise UnknownDocumentKindError(
            f"Unknown document kind {submission.kind!r}. Known kinds: {', '.join(sorted(kinds))}.",
            f"未知的证件类型 {submission.kind!r}。可用类型：{'、'.join(sorted(kinds))}。",
            details={"kind": submission.kind, "known_kinds": sorted(kinds)},
        )
    document = pm.hook.healthcode_parse_document(submission=submission)
    if document is None:
        if submission.kind is not None:
            kinds = document_types(pm)
            raise UnsupportedInputError(
                f"A {kinds[submission.kind].name_en} cannot be read from this input.",
                f"无法从该输入读取{kinds[submission.kind].name_zh}。",
                details={"kind": submission.kind},
            )
        raise UnknownDocumentKindError(
            "This does not look like any known document number or MRZ. "
            "Check the input, or name the document kind.",
            "无法识别该证件号码或机读区，请检查输入或指定证件类型。",
        )
    if not isinstance(document, Document):
        raise PluginError(
            f"healthcode_parse_document returned {type(document).__name__}, expected Document.",
            "healthcode_parse_document 返回值类型错误。",
        )
    return document


def validate_document(
    document: Document, today: dt.date | None = None, pm: pluggy.PluginManager | None = None
) -> list[Problem]:
    """Problems found at parse time plus those every plugin finds for ``today``."""
    pm = pm or get_plugin_manager()
    today = today or today_shanghai()
    problems = list(document.problems)
    for result in pm.hook.healthcode_validate_document(document=document, today=today):
        problems.extend(result or ())
    return problems


def mask_document(document: Document, pm: pluggy.PluginManager | None = None) -> MaskedDocument:
    """Masked display fields; a generic mask when no plugin answers."""
    pm = pm or get_plugin_manager()
    masked = pm.hook.healthcode_mask_document(document=document)
    if masked is not None:
        return masked  # type: ignore[no-any-return]
    return MaskedDocument(
        kind=document.kind,
        masked_name=latin_surname(document.surname) if document.surname else "",
        masked_number=mask_number(document.number),
    )


def check_document(
    submission: DocumentSubmission,
    *,
    today: dt.date | None = None,
    warnings: list[Problem] | None = None,
    pm: pluggy.PluginManager | None = None,
) -> CheckResult:
    """Parse, validate and mask one submission."""
    pm = pm or get_plugin_manager()
    document = parse_document(submission, pm)
    problems = list(warnings or ()) + validate_document(document, today, pm)
    return CheckResult(
        document=document, problems=tuple(problems), masked=mask_document(document, pm)
    )
