"""Enrollment, face-only renewal, dependants (他人代查) and the assisted quick
check (老幼助查): the service the CLI and the API call.

Enrollment takes a document (typed number, MRZ text or a photo of the data
page), the name the person typed, an answer to a liveness challenge this
instance issued (frames), a still capture and the holder's device public key:

1. the document is parsed and validated through the document hooks; an expired
   document, a specimen and any other error are refused with their reason, and
   the typed name must agree with the name the document carries (a false
   declaration is refused as ``name_mismatch``);
2. the challenge is looked up in the database and marked used in the same
   statement that checks it is unused, so an answer counts once whatever the
   number of workers;
3. the liveness hook judges the frames; the capture must show the person of the
   frames, and must match the reference: the stored template when the document
   (or, for a renewed passport, the previous one) is enrolled already, else the
   portrait on the photographed page, else an authority's reference photo
   (``healthcode_reference_face``);
4. the subject is written (created, updated, or the new document linked to
   the existing subject; never duplicated) with masked display fields, the
   template encrypted with AES-GCM and the device key; a face that does not
   match a stored template is refused and recorded in ``enrollment_reviews``.

Every face step goes through the hooks (``healthcode_detect_faces``,
``healthcode_face_template``, ``healthcode_compare_templates``,
``healthcode_check_liveness``, ``healthcode_reference_face``), so another face
plugin can stand in for the built-in one.

Nothing stored holds a raw document number or a full name: subjects are keyed
by the HMAC of the document key, names are kept as the surname only, and log
lines carry kinds and outcomes only.

With pair keys for peer regions (``peer_keys``), enrollment also stores the
document's token for each peer (``healthcode.core.passes.sharing``), the only
moment it can: a peer's shared red/yellow lists are matched against these
tokens later, without the number. A subject enrolled before a pair key was
configured gets a token for that peer when they next enroll with the document.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import re
import secrets as _random
import threading
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import attrs
import pluggy
import sqlalchemy as sa
from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core import images
from healthcode.core.clock import now_utc, today_shanghai
from healthcode.core.documents import mask_document, parse_document, validate_document
from healthcode.core.enrollment_errors import (
    AgeUnknownError,
    AssistNotEligibleError,
    CaptureNotFromLivenessError,
    CaptureUnusableError,
    ChallengeExpiredError,
    ChallengeUnknownError,
    ChallengeUsedError,
    DependantExistsError,
    DependantIsHolderError,
    DependantLimitError,
    DeviceKeyInvalidError,
    DocumentExpiredError,
    DocumentLinkedElsewhereError,
    DocumentNotAcceptedError,
    EnrollmentConflictError,
    FaceCheckUnavailableError,
    FaceMismatchError,
    FaceWorkBusyError,
    LivenessFailedError,
    NameMismatchError,
    NameRequiredError,
    RateLimitedError,
    ReferenceFaceUnavailableError,
    SpecimenDocumentError,
    SubjectNotFoundError,
)
from healthcode.core.errors import InputError, PluginError
from healthcode.core.models import (
    Document,
    DocumentSubmission,
    Face,
    FaceMatch,
    Image,
    LivenessChallenge,
    LivenessResult,
    MaskedDocument,
    Problem,
    Status,
    Subject,
)
from healthcode.core.passes.sharing import PeerKeys, resolve_peer_keys, store_peer_tokens
from healthcode.core.plugins import get_plugin_manager
from healthcode.core.privacy_crypto import (
    canonical_document_key,
    decrypt_template,
    document_key_for,
    encrypt_template,
    subject_id_hex,
    subject_key_bytes,
)
from healthcode.core.secrets import OperatorSecrets
from healthcode.core.status import resolve_status
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database
from healthcode.core.storage.tables import MAX_DEPENDANTS

T = TypeVar("T")
log = logging.getLogger(__name__)

Purpose = Literal["enroll", "renew", "dependant"]
PURPOSES: tuple[Purpose, ...] = ("enroll", "renew", "dependant")
LIVENESS_ACTIONS: tuple[str, ...] = ("blink", "turn_left", "turn_right", "open_mouth", "nod")
DEFAULT_CHALLENGE_LENGTH = 2
CHALLENGE_TTL = dt.timedelta(seconds=90)
CHALLENGE_RETENTION = dt.timedelta(hours=1)
"""Used and expired challenges are kept this long after expiry, then purged."""
PORTRAIT_MARGIN = 0.15
"""Margin added around the portrait box an image reader reports, per side."""
ASSIST_MAX_AGE_CHILD = 16
ASSIST_MIN_AGE_ELDER = 60
ASSIST_DISPLAY_SECONDS = 30
"""How long a client should show an assisted-check result (it keeps nothing)."""

# What one answer to a challenge (frames and a capture) may make a worker
# decode. Every limit is checked from the form and the image headers, after the
# challenge is found usable and before any pixel is decoded; see README.md
# ("Memory per request") for the bound they give.
BASELINE_FRAMES = 2
"""Frames allowed besides those for the actions (the neutral first frame, one spare)."""
FRAMES_PER_ACTION = 8
"""Frames allowed per action of the challenge: a 2-action challenge takes at
most 18 frames, a 5-action one 42 (below the absolute ``MAX_ANSWER_FRAMES``)."""
MAX_ANSWER_FRAMES = 60
FRAME_MAX_PIXELS = 4_000_000
"""Decoded pixels per frame or capture (1080p is 2.1 M). A larger JPEG is decoded
at 1/2, 1/4 or 1/8 scale to fit; another format above it is ``image_too_large``."""
REQUEST_PIXEL_BUDGET = 24_000_000
"""Decoded pixels of all frames and the capture of one request together (72 MB
as RGB); beyond it: ``image_budget_exceeded`` (413)."""
IMAGE_REQUESTS_PER_WORKER = 8
"""Requests whose decoded images one worker holds at once, at most (fewer when
``max_face_jobs`` is lower); beyond it: ``face_service_busy`` (503)."""
MAX_NONCE_LENGTH = 64
"""Issued nonces have 22 characters; a longer one is unknown without a look-up."""


def frames_allowed(challenge: LivenessChallenge) -> int:
    """How many frames an answer to ``challenge`` may carry."""
    return min(MAX_ANSWER_FRAMES, BASELINE_FRAMES + FRAMES_PER_ACTION * len(challenge.actions))


def _decode_answer_images(data: Sequence[bytes]) -> list[Image]:
    """Decode images whose headers passed the intake checks (in a worker thread)."""
    return [images.decode_image(item, max_pixels=FRAME_MAX_PIXELS) for item in data]


liveness_challenges = tables.liveness_challenges


# --- values ----------------------------------------------------------------------------


@frozen
class LivenessAnswer:
    """What a client sends back for a challenge: its nonce and the frames."""

    nonce: str
    frames: Sequence[Image] = attrs.field(repr=False)


@frozen
class EnrollmentRequest:
    """One person's enrollment (or a dependant's: then ``device_public_key`` is unused)."""

    submission: DocumentSubmission
    """The document, as ``healthcode.core.documents.make_submission`` built it."""
    declared_name: str = attrs.field(repr=False)
    """The name the person typed; checked against the name the document carries."""
    liveness: LivenessAnswer
    capture: Image = attrs.field(repr=False)
    """A still photo of the person, taken with the frames."""
    device_public_key: bytes | None = attrs.field(default=None, repr=False)
    """DER (or PEM) SubjectPublicKeyInfo of the holder's device key, P-256 or Ed25519."""
    previous: DocumentSubmission | None = None
    """For a renewed document (new number): the document enrolled before, whose
    subject the new one joins after a face match against the stored template."""
    warnings: tuple[Problem, ...] = ()
    """Warnings from ``make_submission``, passed through to the result."""


