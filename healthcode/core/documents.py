"""Document service: the one place the CLI and the API go through to read,
check and mask identity documents. It holds no format knowledge: that lives in
the plugins, reached through the hooks."""

from __future__ import annotations

import datetime as dt
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping

import attrs
import pluggy

from healthcode.core.clock import today_shanghai
from healthcode.core.errors import (
    DocumentError,
    DuplicateDocumentKindError,
    HealthcodeError,
    InputError,
    PluginError,
    UnknownDocumentKindError,
    UnsupportedInputError,
)
from healthcode.core.models import (
    CheckResult,
    Document,
    DocumentSubmission,
    DocumentType,
    Image,
    MachineZoneReading,
    MaskedDocument,
    Problem,
)
from healthcode.core.plugins import get_plugin_manager
from healthcode.core.privacy import latin_surname, mask_number
from healthcode.core.text import normalise_mrz, normalise_number


class MachineZoneNotFoundError(DocumentError):
    """An image was read, but no machine-readable zone was found on it."""

    code = "no_machine_readable_zone"
    default_en = (
        "No machine-readable zone found. Photograph the page with the two or three "
        "lines of <<< characters, flat, sharp and well lit."
    )
    default_zh = "未找到机读区。请平整、清晰、光线充足地拍摄带有两三行 <<< 字符的证件页。"


class PdfNotSupportedError(InputError):
    """A PDF was uploaded where a photo or scan is expected."""

    code = "pdf_not_supported"
    default_en = "PDF files are not read; upload a photo or scan of the page (JPEG or PNG)."
    default_zh = "不支持 PDF 文件，请上传证件页的照片或扫描件（JPEG 或 PNG）。"


class ImageReadingUnavailableError(UnsupportedInputError):
    """No installed plugin reads machine-readable zones from images."""

    code = "image_reading_unavailable"
    default_en = "No installed plugin can read documents from images."
    default_zh = "没有可从图片读取证件的插件。"


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
        raise unknown_kind_error(submission.kind, kinds)
    if submission.image is not None and submission.mrz is None and submission.number is None:
        return _parse_image(submission, submission.image, pm)
    return parsed_or_raise(pm.hook.healthcode_parse_document(submission=submission), submission, pm)


def unknown_kind_error(kind: str, kinds: Mapping[str, DocumentType]) -> UnknownDocumentKindError:
    """The refusal of a submission that names a kind no plugin registers."""
    return UnknownDocumentKindError(
        f"Unknown document kind {kind!r}. Known kinds: {', '.join(sorted(kinds))}.",
        f"未知的证件类型 {kind!r}。可用类型：{'、'.join(sorted(kinds))}。",
        details={"kind": kind, "known_kinds": sorted(kinds)},
    )


def parsed_or_raise(
    document: object, submission: DocumentSubmission, pm: pluggy.PluginManager
) -> Document:
    """What ``healthcode_parse_document`` answered for ``submission``, when it is
    a ``Document``; else the refusal ``parse_document`` raises (shared with the
    batch path, so both say the same thing)."""
    if document is None:
        if submission.kind is not None:
            kinds = document_types(pm)
            raise UnsupportedInputError(
                f"A {kinds[submission.kind].name_en} cannot be read from this input.",
                f"无法从该输入读取{kinds[submission.kind].name_zh}。",
                details={"kind": submission.kind},
            )
        _raise_for_lookalike(submission, pm)
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


_SHAPE_DISTANCE = 2
"""How far (in characters, by kind: digit, letter, other) a typed number may
be from a kind's example and still be taken for that kind gone wrong."""


def _shape(text: str) -> str:
    return "".join("9" if c.isdigit() else "A" if c.isalpha() else "." for c in text)


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or ``limit + 1`` as soon as it is known to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def _lookalike_kinds(number: str, pm: pluggy.PluginManager) -> list[str]:
    """The kinds whose example number has the shape closest to ``number`` (within
    ``_SHAPE_DISTANCE``): an 18-character number ending in a wrong letter
    looks like a resident ID, not like nothing at all."""
    shape = _shape(number)
    scored: dict[str, int] = {}
    for kind in document_types(pm).values():
        example = kind.example
        if "number" not in kind.inputs or not example or "<" in example or "\n" in example:
            continue
        scored[kind.kind] = _edit_distance(shape, _shape(example), _SHAPE_DISTANCE)
    best = min(scored.values(), default=_SHAPE_DISTANCE + 1)
    if best > _SHAPE_DISTANCE:
        return []
    return [kind for kind, distance in scored.items() if distance == best]


