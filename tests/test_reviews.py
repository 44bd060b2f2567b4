"""The review queue (后台核验): enrollments and renewals refused for a face
mismatch are listed, shown and resolved (confirm the person, or block the
document), through the core service, the admin API and the CLI, on SQLite and
PostgreSQL; and the person's next attempt follows the decision.

Entries for the queue's own rules (paging, filters, one resolution, audit,
input checks, blocking) are written through ``store.record_review`` as the
enrollment service writes them, so these tests need no face models. The full
loops (a mismatch, its entry, the resolution, the next attempt) run the real
face plugin on real photos (obama_*, biden_*), with challenges fixed to what
the photos show, as in tests/test_enrollment.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest
import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.audit import audit_rows
from support.backends import Backend
from support.data import FACES
from support.documents import device_key, resident_id
from support.faces import (
    BIDEN,
    OBAMA,
    OBAMA_OTHER_WAY,
    AuthorityPhotos,
    Person,
    photo,
    require_face_models,
)
from support.instances import sqlite_instance
from typer.testing import CliRunner

import healthcode.plugins.authority_status as authority_status
from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.cli.main import app as cli
from healthcode.core.auth import create_token
from healthcode.core.documents import make_submission, parse_document
from healthcode.core.enrollment import EnrollmentRequest, EnrollmentService, LivenessAnswer, store
from healthcode.core.enrollment.errors import (
    DocumentBlockedError,
    FaceMismatchError,
    ReviewAlreadyResolvedError,
    ReviewInputError,
    ReviewNotBlockedError,
    ReviewNotFoundError,
    ReviewReasonPersonalDataError,
)
from healthcode.core.enrollment.faces import FaceChecks
from healthcode.core.enrollment.reviews import (
    CONFIRM_GRANT_TTL,
    ReviewAttempt,
    ReviewService,
    blocked_documents,
    check_reason,
    check_subject_not_blocked,
    erase_unneeded_faces,
    seal_capture,
    use_confirmation,
)
from healthcode.core.models import DocumentSubmission, FaceMatch
from healthcode.core.plugins import new_plugin_manager
from healthcode.core.privacy import OperatorSecrets, decrypt_template, document_key_for
from healthcode.core.storage import tables
from healthcode.core.storage.database import open_database

NUMBER = resident_id(dt.date(1985, 7, 9))
MASKED = NUMBER[:2] + "*" * 14 + NUMBER[-2:]
NAME = "欧阳修文"
REASON = "checked in person at the service counter"


@pytest.fixture
def authority() -> AuthorityPhotos:
    return AuthorityPhotos({NUMBER: OBAMA.reference})


@pytest.fixture
def enroll_pm(authority: AuthorityPhotos) -> pluggy.PluginManager:
    pm = new_plugin_manager(autoload=False)
    if not pm.is_registered(authority_status):
        pm.register(authority_status, name="authority_status")
    pm.register(authority, name="test_authority_photos")
    return pm


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- helpers -----------------------------------------------------------------------------


def submission(number: str = NUMBER) -> DocumentSubmission:
    sub, _ = make_submission(kind="cn_resident_id", number=number)
    return sub


def run(
    backend: Backend,
    pm: pluggy.PluginManager | None,
    body: Callable[[EnrollmentService, ReviewService], Awaitable[Any]],
) -> Any:
    """Open the database, build the services and run ``body(enrollment, reviews)``."""

    async def go() -> Any:
        db, secrets = await open_database(backend.url, backend.secrets_file)
        try:
            service = EnrollmentService(db, secrets, pm or new_plugin_manager(autoload=False))
            return await body(service, ReviewService(db))
        finally:
            await db.dispose()

    return asyncio.run(go())


async def request_for(
    service: EnrollmentService, person: Person, number: str = NUMBER, purpose: str = "enroll"
) -> EnrollmentRequest:
    challenge = await service.issue_challenge(purpose=purpose, actions=person.actions)  # type: ignore[arg-type]
    return EnrollmentRequest(
        submission=submission(number),
        declared_name=NAME,
        liveness=LivenessAnswer(nonce=challenge.nonce, frames=person.frame_images()),
        capture=photo(person.capture),
        device_public_key=device_key(),
    )


async def renewal(service: EnrollmentService, person: Person) -> tuple[LivenessAnswer, Any]:
    challenge = await service.issue_challenge(purpose="renew", actions=person.actions)
    return LivenessAnswer(challenge.nonce, person.frame_images()), photo(person.capture)


def doc_key(secrets: OperatorSecrets, number: str = NUMBER) -> bytes:
    return document_key_for(secrets, parse_document(submission(number)))


async def seed(
    service: EnrollmentService,
    count: int = 1,
    *,
    number: str = NUMBER,
    reason: str = "face_mismatch_on_reenrollment",
    against: str = "stored_template",
) -> list[int]:
    """Entries as the enrollment service writes them (the refused face sealed)."""
    key = doc_key(service.secrets, number)
    masked = number[:2] + "*" * (len(number) - 4) + number[-2:]
    attempt = ReviewAttempt(
        key, None if reason.endswith("renewal") else key, "cn_resident_id", masked, reason
    )
    ids = []
    for _ in range(count):
        sealed = seal_capture(service.secrets, key, b"HCF1-not-a-real-face")
        ids.append(
            await store.record_review(
                service.db,
                attempt,
                against,
                FaceMatch(similarity=0.12345, threshold=0.4, is_match=False),
                dt.datetime.now(dt.UTC),
                sealed_capture=sealed,
            )
        )
    return ids


async def enroll_subject(service: EnrollmentService, number: str = NUMBER) -> bytes:
    """A subject with one document, written as enrollment writes it (no face)."""
    key = doc_key(service.secrets, number)
    now = dt.datetime.now(dt.UTC)
    async with service.db.begin() as conn:
        values = {
            "kind": "cn_resident_id",
            "masked_name": "欧阳",
            "masked_number": MASKED,
            "encrypted_template": None,
            "device_public_key": None,
            "updated_at": now,
        }
        await store.write_subject(conn, key, values, create=True, now=now)
        await store.link_document(conn, key, key, "cn_resident_id", now)
    return key


# --- the queue's own rules (no faces) ------------------------------------------------------


def test_an_entry_shows_what_was_compared_and_the_masked_document_only(
    backend: Backend,
) -> None:
    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        (review_id,) = await seed(service)
        entry = (await reviews.get(review_id)).as_dict()
        assert entry["state"] == "open"
        assert entry["against"] == "stored_template"
        assert entry["against_zh"] == "此前登记的人脸（已存模板）"
        assert (entry["similarity"], entry["threshold"]) == (0.123, 0.4)
        assert (entry["kind"], entry["masked_number"]) == ("cn_resident_id", MASKED)
        # 10:00 in Shanghai, where the test clock starts.
        assert entry["created_at"].startswith("2026-11-26T10:00:")
        assert entry["created_at"].endswith("+08:00")
        assert entry["resolution"] is None and entry["grant"] is None
        assert NUMBER not in json.dumps(entry, ensure_ascii=False)
        assert NUMBER not in repr(await reviews.get(review_id))

    run(backend, None, body)


def test_entries_page_by_cursor_and_filter_by_state(backend: Backend) -> None:
    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        ids = await seed(service, 5)
        first = await reviews.list(limit=2)
        assert [r.review_id for r in first.reviews] == ids[:2]
        assert first.next_cursor == ids[1] and first.open_count == 5
        second = await reviews.list(limit=2, cursor=first.next_cursor)
        assert [r.review_id for r in second.reviews] == ids[2:4]
        last = await reviews.list(limit=2, cursor=second.next_cursor)
        assert [r.review_id for r in last.reviews] == ids[4:] and last.next_cursor is None

        await reviews.resolve(ids[1], "confirm", REASON, operator="desk 3")
        await reviews.resolve(ids[3], "block", REASON, operator="desk 3")
        assert [r.review_id for r in (await reviews.list()).reviews] == [ids[0], ids[2], ids[4]]
        resolved = await reviews.list(state="resolved")
        assert [(r.review_id, r.state) for r in resolved.reviews] == [
            (ids[1], "confirmed"),
            (ids[3], "blocked"),
        ]
        assert resolved.open_count == 3
        assert len((await reviews.list(state="all", limit=100)).reviews) == 5

    run(backend, None, body)


def test_an_entry_is_resolved_once_and_audited(backend: Backend) -> None:
    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        confirm_id, block_id = await seed(service, 2)
        confirmed = await reviews.resolve(confirm_id, "confirm", f"  {REASON} ", operator="ops")
        now = dt.datetime.now(dt.UTC)
        assert confirmed.state == "confirmed" and confirmed.grant_state(now) == "unused"
        assert confirmed.resolution_reason == REASON and confirmed.resolved_by == "ops"
        assert confirmed.grant_expires_at is not None
        assert confirmed.grant_expires_at - now <= CONFIRM_GRANT_TTL
        assert confirmed.grant_state(now + CONFIRM_GRANT_TTL) == "expired"

        # Once: the same or the other decision again changes nothing.
        for decision in ("confirm", "block"):
            with pytest.raises(ReviewAlreadyResolvedError) as again:
                await reviews.resolve(confirm_id, decision, REASON, operator="someone else")
            assert again.value.details["resolution"] == "confirm"
        assert (await reviews.get(confirm_id)).resolved_by == "ops"
        with pytest.raises(ReviewNotFoundError):
            await reviews.resolve(9999, "confirm", REASON, operator="ops")
        with pytest.raises(ReviewNotFoundError):
            await reviews.get(9999)

        blocked = await reviews.resolve(block_id, "block", "stolen document", operator="ops")
        assert blocked.state == "blocked" and blocked.documents_blocked == 1
        async with service.db.begin() as conn:
            kept = dict(
                (
                    await conn.execute(
                        sa.select(
                            tables.enrollment_reviews.c.id,
                            tables.enrollment_reviews.c.capture_template,
                        )
                    )
                ).all()
            )
        # A blocked entry no longer needs the refused face; a confirmed one does.
        assert kept[block_id] is None and kept[confirm_id] is not None

        audited = await audit_rows(service.db, "review_resolve")
        assert [(a.details["review_id"], a.details["decision"]) for a in audited] == [
            (confirm_id, "confirm"),
            (block_id, "block"),
        ]
        assert audited[0].details["operator"] == "ops"
        assert audited[0].details["reason"] == REASON
        assert audited[1].details["documents_blocked"] == 1

    run(backend, None, body)


def test_bad_review_input_is_refused_with_its_code(backend: Backend) -> None:
    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        (review_id,) = await seed(service)
        refusals = [
            (reviews.list(state="pending"), "state"),
            (reviews.list(limit=0), "limit"),
            (reviews.list(limit=101), "limit"),
            (reviews.list(cursor=-1), "cursor"),
            (reviews.resolve(review_id, "approve", REASON, operator="ops"), "decision"),
            (reviews.resolve(review_id, "block", "   ", operator="ops"), "reason"),
            (reviews.resolve(review_id, "block", "x" * 501, operator="ops"), "reason"),
            (reviews.resolve(review_id, "block", REASON, operator=""), "operator"),
        ]
        for call, field in refusals:
            with pytest.raises(ReviewInputError) as caught:
                await call
            assert caught.value.code == "review_input_invalid"
            assert caught.value.details["field"] == field
        with pytest.raises(ReviewReasonPersonalDataError):
            await reviews.resolve(review_id, "block", f"holder is {NUMBER}", operator="ops")
        assert (await reviews.get(review_id)).state == "open"

    run(backend, None, body)


def test_reasons_may_carry_dates_and_ticket_words_but_no_document_numbers() -> None:
    assert check_reason(" seen 2026-11-26, ticket A-12 ") == "seen 2026-11-26, ticket A-12"
    assert check_reason("本人到窗口核验") == "本人到窗口核验"
    for number in ("K1234567", "H12345678", "11010519491231002X", "ref 12345678"):
        with pytest.raises(ReviewReasonPersonalDataError):
            check_reason(f"document {number}")


def test_a_blocked_document_is_refused_before_any_face_work(
    backend: Backend, enroll_pm: pluggy.PluginManager
) -> None:
    other = resident_id(dt.date(1990, 1, 2))

    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        subject = await enroll_subject(service)
        (review_id,) = await seed(service)
        await reviews.resolve(review_id, "block", "stolen document", operator="ops")

        request = await request_for(service, OBAMA)
        with pytest.raises(DocumentBlockedError) as caught:
            await service.enroll(request)
        assert caught.value.code == "document_blocked"
        assert caught.value.details == {"reason": "document_blocked"}
        assert "停用" in caught.value.message_zh and "blocked" in caught.value.message_en
        # Refused before the challenge was used: the answer still counts.
        await service.check_challenge(request.liveness.nonce, "enroll")

        answer, capture = await renewal(service, OBAMA)
        with pytest.raises(DocumentBlockedError) as renewing:
            await service.renew(subject.hex(), answer, capture)
        assert renewing.value.details == {"reason": "subject_blocked"}

        holder = await enroll_subject(service, other)
        with pytest.raises(DocumentBlockedError):
            await service.add_dependant(
                holder.hex(), await request_for(service, OBAMA, purpose="dependant")
            )

    run(backend, enroll_pm, body)


def test_blocking_a_renewal_entry_blocks_every_document_of_the_subject(
    backend: Backend,
) -> None:
    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        await enroll_subject(service)
        (review_id,) = await seed(service, reason="face_mismatch_on_renewal")
        assert (await reviews.get(review_id)).kind == "cn_resident_id"
        blocked = await reviews.resolve(review_id, "block", "device misused", operator="ops")
        assert blocked.documents_blocked == 1
        async with service.db.begin() as conn:
            rows = (await conn.execute(sa.select(tables.blocked_documents))).all()
        assert [bytes(r.document_key) for r in rows] == [doc_key(service.secrets)]

    run(backend, None, body)


def test_an_unblock_lets_the_document_in_again_and_is_audited(backend: Backend) -> None:
    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        subject = await enroll_subject(service)
        first, second, open_one = await seed(service, 3)
        await reviews.resolve(first, "block", "stolen document", operator="ops")
        # A second entry of the same person blocking the same document.
        await reviews.resolve(second, "block", "stolen, reported again", operator="ops")
        key = doc_key(service.secrets)

        async def blocked() -> bool:
            async with service.db.begin() as conn:
                return await blocked_documents(conn, [key])

        assert await blocked()
        lifted = await reviews.unblock(first, "found again", operator="desk 2")
        assert (lifted.state, lifted.resolved_by, lifted.resolution_reason) == (
            "unblocked",
            "desk 2",
            "found again",
        )
        assert await blocked()  # the second entry still blocks it
        await reviews.unblock(second, "found again", operator="desk 2")
        assert not await blocked()
        async with service.db.begin() as conn:
            await check_subject_not_blocked(conn, subject)
        audits = [dict(r.details) for r in await audit_rows(service.db, "review_unblock")]
        assert [(a["review_id"], a["documents_unblocked"]) for a in audits] == [
            (first, 0),
            (second, 1),
        ]
        assert NUMBER not in json.dumps(audits)

        for review_id in (first, open_one):  # unblocked already; never blocked
            with pytest.raises(ReviewNotBlockedError) as refused:
                await reviews.unblock(review_id, "again", operator="ops")
            assert refused.value.code == "review_not_blocked" and refused.value.message_zh
        assert (await reviews.get(open_one)).state == "open"
        with pytest.raises(ReviewNotFoundError):
            await reviews.unblock(9999, "x", operator="ops")
        await reviews.resolve(open_one, "block", "stolen", operator="ops")
        with pytest.raises(ReviewReasonPersonalDataError):
            await reviews.unblock(open_one, f"number {NUMBER}", operator="ops")
        assert (await reviews.get(open_one)).state == "blocked"

    run(backend, None, body)


# --- the full loop, with faces ------------------------------------------------------------


def test_confirm_lets_the_confirmed_face_enroll_once(
    backend: Backend, enroll_pm: pluggy.PluginManager
) -> None:
    require_face_models()

    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        first = await service.enroll(await request_for(service, OBAMA))
        subject_key = bytes.fromhex(first.subject.subject_id)
        with pytest.raises(FaceMismatchError) as caught:
            await service.enroll(await request_for(service, BIDEN))
        assert caught.value.details["review_recorded"] is True
        (entry,) = (await reviews.list()).reviews
        assert (entry.against, entry.reason) == ("stored_template", "face_mismatch_on_reenrollment")
        assert entry.similarity is not None and entry.threshold is not None
        assert entry.similarity < entry.threshold and entry.masked_number == MASKED

        await reviews.resolve(entry.review_id, "confirm", REASON, operator="desk 3")
        accepted = await service.enroll(await request_for(service, BIDEN))
        assert accepted.outcome == "updated" and accepted.reference == "confirmed_review"
        assert accepted.subject.subject_id == first.subject.subject_id
        assert (await reviews.get(entry.review_id)).grant_state(dt.datetime.now(dt.UTC)) == "used"
        assert (await reviews.list()).open_count == 0
        assert len(await audit_rows(service.db, "review_confirmation_used")) == 1

        # The confirmed face is the enrolled one now: it renews by itself, and
        # the confirmation is spent.
        answer, capture = await renewal(service, BIDEN)
        renewed = await service.renew(first.subject.subject_id, answer, capture)
        assert renewed.match.is_match
        async with service.db.begin() as conn:
            row = (await conn.execute(sa.select(tables.enrollment_reviews))).one()
        assert row.capture_template is None
        assert row.subject_key == subject_key
        with pytest.raises(FaceMismatchError):
            await service.enroll(await request_for(service, OBAMA_OTHER_WAY))
        assert (await reviews.list()).open_count == 1

    run(backend, enroll_pm, body)


def test_a_confirmation_needs_the_confirmed_face_and_expires(
    backend: Backend, enroll_pm: pluggy.PluginManager, clock: Any
) -> None:
    require_face_models()

    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        checks = FaceChecks(service.pm)
        biden = checks.template(photo("biden_1.jpg"), checks.one_face(photo("biden_1.jpg"), "c")[0])
        obama = checks.template(photo("obama_3.jpg"), checks.one_face(photo("obama_3.jpg"), "c")[0])
        await service.enroll(await request_for(service, OBAMA))
        with pytest.raises(FaceMismatchError):
            await service.enroll(await request_for(service, BIDEN))
        (entry,) = (await reviews.list()).reviews
        await reviews.resolve(entry.review_id, "confirm", REASON, operator="desk 3")
        key = doc_key(service.secrets)
        now = dt.datetime.now(dt.UTC)
        # Another face than the one confirmed does not use the confirmation.
        assert (
            await use_confirmation(service.db, service.secrets, key, obama, checks.compare, now)
            is None
        )
        assert (await reviews.get(entry.review_id)).grant_state(now) == "unused"
        # Past its window, the confirmed face is refused again (a new entry).
        clock.shift(CONFIRM_GRANT_TTL + dt.timedelta(minutes=1))
        later = dt.datetime.now(dt.UTC)
        assert (
            await use_confirmation(service.db, service.secrets, key, biden, checks.compare, later)
            is None
        )
        with pytest.raises(FaceMismatchError):
            await service.enroll(await request_for(service, BIDEN))
        assert (await reviews.get(entry.review_id)).grant_state(later) == "expired"
        assert (await reviews.list()).open_count == 1
        # The face kept for the expired confirmation is erased by the purge.
        for erased in (1, 0):
            async with service.db.begin() as conn:
                assert await erase_unneeded_faces(conn, later) == erased

    run(backend, enroll_pm, body)


def test_a_confirmed_renewal_keeps_the_confirmed_face(
    backend: Backend, enroll_pm: pluggy.PluginManager
) -> None:
    require_face_models()

    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        subject_id = (await service.enroll(await request_for(service, OBAMA))).subject.subject_id
        answer, capture = await renewal(service, BIDEN)
        with pytest.raises(FaceMismatchError):
            await service.renew(subject_id, answer, capture)
        (entry,) = (await reviews.list()).reviews
        assert (entry.reason, entry.against) == ("face_mismatch_on_renewal", "stored_template")
        await reviews.resolve(entry.review_id, "confirm", REASON, operator="desk 3")
        answer, capture = await renewal(service, BIDEN)
        assert (await service.renew(subject_id, answer, capture)).match.is_match
        # The confirmed face is the stored one now, once and for all.
        answer, capture = await renewal(service, BIDEN)
        assert (await service.renew(subject_id, answer, capture)).match.is_match
        answer, capture = await renewal(service, OBAMA)
        with pytest.raises(FaceMismatchError):
            await service.renew(subject_id, answer, capture)

    run(backend, enroll_pm, body)


def test_a_first_enrollment_refused_by_the_authority_photo_is_queued(
    backend: Backend, enroll_pm: pluggy.PluginManager
) -> None:
    require_face_models()

    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        with pytest.raises(FaceMismatchError) as caught:
            await service.enroll(await request_for(service, BIDEN))
        assert caught.value.details == {
            "against": "reference_photo",
            "similarity": caught.value.details["similarity"],
            "threshold": 0.4,
            "review_recorded": True,
        }
        (entry,) = (await reviews.list()).reviews
        assert (entry.against, entry.reason) == ("reference_photo", "face_mismatch_on_enrollment")
        assert (entry.kind, entry.masked_number) == ("cn_resident_id", MASKED)
        assert entry.as_dict()["against_en"] == "the authority's reference photo"
        await reviews.resolve(entry.review_id, "confirm", "photo on file is outdated", operator="o")
        created = await service.enroll(await request_for(service, BIDEN))
        assert created.outcome == "created" and created.reference == "confirmed_review"
        async with service.db.begin() as conn:
            row = (await conn.execute(sa.select(tables.subjects))).one()
        template = decrypt_template(
            service.secrets, row.encrypted_template, subject_key=bytes(row.subject_key)
        )
        checks = FaceChecks(service.pm)
        capture = photo(BIDEN.capture)
        assert checks.compare(
            template, checks.template(capture, checks.one_face(capture, "c")[0])
        ).is_match

    run(backend, enroll_pm, body)


def test_block_after_a_mismatch_refuses_the_holder_too(
    backend: Backend, enroll_pm: pluggy.PluginManager
) -> None:
    require_face_models()

    async def body(service: EnrollmentService, reviews: ReviewService) -> None:
        first = await service.enroll(await request_for(service, OBAMA))
        answer, capture = await renewal(service, BIDEN)
        with pytest.raises(FaceMismatchError):
            await service.renew(first.subject.subject_id, answer, capture)
        (entry,) = (await reviews.list()).reviews
        assert (entry.reason, entry.masked_number) == ("face_mismatch_on_renewal", MASKED)
        await reviews.resolve(entry.review_id, "block", "device used by another", operator="o")
        with pytest.raises(DocumentBlockedError):
            await service.enroll(await request_for(service, OBAMA))
        answer, capture = await renewal(service, OBAMA)
        with pytest.raises(DocumentBlockedError):
            await service.renew(first.subject.subject_id, answer, capture)

    run(backend, enroll_pm, body)


# --- the admin API ----------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return sqlite_instance(tmp_path)


@pytest.fixture
async def client(
    settings: Settings, enroll_pm: pluggy.PluginManager
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(create_app(settings, plugin_manager=enroll_pm)) as c:
        yield c


async def bearer(client: AsyncTestClient[Litestar], role: str = "admin") -> dict[str, str]:
    token = await create_token(client.app.state.services.db, role, f"test {role}")
    return {"authorization": f"Bearer {token}"}


@pytest.mark.anyio
async def test_api_lists_shows_and_resolves_entries(client: AsyncTestClient[Litestar]) -> None:
    services = client.app.state.services
    admin = await bearer(client)
    ids = await seed(services.enrollment, 3)

    assert (await client.get("/admin/reviews")).status_code == 401
    guard = await client.get("/admin/reviews", headers=await bearer(client, "guard"))
    assert (guard.status_code, guard.json()["code"]) == (403, "forbidden")

    page = (await client.get("/admin/reviews?limit=2", headers=admin)).json()
    assert [r["review_id"] for r in page["reviews"]] == ids[:2]
    assert page["next_cursor"] == ids[1] and page["open_count"] == 3
    entry = page["reviews"][0]
    assert entry["masked_number"] == MASKED and entry["against"] == "stored_template"
    assert entry["created_at"].endswith("+08:00")
    rest = await client.get(f"/admin/reviews?limit=2&cursor={ids[1]}", headers=admin)
    assert [r["review_id"] for r in rest.json()["reviews"]] == ids[2:]

    one = await client.get(f"/admin/reviews/{ids[0]}", headers=admin)
    assert one.status_code == 200 and one.json() == entry

    resolved = await client.post(
        f"/admin/reviews/{ids[0]}/resolution",
        json={"decision": "block", "reason": "stolen document"},
        headers=admin,
    )
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["state"] == "blocked" and body["documents_blocked"] == 1
    assert body["resolved_by"].startswith("token:")
    again = await client.post(
        f"/admin/reviews/{ids[0]}/resolution",
        json={"decision": "confirm", "reason": "changed my mind"},
        headers=admin,
    )
    assert (again.status_code, again.json()["code"]) == (409, "review_already_resolved")
    assert again.json()["details"]["resolution"] == "block"
    assert again.json()["message_zh"]

    resolved_page = await client.get("/admin/reviews?state=resolved", headers=admin)
    assert [r["review_id"] for r in resolved_page.json()["reviews"]] == [ids[0]]
    assert NUMBER not in resolved_page.text

    unblocked = await client.post(
        f"/admin/reviews/{ids[0]}/unblock", json={"reason": "found again"}, headers=admin
    )
    assert unblocked.status_code == 200, unblocked.text
    assert (unblocked.json()["state"], unblocked.json()["documents_blocked"]) == ("unblocked", 0)
    twice = await client.post(
        f"/admin/reviews/{ids[0]}/unblock", json={"reason": "found again"}, headers=admin
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "review_not_blocked")
    assert twice.json()["details"]["resolution"] == "unblock"


@pytest.mark.anyio
async def test_api_refusals_are_coded_problems(client: AsyncTestClient[Litestar]) -> None:
    admin = await bearer(client)
    (review_id,) = await seed(client.app.state.services.enrollment)
    cases = [
        ("GET", "/admin/reviews/9999", None, 404, "review_not_found"),
        ("POST", "/admin/reviews/9999/resolution", {"decision": "block", "reason": "x"}, 404,
         "review_not_found"),
        ("GET", "/admin/reviews?state=pending", None, 422, "review_input_invalid"),
        ("GET", "/admin/reviews?limit=1000", None, 422, "review_input_invalid"),
        ("GET", "/admin/reviews?limit=many", None, 400, "invalid_request"),
        ("POST", f"/admin/reviews/{review_id}/resolution", {"decision": "approve", "reason": "x"},
         400, "invalid_request"),
        ("POST", f"/admin/reviews/{review_id}/resolution",
         {"decision": "block", "reason": "x", "extra": 1}, 400, "invalid_request"),
        ("POST", f"/admin/reviews/{review_id}/resolution", {"decision": "block", "reason": ""},
         422, "review_input_invalid"),
        ("POST", f"/admin/reviews/{review_id}/resolution",
         {"decision": "block", "reason": f"number {NUMBER}"}, 422, "review_reason_personal_data"),
        ("POST", "/admin/reviews/9999/unblock", {"reason": "x"}, 404, "review_not_found"),
        ("POST", f"/admin/reviews/{review_id}/unblock", {"reason": "x"}, 409,
         "review_not_blocked"),
        ("POST", f"/admin/reviews/{review_id}/unblock", {}, 400, "invalid_request"),
    ]  # fmt: skip
    for method, path, payload, status, code in cases:
        response = await client.request(method, path, json=payload, headers=admin)
        assert (response.status_code, response.json()["code"]) == (status, code), path
        assert response.headers["content-type"].startswith("application/problem+json")
    still = await client.get(f"/admin/reviews/{review_id}", headers=admin)
    assert still.json()["state"] == "open"


def _jpeg(name: str, mirrored: bool = False) -> bytes:
    import io

    from PIL import Image as PILImage
    from PIL import ImageOps

    picture = PILImage.open(FACES / name).convert("RGB")
    if mirrored:
        picture = ImageOps.mirror(picture)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=95)
    return out.getvalue()


async def _enroll_over_http(
    client: AsyncTestClient[Litestar], person: Person, frames: list[tuple[str, bool]]
) -> Any:
    challenge = await client.app.state.services.enrollment.issue_challenge(actions=person.actions)
    files = [
        ("frames", (f"f{i}.jpg", _jpeg(name, mirrored), "image/jpeg"))
        for i, (name, mirrored) in enumerate(frames)
    ]
    files.append(("capture", ("c.jpg", _jpeg(person.capture), "image/jpeg")))
    return await client.post(
        "/enrollments",
        data={
            "challenge_nonce": challenge.nonce,
            "declared_name": NAME,
            "device_public_key": device_key().decode(),
            "number": NUMBER,
        },
        files=files,
    )


@pytest.mark.anyio
async def test_api_full_loop_mismatch_review_confirm_next_attempt(
    client: AsyncTestClient[Litestar],
) -> None:
    require_face_models()
    admin = await bearer(client)
    enrolled = await _enroll_over_http(client, OBAMA, list(OBAMA.frames))
    assert enrolled.status_code == 201, enrolled.text
    refused = await _enroll_over_http(client, BIDEN, list(BIDEN.frames))
    assert (refused.status_code, refused.json()["code"]) == (403, "face_mismatch")
    assert refused.json()["details"]["review_recorded"] is True

    (entry,) = (await client.get("/admin/reviews", headers=admin)).json()["reviews"]
    assert entry["against"] == "stored_template" and entry["masked_number"] == MASKED
    confirmed = await client.post(
        f"/admin/reviews/{entry['review_id']}/resolution",
        json={"decision": "confirm", "reason": REASON},
        headers=admin,
    )
    assert confirmed.json()["grant"] == "unused"
    accepted = await _enroll_over_http(client, BIDEN, list(BIDEN.frames))
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["reference"] == "confirmed_review"
    assert accepted.json()["subject"]["subject_id"] == enrolled.json()["subject"]["subject_id"]
    spent = await client.get(f"/admin/reviews/{entry['review_id']}", headers=admin)
    assert spent.json()["grant"] == "used"


# --- the CLI ----------------------------------------------------------------------------


def invoke(backend: Backend, *args: str) -> Any:
    result = CliRunner().invoke(
        cli,
        [
            "reviews",
            *args,
            "--database",
            backend.url,
            "--secrets-file",
            str(backend.secrets_file),
        ],
    )
    return result


def test_cli_lists_shows_and_resolves(backend: Backend) -> None:
    ids = run(backend, None, lambda service, _reviews: seed(service, 2))

    listed = invoke(backend, "list", "--json")
    assert listed.exit_code == 0, listed.output
    payload = json.loads(listed.stdout)
    assert [r["review_id"] for r in payload["reviews"]] == ids
    assert payload["open_count"] == 2

    table = invoke(backend, "list")
    assert table.exit_code == 0
    assert MASKED in table.stdout and "2026-11-26 10:00" in table.stdout
    assert "+08:00" in table.stdout
    assert "stored_template" in table.stdout and NUMBER not in table.stdout

    shown = invoke(backend, "show", str(ids[0]))
    assert shown.exit_code == 0
    assert "此前登记的人脸" in shown.stdout and "0.123 < 0.40" in shown.stdout

    done = invoke(
        backend, "resolve", str(ids[0]), "confirm", "--reason", REASON, "--operator", "desk 3"
    )
    assert done.exit_code == 0, done.output
    assert "confirmed" in done.stdout and "+08:00" in done.stdout
    blocked = invoke(backend, "resolve", str(ids[1]), "block", "--reason", "stolen", "--json")
    assert json.loads(blocked.stdout)["documents_blocked"] == 1

    again = invoke(backend, "resolve", str(ids[0]), "block", "--reason", "again", "--json")
    assert again.exit_code == 1
    assert json.loads(again.stdout)["error"]["code"] == "review_already_resolved"
    assert "error [review_already_resolved]" in again.stderr and "错误" in again.stderr
    missing = invoke(backend, "show", "9999")
    assert missing.exit_code == 1 and "review_not_found" in missing.stderr
    bad = invoke(backend, "resolve", str(ids[0]), "approve", "--reason", "x")
    assert bad.exit_code == 1 and "review_input_invalid" in bad.stderr
    assert "Traceback" not in bad.output

    resolved = json.loads(invoke(backend, "list", "--state", "resolved", "--json").stdout)
    assert [(r["review_id"], r["state"]) for r in resolved["reviews"]] == [
        (ids[0], "confirmed"),
        (ids[1], "blocked"),
    ]
    assert resolved["reviews"][0]["resolved_by"] == "desk 3"

    lifted = invoke(backend, "unblock", str(ids[1]), "--reason", "found again")
    assert lifted.exit_code == 0, lifted.output
    assert "unblocked" in lifted.stdout and "已解除停用" in lifted.stdout
    not_blocked = invoke(backend, "unblock", str(ids[0]), "--reason", "x", "--json")
    assert not_blocked.exit_code == 1
    assert json.loads(not_blocked.stdout)["error"]["code"] == "review_not_blocked"


def test_cli_full_loop_mismatch_review_block_next_attempt(
    backend: Backend, enroll_pm: pluggy.PluginManager
) -> None:
    require_face_models()

    async def mismatch(service: EnrollmentService, _reviews: ReviewService) -> None:
        await service.enroll(await request_for(service, OBAMA))
        with pytest.raises(FaceMismatchError):
            await service.enroll(await request_for(service, BIDEN))

    run(backend, enroll_pm, mismatch)
    (entry,) = json.loads(invoke(backend, "list", "--json").stdout)["reviews"]
    assert entry["masked_number"] == MASKED and entry["against"] == "stored_template"
    blocked = invoke(backend, "resolve", str(entry["review_id"]), "block", "--reason", "stolen")
    assert blocked.exit_code == 0, blocked.output

    async def next_attempt(service: EnrollmentService, _reviews: ReviewService) -> None:
        with pytest.raises(DocumentBlockedError):
            await service.enroll(await request_for(service, OBAMA))

    run(backend, enroll_pm, next_attempt)