Outcome = Literal["created", "updated", "linked"]


@frozen
class EnrollmentResult:
    subject: Subject
    outcome: Outcome
    """``created`` a new subject; ``updated`` the same document again; ``linked``
    a new document to an existing subject."""
    match: FaceMatch
    """The decisive match: against the stored template, else the reference."""
    reference: str
    """``stored_template``, ``document_portrait`` or ``reference_photo``."""
    liveness: LivenessResult
    status: Status
    device_public_key: bytes | None = attrs.field(repr=False)
    warnings: tuple[Problem, ...] = ()
    timings: Mapping[str, float] = attrs.field(factory=dict)
    """Seconds per stage: ``document``, ``database``, ``faces``, ``status``, ``total``."""


@frozen
class RenewalResult:
    subject: Subject
    status: Status
    match: FaceMatch
    liveness: LivenessResult


@frozen
class DependantView:
    """One dependant as the holder sees it: masked fields and today's status."""

    slot: int
    subject_id: str
    masked: MaskedDocument
    status: Status


@frozen
class AssistResult:
    """A masked result, shown briefly and not kept."""

    masked: MaskedDocument
    status: Status
    display_seconds: int = ASSIST_DISPLAY_SECONDS


# --- names -------------------------------------------------------------------------------

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


def _with_declared_name(document: Document, declared: str) -> Document:
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


# --- device keys -----------------------------------------------------------------------------


