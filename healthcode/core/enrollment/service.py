"""``EnrollmentService``: enrollment, face-only renewal, dependants and the
assisted check over one database, each written as its named steps; the steps'
parts live in the sibling modules (``document``, ``challenges``, ``intake``,
``faces``, ``store``)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import attrs
import pluggy
import sqlalchemy as sa
from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.clock import now_utc, today_shanghai
from healthcode.core.documents import parse_document
from healthcode.core.enrollment import challenges, store
from healthcode.core.enrollment.assist import OperatorRateLimiter, age_on, assist_eligible
from healthcode.core.enrollment.challenges import CHALLENGE_TTL, DEFAULT_CHALLENGE_LENGTH
from healthcode.core.enrollment.device_keys import normalise_device_key
from healthcode.core.enrollment.document import read_document
from healthcode.core.enrollment.errors import (
    AgeUnknownError,
    AssistNotEligibleError,
    DependantIsHolderError,
    DependantLimitError,
    DocumentLinkedElsewhereError,
    EnrollmentConflictError,
    FaceCheckUnavailableError,
    FaceMismatchError,
    FaceWorkBusyError,
    RateLimitedError,
    SubjectNotFoundError,
)
from healthcode.core.enrollment.faces import FaceChecks
from healthcode.core.enrollment.intake import (
    IMAGE_REQUESTS_PER_WORKER,
    check_answer_headers,
    decode_answer_images,
)
from healthcode.core.enrollment.reviews import (
    CONFIRMED_REVIEW,
    ReviewAttempt,
    check_document_not_blocked,
    check_subject_not_blocked,
    seal_capture,
    use_confirmation,
)
from healthcode.core.enrollment.values import (
    PURPOSES,
    AssistResult,
    DependantView,
    EnrollmentRequest,
    EnrollmentResult,
    LivenessAnswer,
    Outcome,
    Purpose,
    RenewalResult,
)
from healthcode.core.errors import InputError
from healthcode.core.models import (
    Document,
    DocumentSubmission,
    FaceMatch,
    Image,
    LivenessChallenge,
    MaskedDocument,
    Problem,
    Subject,
)
from healthcode.core.plugins import get_plugin_manager
from healthcode.core.privacy import (
    OperatorSecrets,
    canonical_document_key,
    document_key_for,
    encrypt_template,
    subject_id_hex,
)
from healthcode.core.shared import shared_state
from healthcode.core.status import resolve_status
from healthcode.core.status.peer_tokens import PeerKeys, resolve_peer_keys, store_peer_tokens
from healthcode.core.storage.database import Database
from healthcode.core.storage.tables import MAX_DEPENDANTS

T = TypeVar("T")
log = logging.getLogger("healthcode.core.enrollment")


@frozen
class _Target:
    """Whom an enrolled document joins, as read before anything is written."""

    document_key: bytes
    own: bytes | None
    """The subject this document is enrolled to already."""
    linked: bytes | None
    """The subject of the previous document, for a renewed one."""
    row: Any
    """The existing subject's row, or None."""

    @property
    def existing(self) -> bytes | None:
        return self.own or self.linked

    @property
    def subject_key(self) -> bytes:
        return self.own or self.linked or self.document_key


class _Stopwatch:
    """Seconds spent per stage of one enrollment."""

    def __init__(self) -> None:
        self.started = self.mark = time.perf_counter()
        self.spent = {"document": 0.0, "database": 0.0, "faces": 0.0, "status": 0.0}

    def lap(self, stage: str) -> None:
        moment = time.perf_counter()
        self.spent[stage] += moment - self.mark
        self.mark = moment

    def timings(self) -> dict[str, float]:
        spent = {**self.spent, "total": time.perf_counter() - self.started}
        return {k: round(v, 4) for k, v in spent.items()}


