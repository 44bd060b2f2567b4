"""Domain values shared by core and plugins (attrs, frozen).

Fields that hold personal data (document numbers, names, raw input) are left out
of ``repr`` so that a stray ``log.debug(document)`` leaks nothing.
Wire types (msgspec) live in ``healthcode.api`` only.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any, Literal

import attrs
from attrs import frozen

Severity = Literal["error", "warning"]
Sex = Literal["M", "F", "X"]
InputKind = Literal["number", "mrz", "image"]


@frozen
class Problem:
    """One finding about a document: a broken rule (error) or a caveat (warning)."""

    code: str
    """Stable snake_case identifier, e.g. ``check_digit_mismatch``."""
    message_en: str
    message_zh: str
    severity: Severity = "error"
    field: str | None = None
    """Which field the finding is about (``number``, ``birth_date``, ...), if any."""
    details: Mapping[str, Any] = attrs.field(factory=dict)
    """Non-personal facts: expected/actual check digit, positions, lengths."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "field": self.field,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
            "details": dict(self.details),
        }


@frozen
class DocumentType:
    """Registration record: one document kind a plugin handles."""

    kind: str
    """Stable identifier, e.g. ``cn_resident_id``."""
    name_en: str
    name_zh: str
    inputs: frozenset[InputKind]
    """Which inputs the plugin can parse for this kind."""
    example: str | None = None
    """A published specimen number or MRZ, for help texts."""


@frozen
class DocumentSubmission:
    """What a person handed in: a typed number, an MRZ text or an image.

    ``kind`` is the kind the person claims; ``None`` asks every plugin to try.
    Text fields arrive already normalised by ``healthcode.core.text``.
    """

    kind: str | None = None
    number: str | None = attrs.field(default=None, repr=False)
    mrz: str | None = attrs.field(default=None, repr=False)
    image: bytes | None = attrs.field(default=None, repr=False)
    issuing_state: str | None = None
    """Optional ICAO code for number-only passport input."""