def normalise_device_key(data: bytes) -> bytes:
    """DER SubjectPublicKeyInfo of a P-256 or Ed25519 public key given as DER or PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key: Any
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(data)
    except (ValueError, TypeError):
        raise DeviceKeyInvalidError(details={"reason": "unreadable"}) from None
    ok = isinstance(key, ed25519.Ed25519PublicKey) or (
        isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    )
    if not ok:
        raise DeviceKeyInvalidError(details={"reason": "unsupported_key_type"})
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


# --- the assisted-check rate limit -------------------------------------------------------------


class OperatorRateLimiter:
    """A token bucket per operator, in this process's memory.

    Per worker: with N workers behind a load balancer an operator gets up to N
    times the rate. That is the intended trade-off for a check that stores
    nothing (not even who was checked); a deployment that needs one global
    limit puts it in front of the workers (the reverse proxy).
    """

    def __init__(
        self,
        capacity: int = 20,
        per_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.rate = capacity / per_seconds
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, operator: str) -> None:
        """Spend one token of ``operator`` or raise ``RateLimitedError``."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(operator, (float(self.capacity), now))
            tokens = min(float(self.capacity), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[operator] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise RateLimitedError(details={"retry_after_s": round(wait, 1)})
            self._buckets[operator] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:
                # Forget full buckets so the map stays bounded.
                full = [k for k, (t, _) in self._buckets.items() if t >= self.capacity - 1]
                for k in full[:5_000]:
                    del self._buckets[k]


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Completed years on ``day`` (a 29 February birthday counts from 1 March)."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


# --- the service -------------------------------------------------------------------------------


class EnrollmentService:
    """Enrollment and everything that follows from it, over one database.

    >>> service = EnrollmentService(db, secrets)                  # doctest: +SKIP
    >>> challenge = await service.issue_challenge()              # doctest: +SKIP
    >>> result = await service.enroll(request)                   # doctest: +SKIP
    """

    def __init__(
        self,
        db: Database,
        secrets: OperatorSecrets,
        pm: pluggy.PluginManager | None = None,
        *,
        assist_limiter: OperatorRateLimiter | None = None,
        peer_keys: PeerKeys | None = None,
        max_face_jobs: int | None = None,
        max_image_requests: int | None = None,
    ) -> None:
        """``peer_keys``: pair keys by peer region, or a function returning them
        (e.g. ``lambda: configured_pair_keys(keys)``), for status sharing."""
        self.db = db
        self.secrets = secrets
        self.pm = pm or get_plugin_manager()
        self.assist_limiter = assist_limiter or OperatorRateLimiter()
        self.peer_keys = peer_keys
        self.max_face_jobs = max_face_jobs or 2 * (os.cpu_count() or 1)
        self._face_jobs = 0
        self.max_image_requests = max_image_requests or min(
            self.max_face_jobs, IMAGE_REQUESTS_PER_WORKER
        )
        self._image_requests = 0

    async def _store_peer_tokens(
        self,
        conn: AsyncConnection,
        subject_key: bytes,
        document_key: bytes,
        document: Document,
        now: dt.datetime,
    ) -> None:
        await store_peer_tokens(
            conn,
            subject_key=subject_key,
            document_key=document_key,
            canonical_key=canonical_document_key(
                document.kind, document.issuing_state, document.number
            ),
            peer_keys=resolve_peer_keys(self.peer_keys),
            now=now,
        )

    # --- challenges ------------------------------------------------------------------------

    async def issue_challenge(
        self,
        *,
        purpose: Purpose = "enroll",
        length: int = DEFAULT_CHALLENGE_LENGTH,
        now: dt.datetime | None = None,
        actions: Sequence[str] | None = None,
    ) -> LivenessChallenge:
        """A fresh challenge of ``length`` distinct random actions, stored so that
        it can be answered once. ``actions`` fixes them instead (tests and
        benchmarks: the shared data has photos, not video)."""
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {PURPOSES}")
        if actions is None:
            if not 1 <= length <= len(LIVENESS_ACTIONS):
                raise ValueError(f"length must be between 1 and {len(LIVENESS_ACTIONS)}")
            pool = list(LIVENESS_ACTIONS)
            actions = [pool.pop(_random.randbelow(len(pool))) for _ in range(length)]
        if not actions or any(a not in LIVENESS_ACTIONS for a in actions):
            raise ValueError(f"actions must be drawn from {LIVENESS_ACTIONS}")
        issued = now or now_utc()
        challenge = LivenessChallenge(
            nonce=_random.token_urlsafe(16),
            actions=tuple(actions),
            issued_at=issued,
            expires_at=issued + CHALLENGE_TTL,
        )
        async with self.db.begin() as conn:
            await conn.execute(
                liveness_challenges.insert().values(
                    nonce=challenge.nonce,
                    purpose=purpose,
                    actions=",".join(challenge.actions),
                    issued_at=challenge.issued_at,
                    expires_at=challenge.expires_at,
                )
            )
        return challenge

    async def _consume_challenge(
        self, nonce: str, purpose: Purpose, now: dt.datetime
    ) -> LivenessChallenge:
        table = liveness_challenges
        async with self.db.begin() as conn:
            challenge = await _answerable_challenge(conn, nonce, purpose, now)
            # The guard on used_at makes this the single point where two
            # workers racing with the same answer are told apart.
            result = await conn.execute(
                table.update()
                .where(table.c.nonce == nonce, table.c.used_at.is_(None))
                .values(used_at=now)
            )
            if result.rowcount != 1:
                raise ChallengeUsedError()
        return challenge

    async def purge_challenges(self, *, now: dt.datetime | None = None) -> int:
        """Delete challenges that expired more than ``CHALLENGE_RETENTION`` ago."""
        cutoff = (now or now_utc()) - CHALLENGE_RETENTION
        async with self.db.begin() as conn:
            result = await conn.execute(
                liveness_challenges.delete().where(liveness_challenges.c.expires_at < cutoff)
            )
        return int(result.rowcount or 0)

    # --- image intake: the cheap checks first, then decoding off the event loop ------------

    async def check_challenge(
        self, nonce: str, purpose: Purpose, *, now: dt.datetime | None = None
    ) -> LivenessChallenge:
        """The challenge ``nonce`` if it can be answered now, without using it up.

        A cheap look-up made before any image of the answer is read, so that a
        made-up, used or expired nonce costs no image work. The answer still
        counts once: ``_consume_challenge`` marks it used when it is judged.
        """
        now = now or now_utc()
        if not nonce or len(nonce) > MAX_NONCE_LENGTH:
            raise ChallengeUnknownError(details={"reason": "unknown"})
        async with self.db.begin() as conn:
            return await _answerable_challenge(conn, nonce, purpose, now)

    @contextlib.asynccontextmanager
    async def image_intake(
        self, challenge: LivenessChallenge, frames: Sequence[bytes], capture: bytes
    ) -> AsyncIterator[tuple[list[Image], Image]]:
        """Decoded frames and capture of an answer to ``challenge``, held while
        the block runs.

        Before any pixel is decoded: the frame count against what the challenge
        allows (``too_many_images``), each image's header against
        ``FRAME_MAX_PIXELS`` (``not_an_image``, ``image_too_large``, ...) and all
        of them against ``REQUEST_PIXEL_BUDGET`` (``image_budget_exceeded``).
        Decoding runs in the bounded face-work pool; at most
        ``max_image_requests`` requests hold decoded images at once (beyond:
        ``face_service_busy``).
        """
        allowed = frames_allowed(challenge)
        if len(frames) > allowed:
            raise InputError(
                f"At most {allowed} frames may answer this challenge.",
                f"此活体检测挑战最多接受 {allowed} 帧。",
                code="too_many_images",
                details={"max": allowed, "frames": len(frames)},
            )
        headers = []
        for index, data in enumerate((*frames, capture)):
            try:
                headers.append(images.read_image_header(data, max_pixels=FRAME_MAX_PIXELS))
            except images.ImageError as exc:
                exc.details.setdefault("image", "capture" if index == len(frames) else "frame")
                if index < len(frames):
                    exc.details.setdefault("index", index)
                raise
        images.check_pixel_budget(headers, REQUEST_PIXEL_BUDGET)
        if self._image_requests >= self.max_image_requests:
            raise FaceWorkBusyError(details={"retry_after_s": 2})
        self._image_requests += 1
        try:
            decoded = await self._off_loop(_decode_answer_images, [*frames, capture])
            yield decoded[:-1], decoded[-1]
        finally:
            self._image_requests -= 1

    # --- faces (all through the hooks) ---------------------------------------------------------

    async def _off_loop(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run CPU-bound face or OCR work in a thread, so that the event loop
        keeps answering guards; beyond ``max_face_jobs`` at once, refuse with a
        clear "try later" instead of queueing without bound."""
        if self._face_jobs >= self.max_face_jobs:
            raise FaceWorkBusyError(details={"retry_after_s": 2})
        self._face_jobs += 1
        try:
            return await asyncio.to_thread(functools.partial(work, *args, **kwargs))
        finally:
            self._face_jobs -= 1

    def _faces(self, image: Image) -> list[Face]:
        faces = self.pm.hook.healthcode_detect_faces(image=image)
        if faces is None:
            raise FaceCheckUnavailableError(details={"hook": "healthcode_detect_faces"})
        return list(faces)

    def _one_face(self, image: Image, what: str) -> Face:
        """The one usable face of a live image; the quality gates of the face
        plugin (frame, size, light, blur) apply when it offers them."""
        faces = self._faces(image)
        problems = self.pm.hook.healthcode_assess_face_quality(image=image, faces=faces)
        if problems is None and len(faces) != 1:
            problem = "no_face" if not faces else "more_than_one_face"
            raise CaptureUnusableError(
                details={"problem": problem, "image": what, "faces": len(faces)}
            )
        if problems:
            first = problems[0]
            raise CaptureUnusableError(
                f"The {what} cannot be used: {first.message_en}",
                f"{'照片' if what == 'capture' else '视频帧'}无法使用：{first.message_zh}",
                details={
                    "problem": first.code,
                    "problems": [p.code for p in problems],
                    "image": what,
                    "faces": len(faces),
                },
            )
        return faces[0]

    def _template(self, image: Image, face: Face) -> bytes:
        template = self.pm.hook.healthcode_face_template(image=image, face=face)
        if template is None:
            raise FaceCheckUnavailableError(details={"hook": "healthcode_face_template"})
        return bytes(template)

    def _compare(self, a: bytes, b: bytes) -> FaceMatch:
        match = self.pm.hook.healthcode_compare_templates(a=a, b=b)
        if match is None:
            raise FaceCheckUnavailableError(details={"hook": "healthcode_compare_templates"})
        if not isinstance(match, FaceMatch):
            raise PluginError(
                "healthcode_compare_templates returned a wrong type.",
                "healthcode_compare_templates 返回值类型错误。",
            )
        return match

    def _largest_face_template(self, image: Image) -> bytes | None:
        faces = self._faces(image)
        if not faces:
            return None
        face = max(faces, key=lambda f: f.box[2] * f.box[3])
        return self._template(image, face)

    def _live_template(
        self, challenge: LivenessChallenge, answer: LivenessAnswer, capture: Image
    ) -> tuple[bytes, LivenessResult]:
        """Judge the liveness answer and return the capture's template, after
        checking that the capture shows the person who answered."""
        result = self.pm.hook.healthcode_check_liveness(
            challenge=challenge, frames=list(answer.frames)
        )
        if result is None:
            raise FaceCheckUnavailableError(details={"hook": "healthcode_check_liveness"})
        if not result.passed:
            raise LivenessFailedError(
                details={"reasons": list(result.reasons), "score": result.score}
            )
        capture_template = self._template(capture, self._one_face(capture, "capture"))
        # The still must be of the person in the frames: otherwise one person
        # answers the challenge and another person's photo gets enrolled.
        first = answer.frames[0]
        frame_template = self._template(first, self._one_face(first, "frame"))
        binding = self._compare(capture_template, frame_template)
        if not binding.is_match:
            raise CaptureNotFromLivenessError(
                details={
                    "similarity": round(binding.similarity, 3),
                    "threshold": binding.threshold,
                }
            )
        return capture_template, result

    def _reference_template(
        self, document: Document, submission: DocumentSubmission
    ) -> tuple[bytes, str]:
        """The holder's reference face: the portrait on a photographed page, else
        the authority's reference photo."""
        if submission.image is not None and document.source == "image":
            from healthcode.core.images import decode_image

            page = decode_image(submission.image)
            region = _portrait_region(page, document)
            template = self._largest_face_template(region)
            if template is None and region is not page:
                template = self._largest_face_template(page)
            if template is None:
                raise ReferenceFaceUnavailableError(
                    "No portrait was found on the document photo.",
                    "证件照片上未找到人像。",
                    details={"reason": "no_portrait"},
                )
            return template, "document_portrait"
        image = self.pm.hook.healthcode_reference_face(document=document)
        if image is None:
            raise ReferenceFaceUnavailableError(details={"reason": "no_reference_photo"})
        template = self._largest_face_template(image)
        if template is None:
            raise ReferenceFaceUnavailableError(details={"reason": "no_face_in_reference"})
        return template, "reference_photo"

    # --- documents ----------------------------------------------------------------------------

    def _read_document(
        self,
        submission: DocumentSubmission,
        declared_name: str,
        today: dt.date,
        warnings: Sequence[Problem] = (),
        *,
        require_name: bool = True,
    ) -> tuple[Document, MaskedDocument, list[Problem]]:
        document = parse_document(submission, self.pm)
        problems = list(warnings) + validate_document(document, today, self.pm)
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
        kept = [p for p in problems if p.severity == "warning"]
        if require_name or declared_name.strip():
            if not declared_name.strip():
                raise NameRequiredError()
            agree = names_agree(declared_name, document)
            if agree is False:
                raise NameMismatchError(
                    details={"script": "han" if _CJK.search(declared_name) else "latin"}
                )
            if agree is None:
                kept.append(_NAME_NOT_VERIFIED)
        masked = mask_document(_with_declared_name(document, declared_name), self.pm)
        return document, masked, kept

    # --- storage helpers ----------------------------------------------------------------------

    @staticmethod
    async def _subject_of_document(conn: AsyncConnection, document_key: bytes) -> bytes | None:
        docs = tables.subject_documents
        row = await conn.execute(
            sa.select(docs.c.subject_key).where(docs.c.document_key == document_key)
        )
        value = row.scalar_one_or_none()
        return bytes(value) if value is not None else None

    @staticmethod
    async def _subject_row(conn: AsyncConnection, subject_key: bytes) -> Any:
        return (
            await conn.execute(
                sa.select(tables.subjects).where(tables.subjects.c.subject_key == subject_key)
            )
        ).one_or_none()

    async def _record_review(
        self, subject_key: bytes, reason: str, match: FaceMatch, now: dt.datetime
    ) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                tables.enrollment_reviews.insert().values(
                    subject_key=subject_key,
                    reason=reason,
                    similarity=float(match.similarity),
                    threshold=float(match.threshold),
                    created_at=now,
                )
            )
        log.warning("enrollment refused: %s (review recorded)", reason)

    def _stored_template(self, row: Any) -> bytes | None:
        if row is None or row.encrypted_template is None:
            return None
        return decrypt_template(
            self.secrets, bytes(row.encrypted_template), subject_key=bytes(row.subject_key)
        )

    async def _subject(self, subject_key: bytes, row: Any | None = None) -> Subject:
        async with self.db.begin() as conn:
            if row is None:
                row = await self._subject_row(conn, subject_key)
            if row is None:
                raise SubjectNotFoundError()
            deps = await conn.execute(
                sa.select(tables.dependants.c.dependant_key)
                .where(tables.dependants.c.holder_key == subject_key)
                .order_by(tables.dependants.c.slot)
            )
            dependant_ids = tuple(subject_id_hex(bytes(k)) for (k,) in deps)
        return Subject(
            subject_id=subject_id_hex(subject_key),
            masked=MaskedDocument(row.kind, row.masked_name, row.masked_number),
            encrypted_template=(
                bytes(row.encrypted_template) if row.encrypted_template is not None else None
            ),
            dependants=dependant_ids,
        )

    # --- enrollment ---------------------------------------------------------------------------

    async def enroll(
        self, request: EnrollmentRequest, *, now: dt.datetime | None = None
    ) -> EnrollmentResult:
        """Enroll (or re-enroll) the holder of ``request.submission``; see the module doc."""
        now = now or now_utc()
        started = time.perf_counter()
        timings = {"document": 0.0, "database": 0.0, "faces": 0.0, "status": 0.0}

        def lap(stage: str, since: float) -> float:
            moment = time.perf_counter()
            timings[stage] += moment - since
            return moment

        today = today_shanghai(now)
        document, masked, warnings = await self._off_loop(
            self._read_document, request.submission, request.declared_name, today, request.warnings
        )
        device_key = (
            normalise_device_key(request.device_public_key)
            if request.device_public_key is not None
            else None
        )
        document_key = document_key_for(self.secrets, document)
        previous_key: bytes | None = None
        if request.previous is not None:
            previous_document = parse_document(request.previous, self.pm)
            previous_key = document_key_for(self.secrets, previous_document)
        mark = lap("document", started)

        async with self.db.begin() as conn:
            own_subject = await self._subject_of_document(conn, document_key)
            linked_subject = (
                await self._subject_of_document(conn, previous_key)
                if previous_key is not None
                else None
            )
            if previous_key is not None and linked_subject is None:
                raise SubjectNotFoundError(
                    "The previous document is not enrolled.",
                    "原证件尚未登记。",
                    details={"document": "previous"},
                )
            if (
                own_subject is not None
                and linked_subject is not None
                and own_subject != linked_subject
            ):
                raise DocumentLinkedElsewhereError()
            target = own_subject or linked_subject
            target_row = await self._subject_row(conn, target) if target is not None else None
        challenge = await self._consume_challenge(request.liveness.nonce, "enroll", now)
        mark = lap("database", mark)

        capture_template, liveness = await self._off_loop(
            self._live_template, challenge, request.liveness, request.capture
        )
        stored = self._stored_template(target_row)
        reference = "stored_template"
        if stored is not None and target is not None:
            match = self._compare(capture_template, stored)
            if not match.is_match:
                lap("faces", mark)
                await self._record_review(target, "face_mismatch_on_reenrollment", match, now)
                raise FaceMismatchError(
                    details={
                        "against": "stored_template",
                        "similarity": round(match.similarity, 3),
                        "threshold": match.threshold,
                        "review_recorded": True,
                    }
                )
        if stored is None or own_subject is None:
            # A new document (first enrollment or a renewed passport) must also
            # match its own reference: the stored template says who the person
            # is, the reference says the document is theirs.
            reference_template, source = await self._off_loop(
                self._reference_template, document, request.submission
            )
            reference_match = self._compare(capture_template, reference_template)
            if not reference_match.is_match:
                raise FaceMismatchError(
                    details={
                        "against": source,
                        "similarity": round(reference_match.similarity, 3),
                        "threshold": reference_match.threshold,
                        "review_recorded": False,
                    }
                )
            if stored is None:
                match, reference = reference_match, source
        mark = lap("faces", mark)

        outcome: Outcome
        subject_key = target if target is not None else document_key
        sealed = encrypt_template(self.secrets, capture_template, subject_key=subject_key)
        values: dict[str, Any] = {
            "kind": masked.kind,
            "masked_name": masked.masked_name,
            "masked_number": masked.masked_number,
            "encrypted_template": sealed,
            "updated_at": now,
        }
        if device_key is not None:
            values["device_public_key"] = device_key
        try:
            async with self.db.begin() as conn:
                if target is None:
                    outcome = "created"
                    await conn.execute(
                        tables.subjects.insert().values(
                            subject_key=subject_key, created_at=now, **values
                        )
                    )
                else:
                    outcome = "updated" if own_subject is not None else "linked"
                    await conn.execute(
                        tables.subjects.update()
                        .where(tables.subjects.c.subject_key == subject_key)
                        .values(**values)
                    )
                if own_subject is None:
                    await conn.execute(
                        tables.subject_documents.insert().values(
                            document_key=document_key,
                            subject_key=subject_key,
                            kind=document.kind,
                            created_at=now,
                        )
                    )
                await self._store_peer_tokens(conn, subject_key, document_key, document, now)
        except sa.exc.IntegrityError:
            # Another worker enrolled the same document between our read and write.
            raise EnrollmentConflictError() from None
        mark = lap("database", mark)

        subject = await self._subject(subject_key)
        status = await resolve_status(self.db, subject, now=now, pm=self.pm)
        lap("status", mark)
        timings["total"] = time.perf_counter() - started
        log.info("enrolled kind=%s outcome=%s reference=%s", document.kind, outcome, reference)
        return EnrollmentResult(
            subject=subject,
            outcome=outcome,
            match=match,
            reference=reference,
            liveness=liveness,
            status=status,
            device_public_key=device_key if device_key is not None else _device_key(target_row),
            warnings=tuple(warnings),
            timings={k: round(v, 4) for k, v in timings.items()},
        )

    # --- face-only renewal ----------------------------------------------------------------------

    async def renew(
        self,
        subject_id: str,
        answer: LivenessAnswer,
        capture: Image,
        *,
        now: dt.datetime | None = None,
    ) -> RenewalResult:
        """Today's status for an enrolled holder, by face alone: a new challenge
        answered and the capture matched against the stored template."""
        now = now or now_utc()
        key = _subject_key(subject_id)
        async with self.db.begin() as conn:
            row = await self._subject_row(conn, key)
        if row is None or row.encrypted_template is None:
            raise SubjectNotFoundError(
                details={"reason": "unknown" if row is None else "no_face_enrolled"}
            )
        challenge = await self._consume_challenge(answer.nonce, "renew", now)
        capture_template, liveness = await self._off_loop(
            self._live_template, challenge, answer, capture
        )
        stored = self._stored_template(row)
        assert stored is not None
        match = self._compare(capture_template, stored)
        if not match.is_match:
            await self._record_review(key, "face_mismatch_on_renewal", match, now)
            raise FaceMismatchError(
                details={
                    "against": "stored_template",
                    "similarity": round(match.similarity, 3),
                    "threshold": match.threshold,
                    "review_recorded": True,
                }
            )
        subject = await self._subject(key, row)
        status = await resolve_status(self.db, subject, now=now, pm=self.pm)
        log.info("renewed kind=%s", row.kind)
        return RenewalResult(subject=subject, status=status, match=match, liveness=liveness)

    # --- dependants (他人代查) -------------------------------------------------------------------

    async def add_dependant(
        self,
        holder_id: str,
        request: EnrollmentRequest,
        *,
        now: dt.datetime | None = None,
    ) -> DependantView:
        """Add the holder of ``request.submission`` as a dependant of ``holder_id``,
        after a one-time face check of the dependant (liveness, then a match
        with the document portrait or the reference photo). The dependant's
        template is not kept: they renew through their holder, not by face."""
        now = now or now_utc()
        holder_key = _subject_key(holder_id)
        document, masked, _warnings = await self._off_loop(
            self._read_document,
            request.submission,
            request.declared_name,
            today_shanghai(now),
            request.warnings,
        )
        document_key = document_key_for(self.secrets, document)
        async with self.db.begin() as conn:
            if await self._subject_row(conn, holder_key) is None:
                raise SubjectNotFoundError(details={"reason": "unknown_holder"})
            dependant_key = await self._subject_of_document(conn, document_key) or document_key
            if dependant_key == holder_key:
                raise DependantIsHolderError()
            await self._check_dependant_room(conn, holder_key, dependant_key)
            dependant_row = await self._subject_row(conn, dependant_key)
        challenge = await self._consume_challenge(request.liveness.nonce, "dependant", now)
        capture_template, _liveness = await self._off_loop(
            self._live_template, challenge, request.liveness, request.capture
        )
        stored = self._stored_template(dependant_row)
        if stored is not None:
            # The dependant enrolled themselves: their own template decides.
            match = self._compare(capture_template, stored)
            against = "stored_template"
        else:
            reference_template, against = await self._off_loop(
                self._reference_template, document, request.submission
            )
            match = self._compare(capture_template, reference_template)
        if not match.is_match:
            raise FaceMismatchError(
                details={
                    "against": against,
                    "similarity": round(match.similarity, 3),
                    "threshold": match.threshold,
                    "review_recorded": False,
                }
            )
        slot = await self._insert_dependant(holder_key, dependant_key, document, masked, now)
        subject = await self._subject(dependant_key)
        status = await resolve_status(self.db, subject, now=now, pm=self.pm)
        log.info("dependant added kind=%s slot=%d", document.kind, slot)
        return DependantView(
            slot=slot, subject_id=subject.subject_id, masked=subject.masked, status=status
        )

    @staticmethod
    async def _check_dependant_room(
        conn: AsyncConnection, holder_key: bytes, dependant_key: bytes
    ) -> list[int]:
        deps = tables.dependants
        rows = (
            await conn.execute(
                sa.select(deps.c.slot, deps.c.dependant_key).where(deps.c.holder_key == holder_key)
            )
        ).all()
        if any(bytes(k) == dependant_key for _, k in rows):
            raise DependantExistsError()
        slots = sorted(int(s) for s, _ in rows)
        if len(slots) >= MAX_DEPENDANTS:
            raise DependantLimitError(details={"limit": MAX_DEPENDANTS})
        return slots

    async def _insert_dependant(
        self,
        holder_key: bytes,
        dependant_key: bytes,
        document: Document,
        masked: MaskedDocument,
        now: dt.datetime,
    ) -> int:
        """Take the lowest free slot. The database's CHECK and UNIQUE constraints
        are the real limit: a concurrent add that took the slot first makes this
        insert fail, and the retry either finds another slot or reports the limit."""
        for _attempt in range(MAX_DEPENDANTS + 1):
            try:
                async with self.db.begin() as conn:
                    slots = await self._check_dependant_room(conn, holder_key, dependant_key)
                    slot = next(s for s in range(1, MAX_DEPENDANTS + 2) if s not in slots)
                    if await self._subject_row(conn, dependant_key) is None:
                        await conn.execute(
                            tables.subjects.insert().values(
                                subject_key=dependant_key,
                                kind=masked.kind,
                                masked_name=masked.masked_name,
                                masked_number=masked.masked_number,
                                encrypted_template=None,
                                device_public_key=None,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                        await conn.execute(
                            tables.subject_documents.insert().values(
                                document_key=dependant_key,
                                subject_key=dependant_key,
                                kind=document.kind,
                                created_at=now,
                            )
                        )
                    await conn.execute(
                        tables.dependants.insert().values(
                            holder_key=holder_key,
                            dependant_key=dependant_key,
                            slot=slot,
                            created_at=now,
                        )
                    )
                    # The dependant's document is in hand now, as at enrollment.
                    await self._store_peer_tokens(
                        conn,
                        dependant_key,
                        document_key_for(self.secrets, document),
                        document,
                        now,
                    )
                return slot
            except sa.exc.IntegrityError:
                continue
        raise DependantLimitError(details={"limit": MAX_DEPENDANTS})

    async def list_dependants(
        self, holder_id: str, *, now: dt.datetime | None = None
    ) -> list[DependantView]:
        """The holder's dependants with today's status each (decisions recorded)."""
        holder_key = _subject_key(holder_id)
        deps, subjects = tables.dependants, tables.subjects
        async with self.db.begin() as conn:
            if await self._subject_row(conn, holder_key) is None:
                raise SubjectNotFoundError(details={"reason": "unknown_holder"})
            rows = (
                await conn.execute(
                    sa.select(
                        deps.c.slot,
                        deps.c.dependant_key,
                        subjects.c.kind,
                        subjects.c.masked_name,
                        subjects.c.masked_number,
                    )
                    .join(subjects, subjects.c.subject_key == deps.c.dependant_key)
                    .where(deps.c.holder_key == holder_key)
                    .order_by(deps.c.slot)
                )
            ).all()
        views = []
        for slot, key, kind, masked_name, masked_number in rows:
            subject = Subject(
                subject_id=subject_id_hex(bytes(key)),
                masked=MaskedDocument(kind, masked_name, masked_number),
            )
            status = await resolve_status(self.db, subject, now=now, pm=self.pm)
            views.append(DependantView(int(slot), subject.subject_id, subject.masked, status))
        return views

    # --- assisted quick check (老幼助查) ----------------------------------------------------------

    async def assist_check(
        self,
        operator: str,
        submission: DocumentSubmission,
        *,
        now: dt.datetime | None = None,
    ) -> AssistResult:
        """Status of a person aged <= 16 or >= 60 by document number, for a helper.

        Nothing is stored (the status decision is not recorded); the result is
        masked. Each operator is rate-limited (``OperatorRateLimiter``, per worker).
        """
        operator = operator.strip()
        if not 1 <= len(operator) <= 64:
            raise InputError(
                "An operator id of 1 to 64 characters is required.",
                "需要提供 1 至 64 个字符的操作员标识。",
                code="operator_required",
            )
        now = now or now_utc()
        self.assist_limiter.take(operator)
        today = today_shanghai(now)
        document, masked, _warnings = await self._off_loop(
            self._read_document, submission, "", today, require_name=False
        )
        if document.birth_date is None:
            raise AgeUnknownError(details={"kind": document.kind})
        age = age_on(document.birth_date, today)
        if ASSIST_MAX_AGE_CHILD < age < ASSIST_MIN_AGE_ELDER:
            raise AssistNotEligibleError()
        subject = Subject(
            subject_id=subject_id_hex(document_key_for(self.secrets, document)), masked=masked
        )
        status = await resolve_status(self.db, subject, now=now, pm=self.pm, record=False)
        # The status's audit reasons are for operators, not for helpers.
        return AssistResult(masked=masked, status=attrs.evolve(status, reasons=(), sources=()))


# --- helpers -----------------------------------------------------------------------------------


async def _answerable_challenge(
    conn: AsyncConnection, nonce: str, purpose: Purpose, now: dt.datetime
) -> LivenessChallenge:
    """The challenge ``nonce`` if it may be answered now (known, of this
    purpose, unused, unexpired); the matching challenge error otherwise."""
    table = liveness_challenges
    row = (await conn.execute(sa.select(table).where(table.c.nonce == nonce))).one_or_none()
    if row is None or row.purpose != purpose:
        raise ChallengeUnknownError(
            details={"reason": "unknown" if row is None else "wrong_purpose"}
        )
    if row.used_at is not None:
        raise ChallengeUsedError()
    if row.expires_at < now:
        raise ChallengeExpiredError()
    return LivenessChallenge(
        nonce=row.nonce,
        actions=tuple(row.actions.split(",")),
        issued_at=row.issued_at,
        expires_at=row.expires_at,
    )


def _subject_key(subject_id: str) -> bytes:
    try:
        return subject_key_bytes(subject_id)
    except ValueError:
        raise SubjectNotFoundError(details={"reason": "malformed_subject_id"}) from None


def _device_key(row: Any | None) -> bytes | None:
    if row is None or row.device_public_key is None:
        return None
    return bytes(row.device_public_key)


def _portrait_region(page: Image, document: Document) -> Image:
    """The page area an image reader reported for the portrait (with a margin),
    or the whole page when it reported none."""
    info = document.extra.get("image")
    box = info.get("portrait_box") if isinstance(info, Mapping) else None
    if not box or len(box) != 4:
        return page
    import numpy as np

    from healthcode.core.images import image_from_array

    x, y, w, h = (int(v) for v in box)
    dx, dy = int(w * PORTRAIT_MARGIN), int(h * PORTRAIT_MARGIN)
    left, top = max(x - dx, 0), max(y - dy, 0)
    right, bottom = min(x + w + dx, page.width), min(y + h + dy, page.height)
    if right - left < 16 or bottom - top < 16:
        return page
    pixels = np.ascontiguousarray(np.asarray(page.pixels)[top:bottom, left:right])
    return image_from_array(pixels)


def subject_to_dict(subject: Subject) -> dict[str, Any]:
    """What a client may be shown about a subject (no template)."""
    return {
        "subject_id": subject.subject_id,
        "kind": subject.masked.kind,
        "masked_name": subject.masked.masked_name,
        "masked_number": subject.masked.masked_number,
        "dependants": list(subject.dependants),
    }


def status_to_dict(status: Status, *, with_reasons: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "colour": status.colour.value,
        "label_zh": status.colour.label_zh,
        "label_en": status.colour.label_en,
        "valid_until": status.valid_until.isoformat(),
    }
    if with_reasons:
        data["reasons"] = list(status.reasons)
        data["sources"] = list(status.sources)
    return data


__all__ = [
    "AssistResult",
    "DependantView",
    "EnrollmentRequest",
    "EnrollmentResult",
    "EnrollmentService",
    "LivenessAnswer",
    "OperatorRateLimiter",
    "RenewalResult",
    "age_on",
    "liveness_challenges",
    "names_agree",
    "normalise_device_key",
    "status_to_dict",
    "subject_to_dict",
]
