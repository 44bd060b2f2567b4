"""Hook specifications: the whole contract between core and plugins.

Every hook is prefixed ``healthcode_`` so that a misspelt implementation is
caught by ``PluginManager.check_pending()`` when plugins load. Each docstring
says how the hook is called (first result or all results), what ``None`` means,
and shows a minimal implementation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

from healthcode.core.models import (
    Document,
    DocumentSubmission,
    DocumentType,
    Face,
    FaceMatch,
    Image,
    Issuer,
    LivenessAction,
    LivenessChallenge,
    LivenessResult,
    MachineZoneReading,
    MaskedDocument,
    Problem,
    StatusContribution,
    Subject,
)

if TYPE_CHECKING:
    import typer

    from healthcode.core.status import StatusEntries

PROJECT_NAME = "healthcode"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --- documents ------------------------------------------------------------------


@hookspec
def healthcode_document_types() -> Sequence[DocumentType]:
    """Register the document kinds this plugin handles.

    Called for every plugin; results are concatenated. Core refuses two plugins
    that register the same ``kind`` (``DuplicateDocumentKindError``).

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_document_types():
            return [DocumentType(kind="xx_card", name_en="XX card",
                                 name_zh="XX 卡", inputs=frozenset({"number"}))]
    """


@hookspec(firstresult=True)
def healthcode_parse_document(submission: DocumentSubmission) -> Document | None:
    """Parse a submission (typed number, MRZ text or image) into a ``Document``.

    ``firstresult``: the first plugin that returns a ``Document`` wins. Return
    ``None`` when the input is not of a kind you handle (``submission.kind`` is
    another plugin's kind, or the shape does not match yours). When the input
    is clearly yours but broken beyond parsing, raise a ``DocumentError``
    subclass (e.g. ``MalformedNumberError``) with a bilingual message. Rule
    violations that still leave a readable document (a wrong check digit, an
    unknown division code) go into ``Document.problems`` instead, so that a
    person sees all of them at once.

    Plugins whose formats overlap order themselves with ``tryfirst``/``trylast``.

    :param submission: what a person handed in: the ``kind`` they claim
        (``None``: any), a typed ``number``, ``mrz`` text or an ``image`` (the
        file's bytes), text already normalised.

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_parse_document(submission):
            if submission.kind not in (None, "xx_card") or submission.number is None:
                return None
            if not XX_PATTERN.fullmatch(submission.number):
                return None
            return Document(kind="xx_card", number=submission.number)
    """


@hookspec(firstresult=True)
def healthcode_canonical_numbers(
    kind: str, numbers: Sequence[str]
) -> Sequence[tuple[str | None, str] | None] | None:
    """Bulk fast path for authority imports: many typed numbers of one kind at once.

    ``firstresult``. Return ``None`` for a kind you do not handle. Otherwise
    return one item per number, in order: ``(issuing_state, canonical number)``
    exactly as ``healthcode_parse_document`` would give them for
    ``DocumentSubmission(kind=kind, number=number)`` when that parse yields a
    document of ``kind`` with no problem of severity ``error``; or ``None``
    when it would not, or when you are not sure. A ``None`` costs only speed:
    the caller then parses that number through ``healthcode_parse_document``
    to learn why (or to accept it after all). The numbers are normalised
    already (upper-case ASCII letters and digits) and were typed without an
    issuing state. Optional: without it every row takes the parse hook.

    :param kind: the document kind every number in ``numbers`` was listed as.
    :param numbers: normalised numbers, typed without an issuing state.

    Added in 0.3.

    Example::

        @hookimpl
        def healthcode_canonical_numbers(kind, numbers):
            if kind != "xx_card":
                return None
            return [("XXA", n) if XX_PATTERN.fullmatch(n) else None for n in numbers]
    """


@hookspec
def healthcode_validate_document(document: Document, today: dt.date) -> Sequence[Problem]:
    """Check a parsed document against rules that depend on the day.

    Called for every plugin; problems are concatenated. Return an empty
    sequence (or ``None``) for documents of kinds you do not handle. ``today``
    is the current date in Asia/Shanghai.

    :param document: a document parsed by ``healthcode_parse_document``.
    :param today: the current date in Asia/Shanghai.

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_validate_document(document, today):
            if document.kind == "xx_card" and document.expiry_date and document.expiry_date < today:
                return [Problem("document_expired", "The document has expired.", "证件已过期。")]
            return []
    """


@hookspec(firstresult=True)
def healthcode_mask_document(document: Document) -> MaskedDocument | None:
    """Return what may be displayed of a document: surname and masked number.

    ``firstresult``: the plugin owning ``document.kind`` answers; others
    return ``None``. Core falls back to a generic mask (number first 2 + last
    2, Latin primary identifier) when no plugin answers.

    :param document: a parsed document; answer only for your own ``kind``.

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_mask_document(document):
            if document.kind != "xx_card":
                return None
            return MaskedDocument(document.kind, document.surname or "",
                                  mask_number(document.number))
    """


@hookspec(firstresult=True)
def healthcode_read_machine_zone(image: Image) -> MachineZoneReading | None:
    """Read the machine-readable zone (MRZ) of a document photo or scan.

    ``firstresult``: one OCR plugin answers. Core calls it from
    ``parse_document`` for a submission that carries an image (already decoded
    safely: pixel cap, EXIF orientation applied), then hands each candidate
    text, in order, to ``healthcode_parse_document`` and keeps the first whose
    document has no check-digit error; so OCR works for every document kind
    whose parser understands the text, without knowing the parsers. Return
    ``None`` when this plugin cannot read images here (e.g. it is disabled); a
    reading with no candidates means no MRZ was found. Raise a
    ``HealthcodeError`` for a photo that cannot be used (e.g. two documents)
    or an engine that is missing.

    :param image: the decoded photo or scan (RGB, EXIF orientation applied).

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_read_machine_zone(image):
            text, confidence = my_ocr(image.pixels)
            return MachineZoneReading(
                candidates=(MachineZoneCandidate(text, confidence=confidence),),
                confidence=confidence,
            )
    """


# --- faces ----------------------------------------------------------------------


@hookspec(firstresult=True)
def healthcode_detect_faces(image: Image) -> Sequence[Face] | None:
    """Detect faces, with landmarks and per-face measurements.

    ``firstresult``: one face plugin answers. ``None`` means no face plugin
    is able to (e.g. its models are missing); an empty list means no face.

    :param image: the decoded photo (RGB).

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_detect_faces(image):
            return [Face(box=(x, y, w, h), score=0.98, landmarks=points)]
    """


@hookspec(firstresult=True)
def healthcode_assess_face_quality(image: Image, faces: Sequence[Face]) -> Sequence[Problem] | None:
    """Say what stops ``image`` (with the ``faces`` detected in it) from serving
    a 1:1 face check: no face, more than one, out of frame, too small, too
    dark, too blurred. An empty sequence means it is usable. A problem of
    severity ``warning`` stops nothing (for example ``image_soft``: less sharp
    than a studio photo, still matched reliably): core passes it on to the
    person, e.g. in the enrollment's warnings (warnings added in 0.3).

    ``firstresult``: the face plugin that detected the faces answers. ``None``:
    no plugin judges quality (core then checks only that there is one face).

    :param image: the decoded photo (RGB).
    :param faces: the faces ``healthcode_detect_faces`` found in ``image``.

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_assess_face_quality(image, faces):
            if len(faces) != 1:
                return [Problem("more_than_one_face", "...", "...")]
            return []
    """


@hookspec(firstresult=True)
def healthcode_face_template(image: Image, face: Face) -> bytes | None:
    """Compute a face template (an embedding, serialised) for one face.

    ``firstresult``. Core encrypts templates at rest; plugins return plain
    bytes. ``None``: this plugin cannot template this face.

    :param image: the decoded photo (RGB).
    :param face: one face detected in ``image``.

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_face_template(image, face):
            return embed(align(image, face)).astype("<f4").tobytes()
    """


@hookspec(firstresult=True)
def healthcode_compare_templates(a: bytes, b: bytes) -> FaceMatch | None:
    """Compare two templates produced by ``healthcode_face_template`` (1:1).

    ``firstresult``. Return ``None`` for templates this plugin did not make.

    :param a: a template from ``healthcode_face_template``.
    :param b: another template, from the same or another photo.

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_compare_templates(a, b):
            s = cosine(a, b)
            return FaceMatch(similarity=s, threshold=0.36, is_match=s >= 0.36)
    """


@hookspec(firstresult=True)
def healthcode_check_liveness(
    challenge: LivenessChallenge, frames: Sequence[Image]
) -> LivenessResult | None:
    """Decide whether ``frames`` answer the active-liveness ``challenge``.

    ``firstresult``. The answer says passed or not, a score and the reasons.
    ``None``: no plugin can judge liveness here.

    :param challenge: the challenge issued to the person (nonce, actions, validity).
    :param frames: the decoded frames, in the order they were taken.

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_check_liveness(challenge, frames):
            return LivenessResult(passed=False, score=0.0, reasons=("no_blink",))
    """


@hookspec
def healthcode_liveness_actions() -> Sequence[LivenessAction]:
    """Register the actions this plugin's liveness judge can recognise.

    Called for every plugin; results are concatenated. Core draws the actions of
    every challenge it issues from them (``healthcode.core.enrollment.challenges``)
    and refuses two plugins that register the same ``name``
    (``DuplicateLivenessActionError``). Return an empty sequence (or ``None``)
    when the plugin judges no liveness. Where no plugin registers any action,
    core issues only challenges whose actions the caller fixes.

    Added in 0.2.

    Example::

        @hookimpl
        def healthcode_liveness_actions():
            return [LivenessAction("blink", "Blink", "眨眼")]
    """


@hookspec(firstresult=True)
def healthcode_portrait_region(page: Image, box: tuple[int, int, int, int]) -> Image | None:
    """Cut the portrait out of a photographed document page.

    ``firstresult``: the face plugin answers. Core calls it during enrollment
    with the portrait area an image reader reported
    (``MachineZoneReading.portrait_box``), before looking for the holder's face
    in it. ``None``: no plugin cuts portraits, or the area is too small to be
    one; core then looks for the face on the whole page.

    :param page: the decoded page (RGB).
    :param box: ``x, y, width, height`` of the reported portrait, in pixels of ``page``.

    Added in 0.2.

    Example::

        @hookimpl
        def healthcode_portrait_region(page, box):
            x, y, w, h = box
            return image_from_array(page.pixels[y : y + h, x : x + w])
    """


@hookspec(firstresult=True)
def healthcode_presentation_attack_score(image: Image, face: Face) -> float | None:
    """Optional passive presentation-attack check: the probability that ``face``
    is a photo, a screen or a mask (0 = live, 1 = attack).

    ``firstresult``. ``None``: no passive check is configured (the default).

    :param image: the decoded photo (RGB).
    :param face: the face in ``image`` to judge.

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_presentation_attack_score(image, face):
            return float(model.run(crop(image, face))[0])
    """


@hookspec(firstresult=True)
def healthcode_reference_face(document: Document) -> Image | None:
    """Return an authoritative reference photo of the document's holder.

    For integrations with an authority's photo database. ``firstresult``;
    ``None``: no reference is available for this document.

    :param document: the parsed document whose holder's photo is wanted.

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_reference_face(document):
            return authority_client.photo_for(document)
    """


# --- status ---------------------------------------------------------------------


@hookspec
def healthcode_resolve_status(
    subject: Subject, day: dt.date, entries: StatusEntries
) -> StatusContribution | Sequence[StatusContribution] | None:
    """Say what one status source knows about ``subject`` on ``day``.

    Called for every plugin; core combines the contributions: the most severe
    colour wins, and every contribution is recorded as a reason for audit.
    Return one ``StatusContribution``, or several when the plugin speaks for
    several sources (e.g. two imported authority lists that disagree), or
    ``None`` when your source does not report this subject (green "nothing
    abnormal" is the result when no source reports anything).

    Hooks are synchronous and storage is async, so core reads what it holds
    about the subject for the day before the call and hands it to every
    plugin alike in ``entries``: the built-in ``authority_status`` and
    ``peer_status`` plugins are written against these arguments only.

    Core asks again after every status import; in between, a holder's own
    look-up reuses the decision its worker made earlier that day, and a pass
    issued stays valid until 24:00 unless revoked. A plugin that reads data of
    its own (a service, its own database) has the operator run ``healthcode
    status recheck`` (or ``POST /admin/status-rechecks``) when that data
    changes: every source is asked again and the passes of holders now worse
    off are revoked.

    :param subject: the person asked about: ``subject_id`` (a keyed hash, hex)
        and masked document fields; never a document number.
    :param day: the day asked about (Asia/Shanghai).
    :param entries: ``StatusEntries`` (``healthcode.core.status``) for this
        subject and day: ``authority``, the imported authority lists naming
        the subject (``AuthorityEntry(source, colour)``, one per source), and
        ``peers``, the peer regions' shared lists naming the subject
        (``PeerEntry(peer_region, colour)``, one per peer). Added in 0.2: an
        implementation written for 0.1 may leave it out of its signature
        (pluggy passes only the arguments an implementation names).

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_resolve_status(subject, day, entries):
            if subject.subject_id in red_list(day):
                return StatusContribution("cdc_list", Colour.RED, "listed by CDC")
            return None

    or, from what core read (as ``authority_status`` does)::

        @hookimpl
        def healthcode_resolve_status(subject, day, entries):
            return [StatusContribution(e.source, e.colour, "on an imported list")
                    for e in entries.authority]
    """


# --- trust ----------------------------------------------------------------------


@hookspec
def healthcode_trusted_issuers() -> Sequence[Issuer]:
    """Name peer regions whose passes this instance accepts, with their keys.

    Called for every plugin; results are concatenated.

    Added in 0.1.

    Example::

        @hookimpl
        def healthcode_trusted_issuers():
            return [Issuer(region_code="120000", name="天津市", public_keys={kid: der})]
    """


# --- CLI ------------------------------------------------------------------------


@hookspec
def healthcode_register_commands(app: typer.Typer) -> None:
    """Add this plugin's commands to the ``healthcode`` CLI.

    Called for every plugin, once, when the CLI is built
    (``healthcode.cli.main``), after the CLI's own sub-apps; the return value is
    ignored (``None``). Add a sub-app per noun (``app.add_typer``) or single
    commands (``app.command``); import heavy libraries inside the commands, so
    that every other command still starts fast. Command names must not clash
    with the CLI's own.

    :param app: the root Typer application.

    Added in 0.2.

    Example::

        @hookimpl
        def healthcode_register_commands(app):
            xx = typer.Typer(help="XX cards.", no_args_is_help=True)

            @xx.command("scan")
            def scan(path: Path) -> None:
                ...

            app.add_typer(xx, name="xx")
    """