@frozen
class Document:
    """A parsed identity document. Parsing never raises for rule violations:
    structural findings go to ``problems`` so that a person sees all of them."""

    kind: str
    number: str = attrs.field(repr=False)
    """Normalised document number (upper-case, no spaces)."""
    source: InputKind = "number"
    document_code: str | None = None
    """ICAO document code from the MRZ (``P``, ``I``, ``CR``, ...)."""
    issuing_state: str | None = None
    """ICAO 9303 code of the issuing state or organisation (``CHN``, ``D``)."""
    issuing_authority: str | None = None
    surname: str | None = attrs.field(default=None, repr=False)
    """Latin primary identifier, or the Chinese name's surname."""
    given_names: str | None = attrs.field(default=None, repr=False)
    name_zh: str | None = attrs.field(default=None, repr=False)
    """Full name in Chinese characters, when the input carried one."""
    nationality: str | None = None
    birth_date: dt.date | None = attrs.field(default=None, repr=False)
    sex: Sex | None = None
    expiry_date: dt.date | None = None
    issue_date: dt.date | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    """Kind-specific facts (division code, renewal count, optional data, ...)."""
    problems: tuple[Problem, ...] = ()
    raw: str | None = attrs.field(default=None, repr=False)

    @property
    def is_valid(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


@frozen
class MaskedDocument:
    """What may be shown to a guard or printed on a pass."""

    kind: str
    masked_name: str
    """Surname only (Latin primary identifier, or the Chinese surname)."""
    masked_number: str
    """First 2 and last 2 characters, the middle masked."""


@frozen
class CheckResult:
    """Outcome of parsing and validating one submission."""

    document: Document
    problems: tuple[Problem, ...]
    masked: MaskedDocument | None

    @property
    def is_valid(self) -> bool:
        # Expiry is reported but does not make a document malformed.
        return not any(
            p.severity == "error" and p.code != "document_expired" for p in self.problems
        )


# --- faces ----------------------------------------------------------------------


@frozen
class Image:
    """A decoded image: RGB pixels as a numpy array (H, W, 3, uint8).

    Typed loosely here so that core does not import numpy."""

    pixels: Any = attrs.field(repr=False)
    width: int
    height: int


@frozen
class Face:
    """One detected face."""

    box: tuple[float, float, float, float]
    """x, y, width, height in pixels."""
    score: float
    landmarks: Any = attrs.field(default=None, repr=False)
    """Plugin-specific landmark array (e.g. 478 x 3 for mediapipe)."""
    measurements: Mapping[str, float] = attrs.field(factory=dict)
    """Per-frame measurements: yaw, pitch, roll, eye and mouth blendshapes."""


@frozen
class FaceMatch:
    similarity: float
    threshold: float
    is_match: bool


@frozen
class LivenessChallenge:
    nonce: str
    actions: tuple[str, ...]
    """Ordered action names, drawn from the ``LivenessAction`` records the face
    plugins register (``healthcode_liveness_actions``)."""
    issued_at: dt.datetime
    expires_at: dt.datetime


@frozen
class LivenessAction:
    """One action a liveness challenge may ask for, as a face plugin registers
    it (``healthcode_liveness_actions``); core draws challenges from these."""

    name: str
    """Stable snake_case identifier, e.g. ``turn_left`` (the person's own left)."""
    instruction_en: str
    """What a client tells the person to do, e.g. "Turn your head to your left"."""
    instruction_zh: str


@frozen
class LivenessResult:
    passed: bool
    score: float
    reasons: tuple[str, ...] = ()


# --- status ---------------------------------------------------------------------


class Colour(enum.Enum):
    """Health status colours, ordered by severity."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def label_zh(self) -> str:
        return _LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _LABELS[self][1]


_SEVERITY = {Colour.GREEN: 0, Colour.YELLOW: 1, Colour.RED: 2}
_LABELS = {
    Colour.GREEN: ("未见异常", "nothing abnormal"),
    Colour.YELLOW: ("居家观察", "home observation"),
    Colour.RED: ("集中观察", "centralized observation"),
}


@frozen
class Subject:
    """An enrolled person, known only by a keyed hash of their document key."""

    subject_id: str
    """HMAC-SHA256(operator secret, canonical document key), hex."""
    masked: MaskedDocument
    encrypted_template: bytes | None = attrs.field(default=None, repr=False)
    dependants: tuple[str, ...] = ()
    """Subject ids of dependants (at most 4)."""


@frozen
class StatusContribution:
    """What one status source says about a subject for a day."""

    source: str
    colour: Colour
    reason: str
    """Kept for audit, never shown to guards."""


@frozen
class Status:
    colour: Colour
    valid_until: dt.datetime
    """The next 24:00 Asia/Shanghai, as an aware datetime."""
    reasons: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


# --- trust ----------------------------------------------------------------------


@frozen
class Issuer:
    """A region that issues passes, with its public keys."""

    region_code: str
    """GB/T 2260 code, e.g. ``110000`` for Beijing."""
    name: str
    public_keys: Mapping[str, bytes] = attrs.field(factory=dict, repr=False)
    """kid (hex) -> public key (DER SubjectPublicKeyInfo)."""
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None


# --- machine-readable zones read from images --------------------------------------


@frozen
class MachineZoneCandidate:
    """One reading of a machine-readable zone from an image."""

    text: str = attrs.field(repr=False)
    """The MRZ text, upper-case, lines joined by ``\\n`` (as core normalises it)."""
    notes: tuple[str, ...] = ()
    """Non-personal notes on how it was read and repaired, e.g.
    ``repaired:line2:col14:O->0`` or ``attempt:rotated_180``."""
    checks_passed: bool = False
    """Whether every check digit the reader knows for this layout holds."""
    confidence: float = 0.0
    """The OCR engine's own confidence for this reading, 0..1."""
    warnings: tuple[Problem, ...] = ()
    """What a person should know of how it was read (severity ``warning``):
    e.g. a field no check digit covers, corrected to the nearest valid value.
    Core adds them to the parsed document's problems."""


@frozen
class MachineZoneReading:
    """What an OCR plugin read from an image: candidate MRZ texts, best first.

    Core hands each candidate to ``healthcode_parse_document`` and keeps the
    first whose document has no check-digit errors."""

    candidates: tuple[MachineZoneCandidate, ...]
    """In order of preference; empty when no machine-readable zone was found."""
    portrait_box: tuple[int, int, int, int] | None = None
    """x, y, width, height (pixels, in the decoded image) of the page area that
    holds the portrait, when the layout places one beside the MRZ."""
    confidence: float = 0.0
    """Overall confidence 0..1 of the best candidate (OCR confidence, lowered
    when check digits fail or repairs were needed)."""
    timings: Mapping[str, float] = attrs.field(factory=dict)
    """Seconds spent per stage (``locate``, ``ocr``, ``total``)."""
    engine: str = ""
    """Which engine read the zone, e.g. ``tesseract 5.3.0``."""
