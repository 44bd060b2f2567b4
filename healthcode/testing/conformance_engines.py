"""The conformance suite for status sources, face engines and OCR engines.

Status sources (``check_status_source``), rules as in ``conformance.RULES``:

* ``contribution_shape`` -- for any subject, day and ``entries``,
  ``healthcode_resolve_status`` returns ``None``, a ``StatusContribution`` or a
  sequence of them (a non-empty ``source``, a ``Colour``, a ``reason``), and
  never raises;
* ``deterministic`` -- the same question gets the same answer;
* ``no_personal_data`` -- the masked name and number of the subject appear in
  no source or reason (reasons are kept for audit).

Face engines (``check_face_engine``):

* ``liveness_actions`` -- ``LivenessAction`` records with unique snake_case
  names and instructions in English and Chinese;
* ``blank_image`` -- a blank photo: detection finds no face (or ``None``),
  quality is not "usable", a ``HealthcodeError`` is the only exception;
* ``blank_frames_never_live`` -- blank frames never pass a liveness challenge;
* ``foreign_templates`` -- comparing bytes the engine did not make gets
  ``None``, a non-match or a ``HealthcodeError``, never another exception;
* ``face_photo`` -- given a photo of one face: one face inside the image, a
  template, the template matches itself, comparison is symmetric and
  ``is_match`` agrees with similarity and threshold.

OCR engines (``check_ocr_engine``):

* ``blank_image`` -- a blank page: ``None`` or a reading with no candidate;
* ``reading_shape`` -- candidates are MRZ text (upper-case, ``<``, lines
  joined by ``\\n``), confidences in 0..1, timings not negative, the portrait
  box inside the image;
* ``document_photo`` -- given a photo and its MRZ, some candidate reads it.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Sequence
from typing import Any

import pluggy

from healthcode.core.errors import HealthcodeError
from healthcode.core.models import (
    Colour,
    Face,
    FaceMatch,
    Image,
    LivenessAction,
    LivenessChallenge,
    LivenessResult,
    MachineZoneReading,
    MaskedDocument,
    StatusContribution,
    Subject,
)
from healthcode.testing.conformance import (
    RULES,
    ConformanceError,
    ConformanceReport,
    check_bilingual,
    check_error,
    check_secret_free,
    generate_only_phases,
    implements,
    plugin_manager_for,
    plugin_name,
    throughput,
)

__all__ = ["blank_image", "check_face_engine", "check_ocr_engine", "check_status_source"]

_MRZ_TEXT = re.compile(r"[0-9A-Z<]+(?:\n[0-9A-Z<]+)*")


def blank_image(width: int = 320, height: int = 240) -> Image:
    """A mid-grey image with nothing on it."""
    import numpy as np

    return Image(np.full((height, width, 3), 128, dtype=np.uint8), width, height)


def _call(rule: str, hook: Any, **kwargs: Any) -> Any:
    """Call a hook; a ``HealthcodeError`` (bilingual) stands for a refusal (``None``)."""
    try:
        return hook(**kwargs)
    except HealthcodeError as error:
        check_error("bilingual_messages", error)
        return None
    except Exception as exc:
        raise ConformanceError(
            rule, f"{hook.name} raised {type(exc).__name__}; only HealthcodeError may be raised"
        ) from exc


def _report(
    plugin: object, name: str | None, kind: str, skipped: dict[str, str], **extra: Any
) -> ConformanceReport:
    passed = tuple(rule for rule in RULES[kind] if rule not in skipped)
    return ConformanceReport(
        plugin=name or plugin_name(plugin), kind=kind, passed=passed, skipped=skipped, **extra
    )


# --- status sources ----------------------------------------------------------------


def _contributions(results: object) -> list[StatusContribution]:
    """The one plugin's answer, from the list of answers the hook call returns."""
    result = results[0] if isinstance(results, list) and results else None
    if result is None:
        return []
    items = [result] if isinstance(result, StatusContribution) else result
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise ConformanceError(
            "contribution_shape", f"resolve_status returned a {type(result).__name__}"
        )
    for item in items:
        if not isinstance(item, StatusContribution):
            raise ConformanceError(
                "contribution_shape", f"a contribution is a {type(item).__name__}"
            )
        if not isinstance(item.source, str) or not item.source.strip():
            raise ConformanceError("contribution_shape", "a contribution has no source name")
        if not isinstance(item.colour, Colour) or not isinstance(item.reason, str):
            raise ConformanceError(
                "contribution_shape",
                "a contribution's colour is not a Colour or its reason no text",
            )
    return list(items)