def _mismatch(against: str, match: FaceMatch, *, review_recorded: bool) -> FaceMismatchError:
    return FaceMismatchError(
        details={
            "against": against,
            "similarity": round(match.similarity, 3),
            "threshold": match.threshold,
            "review_recorded": review_recorded,
        }
    )


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
        liveness_actions: Sequence[str] = (),
        demo: bool = False,
    ) -> None:
        """``peer_keys``: pair keys by peer region, or a function returning them
        (e.g. ``lambda: configured_pair_keys(keys)``), for status sharing.
        ``liveness_actions``: draw challenges from these registered actions
        only (an operator's restriction, ``HEALTHCODE_LIVENESS_ACTIONS``);
        empty: from every registered action. ``demo``: this is a demo instance
        (``serve --demo``), which enrolls the pages ``healthcode demo`` makes."""
        self.db = db
        self.secrets = secrets
        self.pm = pm or get_plugin_manager()
        self.face_checks = FaceChecks(self.pm)
        self.assist_limiter = assist_limiter or OperatorRateLimiter()
        self.peer_keys = peer_keys
        self.max_face_jobs = max_face_jobs or 2 * (os.cpu_count() or 1)
        self._face_jobs = 0
        self.max_image_requests = max_image_requests or min(
            self.max_face_jobs, IMAGE_REQUESTS_PER_WORKER
        )
        self._image_requests = 0
        self.liveness_actions = tuple(liveness_actions)
        self.demo = demo

    @property
    def face_jobs_in_flight(self) -> int:
        """Face and OCR jobs running or waiting in this worker's thread pool."""
        return self._face_jobs

    @property
    def image_requests_in_flight(self) -> int:
        """Requests holding decoded images in this worker."""
        return self._image_requests

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
        """A fresh challenge of ``length`` distinct random actions, drawn from
        those the face plugins register, stored so that it can be answered once.
        ``actions`` fixes them instead (tests and benchmarks: the shared data has
        photos, not video)."""
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {PURPOSES}")
        vocabulary = tuple(challenges.liveness_actions(self.pm))
        if not vocabulary and actions is None:
            raise FaceCheckUnavailableError(details={"hook": "healthcode_liveness_actions"})
        if self.liveness_actions and actions is None:
            vocabulary = challenges.restrict_actions(vocabulary, self.liveness_actions)
            length = min(length, len(vocabulary))
        challenge = challenges.draw_challenge(
            vocabulary, length=length, ttl=CHALLENGE_TTL, now=now or now_utc(), actions=actions
        )
        await challenges.store_challenge(self.db, challenge, purpose)
        return challenge

    async def _consume_challenge(
        self, nonce: str, purpose: Purpose, now: dt.datetime
    ) -> LivenessChallenge:
        return await challenges.consume_challenge(self.db, nonce, purpose, now)

    async def purge_challenges(self, *, now: dt.datetime | None = None) -> int:
        """Delete challenges that expired more than ``CHALLENGE_RETENTION`` ago."""
        return await challenges.purge_challenges(self.db, now or now_utc())

    # --- image intake: the cheap checks first, then decoding off the event loop ------------

    async def check_challenge(
        self, nonce: str, purpose: Purpose, *, now: dt.datetime | None = None
    ) -> LivenessChallenge:
        """The challenge ``nonce`` if it can be answered now, without using it up.

        A cheap look-up made before any image of the answer is read, so that a
        made-up, used or expired nonce costs no image work. The answer still
        counts once: ``_consume_challenge`` marks it used when it is judged.
        """
        return await challenges.check_challenge(self.db, nonce, purpose, now or now_utc())

    @contextlib.asynccontextmanager
    async def image_intake(
        self, challenge: LivenessChallenge, frames: Sequence[bytes], capture: bytes
    ) -> AsyncIterator[tuple[list[Image], Image]]:
        """Decoded frames and capture of an answer to ``challenge``, held while
        the block runs.

        Before any pixel is decoded, the answer's size is checked from its
        headers (``intake.check_answer_headers``). Decoding runs in the bounded
        face-work pool; at most ``max_image_requests`` requests hold decoded
        images at once (beyond: ``face_service_busy``).
        """
        check_answer_headers(challenge, frames, capture)
        if self._image_requests >= self.max_image_requests:
            raise FaceWorkBusyError(details={"retry_after_s": 2})
        self._image_requests += 1
        try:
            decoded = await self._off_loop(decode_answer_images, [*frames, capture])
            yield decoded[:-1], decoded[-1]
        finally:
            self._image_requests -= 1

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

    async def _request_document(
        self, request: EnrollmentRequest, now: dt.datetime
    ) -> tuple[Document, MaskedDocument, list[Problem]]:
        """The request's document, read and checked against the typed name."""
        return await self._off_loop(
            read_document,
            self.pm,
            request.submission,
            request.declared_name,
            today_shanghai(now),
            request.warnings,
            allow_demo=self.demo,
        )

    # --- face matches --------------------------------------------------------------------------

    async def _refused(
        self,
        attempt: ReviewAttempt,
        against: str,
        match: FaceMatch,
        capture_template: bytes,
        now: dt.datetime,
    ) -> FaceMatch:
        """A capture that failed its match: let through by an operator's
        confirmation of this face (the review queue, see ``reviews``), else
        refused and recorded for review as ``attempt.reason``."""
        confirmed = await use_confirmation(
            self.db,
            self.secrets,
            attempt.subject_key,
            capture_template,
            self.face_checks.compare,
            now,
        )
        if confirmed is not None:
            log.info("accepted by a confirmed review kind=%s against=%s", attempt.kind, against)
            return confirmed
        sealed = seal_capture(self.secrets, attempt.subject_key, capture_template)
        await store.record_review(self.db, attempt, against, match, now, sealed_capture=sealed)
        raise _mismatch(against, match, review_recorded=True)

    async def _match_stored(
        self, attempt: ReviewAttempt, capture_template: bytes, stored: bytes, now: dt.datetime
    ) -> tuple[FaceMatch, str]:
        """The capture against the subject's stored template, and what decided:
        ``stored_template``, or ``confirmed_review`` for a mismatch an operator
        confirmed; any other mismatch is refused and recorded for review."""
        match = self.face_checks.compare(capture_template, stored)
        if match.is_match:
            return match, "stored_template"
        confirmed = await self._refused(attempt, "stored_template", match, capture_template, now)
        return confirmed, CONFIRMED_REVIEW

    async def _match_reference(
        self,
        capture_template: bytes,
        document: Document,
        submission: DocumentSubmission,
        *,
        attempt: ReviewAttempt | None = None,
        now: dt.datetime | None = None,
    ) -> tuple[FaceMatch, str]:
        """The capture against the document's reference face (see ``FaceChecks``).
        With ``attempt``, a mismatch goes through ``_refused`` (the review
        queue); without (a dependant's one-time check), it is refused only."""
        reference, source = await self._off_loop(
            self.face_checks.reference_template, document, submission
        )
        match = self.face_checks.compare(capture_template, reference)
        if match.is_match:
            return match, source
        if attempt is None:
            raise _mismatch(source, match, review_recorded=False)
        confirmed = await self._refused(attempt, source, match, capture_template, now or now_utc())
        return confirmed, CONFIRMED_REVIEW

    # --- enrollment ---------------------------------------------------------------------------

    async def enroll(
        self, request: EnrollmentRequest, *, now: dt.datetime | None = None
    ) -> EnrollmentResult:
        """Enroll (or re-enroll) the holder of ``request.submission``; see the package doc."""
        now = now or now_utc()
        clock = _Stopwatch()
        document, masked, warnings = await self._request_document(request, now)
        device_key = (
            normalise_device_key(request.device_public_key)
            if request.device_public_key is not None
            else None
        )
        previous_key = self._previous_document_key(request.previous)
        clock.lap("document")
        target = await self._enrollment_target(
            document_key_for(self.secrets, document), previous_key
        )
        challenge = await self._consume_challenge(request.liveness.nonce, "enroll", now)
        clock.lap("database")
        capture_template, liveness, capture_warnings = await self._off_loop(
            self.face_checks.live_template, challenge, request.liveness, request.capture
        )
        warnings = [*warnings, *capture_warnings]
        match, reference = await self._enrollment_match(
            target, capture_template, document, masked, request.submission, now
        )
        clock.lap("faces")
        outcome = await self._write_enrollment(
            target, document, masked, capture_template, device_key, now
        )
        clock.lap("database")
        subject = await store.load_subject(self.db, target.subject_key)
        status = await resolve_status(self.db, subject, now=now, pm=self.pm)
        clock.lap("status")
        log.info("enrolled kind=%s outcome=%s reference=%s", document.kind, outcome, reference)
        return EnrollmentResult(
            subject=subject,
            outcome=outcome,
            match=match,
            reference=reference,
            liveness=liveness,
            status=status,
            device_public_key=device_key
            if device_key is not None
            else store.device_key(target.row),
            warnings=tuple(warnings),
            timings=clock.timings(),
        )

    def _previous_document_key(self, previous: DocumentSubmission | None) -> bytes | None:
        """The key of the document a renewed one replaces, if any."""
        if previous is None:
            return None
        return document_key_for(self.secrets, parse_document(previous, self.pm))

    async def _enrollment_target(self, document_key: bytes, previous_key: bytes | None) -> _Target:
        """The subject the document joins: its own, the previous document's, or none."""
        async with self.db.begin() as conn:
            await check_document_not_blocked(conn, document_key, previous_key)
            own = await store.subject_of_document(conn, document_key)
            linked = None
            if previous_key is not None:
                linked = await store.subject_of_document(conn, previous_key)
                if linked is None:
                    raise SubjectNotFoundError(
                        "The previous document is not enrolled.",
                        "原证件尚未登记。",
                        details={"document": "previous"},
                    )
            if own is not None and linked is not None and own != linked:
                raise DocumentLinkedElsewhereError()
            existing = own or linked
            row = await store.subject_row(conn, existing) if existing is not None else None
        return _Target(document_key=document_key, own=own, linked=linked, row=row)

    async def _enrollment_match(
        self,
        target: _Target,
        capture_template: bytes,
        document: Document,
        masked: MaskedDocument,
        submission: DocumentSubmission,
        now: dt.datetime,
    ) -> tuple[FaceMatch, str]:
        """The decisive match and what it was against: the stored template of
        an enrolled subject, else the document's reference. A new document
        (first enrollment or a renewed passport) must match its own reference
        too: the stored template says who the person is, the reference says the
        document is theirs. A mismatch goes to the review queue."""

        def attempt(key: bytes, reason: str) -> ReviewAttempt:
            return ReviewAttempt(
                key, target.document_key, masked.kind, masked.masked_number, reason
            )

        stored = store.stored_template(self.secrets, target.row)
        first = attempt(target.subject_key, "face_mismatch_on_enrollment")
        if stored is None or target.existing is None:
            return await self._match_reference(
                capture_template, document, submission, attempt=first, now=now
            )
        match, against = await self._match_stored(
            attempt(target.existing, "face_mismatch_on_reenrollment"),
            capture_template,
            stored,
            now,
        )
        if target.own is None:
            await self._match_reference(
                capture_template, document, submission, attempt=first, now=now
            )
        return match, against

    async def _write_enrollment(
        self,
        target: _Target,
        document: Document,
        masked: MaskedDocument,
        template: bytes,
        device_key: bytes | None,
        now: dt.datetime,
    ) -> Outcome:
        """Create or update the subject, link the document, store peer tokens."""
        key = target.subject_key
        values: dict[str, Any] = {
            "kind": masked.kind,
            "masked_name": masked.masked_name,
            "masked_number": masked.masked_number,
            "encrypted_template": encrypt_template(self.secrets, template, subject_key=key),
            "updated_at": now,
        }
        if device_key is not None:
            values["device_public_key"] = device_key
        try:
            async with self.db.begin() as conn:
                await store.write_subject(
                    conn, key, values, create=target.existing is None, now=now
                )
                if target.own is None:
                    await store.link_document(conn, target.document_key, key, document.kind, now)
                await self._store_peer_tokens(conn, key, target.document_key, document, now)
        except sa.exc.IntegrityError:
            # Another worker enrolled the same document between our read and write.
            raise EnrollmentConflictError() from None
        if target.existing is None:
            return "created"
        return "updated" if target.own is not None else "linked"

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
        key = store.subject_key(subject_id)
        async with self.db.begin() as conn:
            row = await store.subject_row(conn, key)
            if row is not None:
                await check_subject_not_blocked(conn, key)
        stored = store.stored_template(self.secrets, row)
        if stored is None:
            raise SubjectNotFoundError(
                details={"reason": "unknown" if row is None else "no_face_enrolled"}
            )
        challenge = await self._consume_challenge(answer.nonce, "renew", now)
        capture_template, liveness, warnings = await self._off_loop(
            self.face_checks.live_template, challenge, answer, capture
        )
        attempt = ReviewAttempt(key, None, row.kind, row.masked_number, "face_mismatch_on_renewal")
        match, against = await self._match_stored(attempt, capture_template, stored, now)
        if against == CONFIRMED_REVIEW:
            # The face an operator confirmed is the one kept from now on.
            sealed = encrypt_template(self.secrets, capture_template, subject_key=key)
            async with self.db.begin() as conn:
                await store.replace_template(conn, key, sealed, now)
        subject = await store.load_subject(self.db, key, row)
        status = await resolve_status(self.db, subject, now=now, pm=self.pm)
        log.info("renewed kind=%s", row.kind)
        return RenewalResult(
            subject=subject,
            status=status,
            match=match,
            liveness=liveness,
            warnings=tuple(warnings),
        )

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
        holder_key = store.subject_key(holder_id)
        document, masked, warnings = await self._request_document(request, now)
        dependant_key, dependant_row = await self._dependant_target(holder_key, document)
        challenge = await self._consume_challenge(request.liveness.nonce, "dependant", now)
        capture_template, _liveness, capture_warnings = await self._off_loop(
            self.face_checks.live_template, challenge, request.liveness, request.capture
        )
        stored = store.stored_template(self.secrets, dependant_row)
        if stored is None:
            await self._match_reference(capture_template, document, request.submission)
        else:
            # The dependant enrolled themselves: their own template decides.
            match = self.face_checks.compare(capture_template, stored)
            if not match.is_match:
                raise _mismatch("stored_template", match, review_recorded=False)
        slot = await self._insert_dependant(holder_key, dependant_key, document, masked, now)
        subject = await store.load_subject(self.db, dependant_key)
        status = await resolve_status(self.db, subject, now=now, pm=self.pm)
        log.info("dependant added kind=%s slot=%d", document.kind, slot)
        return DependantView(
            slot=slot,
            subject_id=subject.subject_id,
            masked=subject.masked,
            status=status,
            warnings=(*warnings, *capture_warnings),
        )

    async def _dependant_target(self, holder_key: bytes, document: Document) -> tuple[bytes, Any]:
        """The dependant's subject key and row (None when not enrolled), once it
        is clear the holder exists, is not the dependant and has a free slot."""
        document_key = document_key_for(self.secrets, document)
        async with self.db.begin() as conn:
            if await store.subject_row(conn, holder_key) is None:
                raise SubjectNotFoundError(details={"reason": "unknown_holder"})
            await check_document_not_blocked(conn, document_key)
            dependant_key = await store.subject_of_document(conn, document_key) or document_key
            if dependant_key == holder_key:
                raise DependantIsHolderError()
            await store.check_dependant_room(conn, holder_key, dependant_key)
            return dependant_key, await store.subject_row(conn, dependant_key)

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
        document_key = document_key_for(self.secrets, document)
        for _attempt in range(MAX_DEPENDANTS + 1):
            try:
                async with self.db.begin() as conn:
                    taken = await store.check_dependant_room(conn, holder_key, dependant_key)
                    await store.add_dependant_subject(conn, dependant_key, document, masked, now)
                    slot = await store.take_dependant_slot(
                        conn, holder_key, dependant_key, taken, now
                    )
                    # The dependant's document is in hand now, as at enrollment.
                    await self._store_peer_tokens(conn, dependant_key, document_key, document, now)
                return slot
            except sa.exc.IntegrityError:
                continue
        raise DependantLimitError(details={"limit": MAX_DEPENDANTS})

    async def list_dependants(
        self, holder_id: str, *, now: dt.datetime | None = None
    ) -> list[DependantView]:
        """The holder's dependants with today's status each (decisions recorded)."""
        holder_key = store.subject_key(holder_id)
        async with self.db.begin() as conn:
            if await store.subject_row(conn, holder_key) is None:
                raise SubjectNotFoundError(details={"reason": "unknown_holder"})
            rows = await store.dependant_rows(conn, holder_key)
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

    async def _take_assist(self, operator: str) -> None:
        """Count one assisted check of ``operator``: across every node in Redis
        when it is configured (a fixed window of the limiter's capacity per
        minute), else, or while Redis is unreachable, in this worker's
        token bucket. The Redis key holds a digest of the operator id."""
        shared = shared_state(self.db)
        if shared is not None:
            name = "assist:" + hashlib.sha256(operator.encode()).hexdigest()[:32]
            retry = await shared.hit(name, self.assist_limiter.capacity)
            if retry is not None:
                if retry:
                    raise RateLimitedError(details={"retry_after_s": retry})
                return
        self.assist_limiter.take(operator)

    async def assist_check(
        self,
        operator: str,
        submission: DocumentSubmission,
        *,
        now: dt.datetime | None = None,
    ) -> AssistResult:
        """Status of a person aged <= 16 or >= 60 by document number, for a helper.

        Nothing is stored (the status decision is not recorded); the result is
        masked. Each operator is rate-limited: across nodes with Redis, else per
        worker (``OperatorRateLimiter``).
        """
        operator = operator.strip()
        if not 1 <= len(operator) <= 64:
            raise InputError(
                "An operator id of 1 to 64 characters is required.",
                "需要提供 1 至 64 个字符的操作员标识。",
                code="operator_required",
            )
        now = now or now_utc()
        await self._take_assist(operator)
        today = today_shanghai(now)
        document, masked, _warnings = await self._off_loop(
            read_document,
            self.pm,
            submission,
            "",
            today,
            require_name=False,
            allow_demo=self.demo,
        )
        if document.birth_date is None:
            raise AgeUnknownError(details={"kind": document.kind})
        if not assist_eligible(age_on(document.birth_date, today)):
            raise AssistNotEligibleError()
        subject = Subject(
            subject_id=subject_id_hex(document_key_for(self.secrets, document)), masked=masked
        )
        status = await resolve_status(self.db, subject, now=now, pm=self.pm, record=False)
        # The status's audit reasons are for operators, not for helpers.
        return AssistResult(masked=masked, status=attrs.evolve(status, reasons=(), sources=()))