def _raise_for_lookalike(submission: DocumentSubmission, pm: pluggy.PluginManager) -> None:
    """No plugin took a typed number as it stands: when it has the shape of
    one kind, raise that kind's own error (asked by name, the plugin says
    what is wrong), so the person reads "a resident ID with a wrong check
    character" rather than "unknown kind"; when it has the shape of several,
    name them. Returns when none fits."""
    if submission.number is None or submission.mrz is not None:
        return
    kinds = _lookalike_kinds(submission.number, pm)
    types = document_types(pm)
    if len(kinds) > 1:
        raise UnknownDocumentKindError(
            "This looks like one of these, but is none as it stands: "
            f"{'; '.join(types[k].name_en for k in kinds)}. Check the input, or name "
            "the kind (--kind) to see what is wrong.",
            f"该号码像是以下证件之一，但均不符合：{'、'.join(types[k].name_zh for k in kinds)}。"
            "请检查输入，或指定证件类型以查看具体问题。",
            details={"looks_like": kinds},
        )
    if not kinds:
        return
    kind = types[kinds[0]]
    try:
        pm.hook.healthcode_parse_document(submission=attrs.evolve(submission, kind=kind.kind))
    except DocumentError as exc:
        # The plugin's own error (its class and code), saying what it was taken for.
        exc.message_en = f"This looks like a {kind.name_en} number, but: {exc.message_en}"
        exc.message_zh = f"这看起来是{kind.name_zh}号码，但：{exc.message_zh}"
        exc.details["looks_like"] = kind.kind
        raise exc from None


def _parse_image(submission: DocumentSubmission, data: bytes, pm: pluggy.PluginManager) -> Document:
    """Decode the image safely, let the OCR plugin read candidate MRZs, and let
    the document plugins parse each candidate; keep the first one whose check
    digits hold (else the first one that parses, with its problems)."""
    from healthcode.core.images import decode_image

    started = time.perf_counter()
    if data[:5] == b"%PDF-":
        raise PdfNotSupportedError(details={"size_bytes": len(data)})
    image = decode_image(data)
    decoded = time.perf_counter()
    reading = _read_machine_zone(image, pm)
    index, document = _choose_candidate(submission.kind, reading, pm)
    warnings = reading.candidates[index].warnings
    if warnings:
        document = attrs.evolve(document, problems=(*document.problems, *warnings))
    timings = dict(reading.timings)
    timings["decode"] = round(decoded - started, 4)
    timings["total"] = round(time.perf_counter() - started, 4)
    extra = dict(document.extra)
    # Non-personal facts only: positions repaired, not characters.
    extra["image"] = {
        "confidence": reading.confidence if index == 0 else reading.candidates[index].confidence,
        "portrait_box": list(reading.portrait_box) if reading.portrait_box else None,
        "timings": timings,
        "engine": reading.engine,
        "candidate": index,
        "candidates": len(reading.candidates),
        "notes": list(reading.candidates[index].notes),
        "width": image.width,
        "height": image.height,
    }
    return attrs.evolve(document, source="image", extra=extra)


def _read_machine_zone(image: Image, pm: pluggy.PluginManager) -> MachineZoneReading:
    """The OCR plugin's reading, with at least one candidate MRZ."""
    reading = pm.hook.healthcode_read_machine_zone(image=image)
    if reading is None:
        raise ImageReadingUnavailableError()
    if not isinstance(reading, MachineZoneReading):
        raise PluginError(
            f"healthcode_read_machine_zone returned {type(reading).__name__}, "
            "expected MachineZoneReading.",
            "healthcode_read_machine_zone 返回值类型错误。",
        )
    if not reading.candidates:
        raise MachineZoneNotFoundError(details={"width": image.width, "height": image.height})
    return reading


def _choose_candidate(
    kind: str | None, reading: MachineZoneReading, pm: pluggy.PluginManager
) -> tuple[int, Document]:
    """The first candidate that parses with no error, else the first whose
    check digits hold (another rule broken: a number of the wrong shape...),
    else the first that parses.

    With a ``kind`` named and no candidate read, the first plugin error is
    raised (it says why that kind could not be read).
    """
    chosen: tuple[int, Document] | None = None
    checked: tuple[int, Document] | None = None
    first_error: DocumentError | None = None
    for index, candidate in enumerate(reading.candidates):
        text_submission = DocumentSubmission(kind=kind, mrz=candidate.text)
        try:
            document = pm.hook.healthcode_parse_document(submission=text_submission)
        except DocumentError as exc:
            first_error = first_error or exc
            continue
        if not isinstance(document, Document):
            continue
        if not any(p.severity == "error" for p in document.problems):
            return index, document
        chosen = chosen or (index, document)
        if checked is None and not any(p.code.startswith("check_digit") for p in document.problems):
            checked = (index, document)
    chosen = checked or chosen
    if chosen is None:
        if kind is not None and first_error is not None:
            raise first_error
        raise MachineZoneNotFoundError(
            "A machine-readable zone was seen but could not be read as any known document.",
            "检测到机读区，但无法识别为任何已知证件。",
            details={"candidates": len(reading.candidates)},
        )
    return chosen


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
    return generic_mask(document)


def generic_mask(document: Document) -> MaskedDocument:
    """The mask of a document no plugin masks: Latin surname and number ends."""
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


def check_documents(
    submissions: Iterable[DocumentSubmission],
    *,
    today: dt.date | None = None,
    pm: pluggy.PluginManager | None = None,
) -> Iterator[CheckResult | HealthcodeError]:
    """Check many submissions, the hooks resolved once for all of them: for
    each, its ``CheckResult`` or the error ``check_document`` would raise.
    See ``healthcode.core.batch``."""
    from healthcode.core.batch import check_documents as check_batch

    return check_batch(submissions, today=today, pm=pm)