def check_status_source(
    plugin: object, *, max_examples: int = 100, name: str | None = None
) -> ConformanceReport:
    """Check a status source (``healthcode_resolve_status``) against its rules."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from healthcode.core.status import AuthorityEntry, PeerEntry, StatusEntries

    pm = plugin_manager_for(plugin, name)
    if not implements(pm, "healthcode_resolve_status"):
        raise ConformanceError("contribution_shape", "the plugin implements no resolve_status")
    hook = pm.hook.healthcode_resolve_status
    colours = st.sampled_from(list(Colour))
    entries = st.builds(
        StatusEntries,
        authority=st.lists(
            st.builds(AuthorityEntry, st.text(min_size=1, max_size=20), colours), max_size=3
        ).map(tuple),
        peers=st.lists(
            st.builds(PeerEntry, st.from_regex(r"[1-6][0-9]0000", fullmatch=True), colours),
            max_size=3,
        ).map(tuple),
    )
    subjects = st.builds(
        Subject,
        subject_id=st.binary(min_size=32, max_size=32).map(bytes.hex),
        masked=st.builds(
            MaskedDocument,
            st.just("cn_resident_id"),
            st.just("QUARTERMAINE"),
            st.just("11**************2X"),
        ),
    )
    examples = 0

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=generate_only_phases(),
    )
    @given(
        subject=subjects, day=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)), entries=entries
    )
    def resolve(subject: Subject, day: dt.date, entries: StatusEntries) -> None:
        nonlocal examples
        examples += 1
        first = _contributions(
            _call("contribution_shape", hook, subject=subject, day=day, entries=entries)
        )
        if _contributions(hook(subject=subject, day=day, entries=entries)) != first:
            raise ConformanceError("deterministic", "the same question got another answer")
        texts = {f"contribution {i}": f"{c.source} {c.reason}" for i, c in enumerate(first)}
        check_secret_free(texts, [subject.masked.masked_name, subject.masked.masked_number])

    resolve()
    sample = (
        Subject("0" * 64, MaskedDocument("cn_resident_id", "", "")),
        dt.date(2026, 11, 26),
        StatusEntries(),
    )
    rate = throughput(lambda: hook(subject=sample[0], day=sample[1], entries=sample[2]))
    return _report(
        plugin, name, "status-source", {}, throughput={"resolve_status": rate}, examples=examples
    )


# --- face engines --------------------------------------------------------------------


def _check_actions(pm: pluggy.PluginManager) -> None:
    names: set[str] = set()
    for result in pm.hook.healthcode_liveness_actions():
        for action in result or ():
            if not isinstance(action, LivenessAction):
                raise ConformanceError(
                    "liveness_actions", f"an action is a {type(action).__name__}"
                )
            check_bilingual(
                "liveness_actions",
                "a liveness action",
                action.name,
                action.instruction_en,
                action.instruction_zh,
            )
            if action.name in names:
                raise ConformanceError("liveness_actions", f"action {action.name!r} twice")
            names.add(action.name)


def _check_blank(pm: pluggy.PluginManager) -> list[str]:
    """Blank photo and frames; returns the liveness actions to challenge with."""
    image = blank_image()
    faces = _call("blank_image", pm.hook.healthcode_detect_faces, image=image)
    if faces:
        raise ConformanceError("blank_image", f"{len(faces)} faces found on a blank image")
    quality = _call("blank_image", pm.hook.healthcode_assess_face_quality, image=image, faces=[])
    if quality is not None and not any(p.severity == "error" for p in quality):
        raise ConformanceError("blank_image", "a photo without a face was judged usable")
    for problem in quality or ():
        check_bilingual(
            "bilingual_messages",
            "a quality problem",
            problem.code,
            problem.message_en,
            problem.message_zh,
        )
    actions = [a.name for r in pm.hook.healthcode_liveness_actions() for a in r or ()]
    now = dt.datetime.now(dt.UTC)
    challenge = LivenessChallenge(
        "conformance", tuple(actions[:2]), now, now + dt.timedelta(minutes=2)
    )
    result = _call(
        "blank_frames_never_live",
        pm.hook.healthcode_check_liveness,
        challenge=challenge,
        frames=[image] * 8,
    )
    if result is not None and (not isinstance(result, LivenessResult) or result.passed):
        raise ConformanceError("blank_frames_never_live", "blank frames passed a liveness check")
    return actions


def _check_foreign_templates(pm: pluggy.PluginManager) -> None:
    for a, b in ((b"", b""), (b"\x00" * 7, b"\xff" * 7), (bytes(range(256)), bytes(256))):
        match = _call("foreign_templates", pm.hook.healthcode_compare_templates, a=a, b=b)
        if match is not None and (not isinstance(match, FaceMatch) or match.is_match):
            raise ConformanceError("foreign_templates", "bytes it did not make matched")


def _check_face_photo(pm: pluggy.PluginManager, photo: bytes) -> dict[str, float]:
    from healthcode.core.images import decode_image

    image = decode_image(photo)
    faces = pm.hook.healthcode_detect_faces(image=image)
    if faces is None or len(faces) != 1 or not isinstance(faces[0], Face):
        raise ConformanceError("face_photo", "a photo of one face did not give one Face")
    x, y, w, h = faces[0].box
    if w <= 0 or h <= 0 or x + w < 0 or y + h < 0 or x > image.width or y > image.height:
        raise ConformanceError("face_photo", "the face's box lies outside the image")
    template = pm.hook.healthcode_face_template(image=image, face=faces[0])
    if not isinstance(template, bytes) or not template:
        raise ConformanceError("face_photo", "no template for the one face")
    same = pm.hook.healthcode_compare_templates(a=template, b=template)
    if not isinstance(same, FaceMatch) or not same.is_match:
        raise ConformanceError("face_photo", "a template does not match itself")
    if same.is_match != (same.similarity >= same.threshold):
        raise ConformanceError("face_photo", "is_match disagrees with similarity and threshold")
    return {
        "detect_faces": throughput(lambda: pm.hook.healthcode_detect_faces(image=image)),
        "compare_templates": throughput(
            lambda: pm.hook.healthcode_compare_templates(a=template, b=template)
        ),
    }


def check_face_engine(
    plugin: object, *, face_photo: bytes | None = None, name: str | None = None
) -> ConformanceReport:
    """Check a face engine against its rules.

    :param face_photo: an encoded photo (JPEG, PNG) of exactly one face; without
        it the rule ``face_photo`` is skipped.
    """
    pm = plugin_manager_for(plugin, name)
    _check_actions(pm)
    _check_blank(pm)
    _check_foreign_templates(pm)
    skipped: dict[str, str] = {}
    rates: dict[str, float] = {}
    if face_photo is None:
        skipped["face_photo"] = "no photo of a face was given"
    else:
        rates = _check_face_photo(pm, face_photo)
    return _report(plugin, name, "face", skipped, throughput=rates)


# --- OCR engines ------------------------------------------------------------------------


def _check_reading(reading: object, image: Image) -> MachineZoneReading | None:
    if reading is None:
        return None
    if not isinstance(reading, MachineZoneReading):
        raise ConformanceError("reading_shape", f"a reading is a {type(reading).__name__}")
    for candidate in reading.candidates:
        if not _MRZ_TEXT.fullmatch(candidate.text):
            raise ConformanceError("reading_shape", "a candidate is not normalised MRZ text")
        if not 0.0 <= candidate.confidence <= 1.0:
            raise ConformanceError("reading_shape", "a candidate's confidence is outside 0..1")
    if not 0.0 <= reading.confidence <= 1.0 or any(t < 0 for t in reading.timings.values()):
        raise ConformanceError("reading_shape", "confidence outside 0..1 or a negative timing")
    if reading.portrait_box is not None:
        x, y, w, h = reading.portrait_box
        if x < 0 or y < 0 or x + w > image.width or y + h > image.height:
            raise ConformanceError("reading_shape", "the portrait box lies outside the image")
    return reading


def check_ocr_engine(
    plugin: object,
    *,
    document_photo: bytes | None = None,
    expected_mrz: str | None = None,
    name: str | None = None,
) -> ConformanceReport:
    """Check an OCR engine (``healthcode_read_machine_zone``) against its rules.

    :param document_photo: an encoded photo of a document page with an MRZ.
    :param expected_mrz: the MRZ text on it (lines joined by ``\\n``).
    """
    pm = plugin_manager_for(plugin, name)
    hook = pm.hook.healthcode_read_machine_zone
    image = blank_image()
    reading = _check_reading(_call("blank_image", hook, image=image), image)
    if reading is not None and reading.candidates:
        raise ConformanceError("blank_image", "an MRZ was read from a blank page")
    skipped: dict[str, str] = {}
    rates: dict[str, float] = {}
    if document_photo is None or expected_mrz is None:
        skipped["document_photo"] = "no document photo with its MRZ was given"
    else:
        from healthcode.core.images import decode_image

        page = decode_image(document_photo)
        started = time.perf_counter()
        read = _check_reading(hook(image=page), page)
        rates["read_machine_zone"] = 1.0 / max(time.perf_counter() - started, 1e-9)
        if read is None or expected_mrz not in [c.text for c in read.candidates]:
            raise ConformanceError("document_photo", "the MRZ on the photo was not read")
    return _report(plugin, name, "ocr", skipped, throughput=rates)
