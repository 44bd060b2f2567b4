"""Enrollment, re-enrollment, renewed passports, face-only renewal, dependants
and the assisted quick check, on SQLite and PostgreSQL, with real photos and
the real face plugin.

Liveness from photos: tests/data has no video, so a challenge is answered
with real photos that show what they can: obama_1 is neutral, obama_2 is the
same person turned to his right with the mouth open (``turn_right`` and
``open_mouth`` at once), its mirror image turned to his left; biden_2 is
neutral and the mirror of biden_1 is turned to his right (12.7 degrees, just
past the 12-degree threshold). The service lets tests fix a challenge's
actions (``issue_challenge(actions=...)``) so that a photo sequence can answer
it. This proves the wiring (stored challenges, single use, the hook's verdict,
capture binding, template matches), not that the judge resists a replayed
video or a mask: that needs video data and is the face plugin's business.

The authority's reference photo (``healthcode_reference_face``) comes from a
small test plugin that returns a real photo for the document numbers it was
given: an integration stand-in, as an authority plugin would be.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import attrs
import pluggy
import pytest
import sqlalchemy as sa
from support.backends import Backend
from support.data import FACES
from support.documents import device_key, passport_mrz, resident_id
from support.faces import (
    BIDEN,
    OBAMA,
    OBAMA_OTHER_WAY,
    AuthorityPhotos,
    Person,
    photo,
    require_face_models,
)

import healthcode.plugins.authority_status as authority_status
from healthcode.core.clock import SHANGHAI, today_shanghai
from healthcode.core.documents import make_submission
from healthcode.core.enrollment import (
    EnrollmentRequest,
    EnrollmentService,
    LivenessAnswer,
    OperatorRateLimiter,
    age_on,
    names_agree,
    normalise_device_key,
)
from healthcode.core.enrollment.errors import (
    AgeUnknownError,
    AssistNotEligibleError,
    CaptureNotFromLivenessError,
    ChallengeExpiredError,
    ChallengeUnknownError,
    ChallengeUsedError,
    DependantExistsError,
    DependantIsHolderError,
    DependantLimitError,
    DeviceKeyInvalidError,
    DocumentExpiredError,
    DocumentNotAcceptedError,
    FaceMismatchError,
    LivenessFailedError,
    NameMismatchError,
    NameRequiredError,
    RateLimitedError,
    ReferenceFaceUnavailableError,
    SpecimenDocumentError,
    SubjectNotFoundError,
)
from healthcode.core.hookspecs import hookimpl
from healthcode.core.images import image_from_array, read_image_file
from healthcode.core.models import Colour, Document, DocumentSubmission, Image
from healthcode.core.plugins import new_plugin_manager
from healthcode.core.privacy import decrypt_template, subject_key_bytes
from healthcode.core.status import import_status_rows
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, open_database
from healthcode.core.storage.testing import (
    dump_tables,
)

# --- real photos and the authority stand-in ------------------------------------------------


@pytest.fixture
def authority() -> AuthorityPhotos:
    return AuthorityPhotos()


@pytest.fixture
def enroll_pm(authority: AuthorityPhotos) -> pluggy.PluginManager:
    pm = new_plugin_manager(autoload=False)
    if not pm.is_registered(authority_status):
        pm.register(authority_status, name="authority_status")
    pm.register(authority, name="test_authority_photos")
    return pm


# --- documents ------------------------------------------------------------------------------


def submission(**kwargs: Any) -> DocumentSubmission:
    sub, _ = make_submission(**kwargs)
    return sub


# --- running the service ------------------------------------------------------------------


def run(backend: Backend, pm: pluggy.PluginManager, body: Any, *, limiter: Any = None) -> Any:
    """Open the database, build the service and run ``body(service)``."""

    async def go() -> Any:
        db, secrets = await open_database(backend.url, backend.secrets_file)
        try:
            service = EnrollmentService(db, secrets, pm, assist_limiter=limiter)
            return await body(service)
        finally:
            await db.dispose()

    return asyncio.run(go())


async def answer(
    service: EnrollmentService, person: Person, purpose: str = "enroll"
) -> LivenessAnswer:
    challenge = await service.issue_challenge(purpose=purpose, actions=person.actions)  # type: ignore[arg-type]
    return LivenessAnswer(nonce=challenge.nonce, frames=person.frame_images())


async def request_for(
    service: EnrollmentService,
    person: Person,
    sub: DocumentSubmission,
    name: str,
    *,
    purpose: str = "enroll",
    previous: DocumentSubmission | None = None,
    capture: str | None = None,
) -> EnrollmentRequest:
    return EnrollmentRequest(
        submission=sub,
        declared_name=name,
        liveness=await answer(service, person, purpose),
        capture=photo(capture or person.capture),
        device_public_key=device_key(),
        previous=previous,
    )


async def count(db: Database, table: sa.Table) -> int:
    async with db.begin() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


# --- names (pure) ------------------------------------------------------------------------------


def _mrz_document(surname: str, given: str | None, *, truncated: bool = False) -> Document:
    from healthcode.core.models import Problem

    problems = (Problem("name_truncated", "t", "t", "warning"),) if truncated else ()
    return Document(
        kind="passport", number="X1", surname=surname, given_names=given, problems=problems
    )


@pytest.mark.parametrize(
    "typed",
    [
        "QUARTERMAINE ALLAN JAMES",
        "Allan James Quartermaine",
        "quartermaine, allan james",
        "Allan-James QUARTERMAINE",
        "QUARTERMAINE<<ALLAN<JAMES",
    ],
)
def test_typed_latin_names_that_agree(typed: str) -> None:
    assert names_agree(typed, _mrz_document("QUARTERMAINE", "ALLAN JAMES")) is True


@pytest.mark.parametrize(
    "typed", ["QUARTERMAINE ALLAN", "SMITH ALLAN JAMES", "张三", "QUARTERMAINE ALLAN JAMES X"]
)
def test_typed_names_that_do_not_agree(typed: str) -> None:
    assert names_agree(typed, _mrz_document("QUARTERMAINE", "ALLAN JAMES")) is False


def test_name_rules_for_accents_truncation_and_chinese() -> None:
    assert names_agree("Jürgen Müller", _mrz_document("MUELLER", "JUERGEN")) is True
    assert names_agree("José Núñez", _mrz_document("NUNEZ", "JOSE")) is True
    long_name = _mrz_document("WOLFESCHLEGELSTEINHAUSEN", "HUBERT B", truncated=True)
    assert names_agree("Wolfeschlegelsteinhausen Hubert Blaine", long_name) is True
    assert names_agree("Wolfeschlegelsteinhausen Hubert", long_name) is False
    chinese = Document(kind="cn_resident_id", number="X", name_zh="欧阳修文")
    assert names_agree("欧阳 修文", chinese) is True
    assert names_agree("欧阳修", chinese) is False
    # A typed number carries no name: nothing to compare (a warning, not a refusal).
    assert names_agree("张三", Document(kind="cn_resident_id", number="X")) is None


def test_age_and_rate_limiter() -> None:
    assert age_on(dt.date(2010, 11, 27), dt.date(2026, 11, 26)) == 15
    assert age_on(dt.date(2010, 11, 26), dt.date(2026, 11, 26)) == 16
    clock = [0.0]
    limiter = OperatorRateLimiter(capacity=2, per_seconds=10, clock=lambda: clock[0])
    limiter.take("desk-1")
    limiter.take("desk-1")
    with pytest.raises(RateLimitedError) as caught:
        limiter.take("desk-1")
    assert caught.value.details["retry_after_s"] == 5.0
    limiter.take("desk-2")  # per operator
    clock[0] = 5.0
    limiter.take("desk-1")


def test_device_keys() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    der = normalise_device_key(device_key())
    assert serialization.load_der_public_key(der)
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = ed.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert normalise_device_key(raw) == raw
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(DeviceKeyInvalidError):
        normalise_device_key(
            p384.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    with pytest.raises(DeviceKeyInvalidError):
        normalise_device_key(b"not a key")


# --- refusals before any face work ----------------------------------------------------------


def test_bad_documents_are_refused_with_their_reason(
    backend: Backend, enroll_pm: pluggy.PluginManager
) -> None:
    async def body(service: EnrollmentService) -> None:
        async def refused(sub: DocumentSubmission, name: str) -> Exception:
            request = EnrollmentRequest(
                submission=sub,
                declared_name=name,
                liveness=LivenessAnswer("unused-nonce", []),
                capture=photo("obama_1.jpg"),
            )
            with pytest.raises(Exception) as caught:
                await service.enroll(request)
            return caught.value

        expired = await refused(
            submission(mrz=passport_mrz("K1234567", expiry=dt.date(2020, 1, 1))),
            "QUARTERMAINE ALLAN JAMES",
        )
        assert isinstance(expired, DocumentExpiredError)
        assert expired.code == "document_expired"
        specimen = await refused(
            submission(mrz=passport_mrz("K1234567", state="UTO")), "QUARTERMAINE ALLAN JAMES"
        )
        assert isinstance(specimen, SpecimenDocumentError)
        assert specimen.code == "specimen_document"
        mismatch = await refused(submission(mrz=passport_mrz("K1234567")), "SMITH JOHN")
        assert isinstance(mismatch, NameMismatchError) and mismatch.code == "name_mismatch"
        nameless = await refused(submission(mrz=passport_mrz("K1234567")), "  ")
        assert isinstance(nameless, NameRequiredError)
        bad = resident_id(dt.date(1980, 5, 1))
        broken = await refused(
            submission(kind="cn_resident_id", number=bad[:-1] + ("0" if bad[-1] != "0" else "1")),
            "张三",
        )
        assert isinstance(broken, DocumentNotAcceptedError)
        assert broken.details["problems"] == ["check_digit_mismatch"]
        assert await count(service.db, tables.subjects) == 0

    run(backend, enroll_pm, body)


# --- enrollment ---------------------------------------------------------------------------


def test_enroll_with_a_typed_number_and_the_authority_photo(
    backend: Backend, enroll_pm: pluggy.PluginManager, authority: AuthorityPhotos
) -> None:
    require_face_models()
    number = resident_id(dt.date(1985, 7, 9))
    authority.photos[number] = OBAMA.reference

    async def body(service: EnrollmentService) -> None:
        sub = submission(kind="cn_resident_id", number=number)
        result = await service.enroll(await request_for(service, OBAMA, sub, "欧阳修文"))
        assert result.outcome == "created"
        assert result.reference == "reference_photo" and result.match.is_match
        assert result.subject.masked.masked_name == "欧阳"
        assert result.subject.masked.masked_number == number[:2] + "*" * 14 + number[-2:]
        assert result.status.colour is Colour.GREEN
        assert [w.code for w in result.warnings] == ["name_not_verified"]
        assert result.timings["faces"] > 0 and result.timings["total"] >= result.timings["faces"]
        key = subject_key_bytes(result.subject.subject_id)
        async with service.db.begin() as conn:
            row = (await conn.execute(sa.select(tables.subjects))).one()
        template = decrypt_template(service.secrets, row.encrypted_template, subject_key=key)
        assert template.startswith(b"HCF1")
        assert row.device_public_key == result.device_public_key
        assert row.device_public_key.startswith(b"0")  # DER, not PEM

        # Again with the same document and the same face: updated, never duplicated.
        again = await service.enroll(await request_for(service, OBAMA_OTHER_WAY, sub, "欧阳修文"))
        assert again.outcome == "updated" and again.reference == "stored_template"
        assert again.subject.subject_id == result.subject.subject_id
        assert await count(service.db, tables.subjects) == 1
        assert await count(service.db, tables.subject_documents) == 1

        # Someone else presenting this document: refused and recorded for review,
        # and the stored subject is left as it was.
        async with service.db.begin() as conn:
            before = (await conn.execute(sa.select(tables.subjects))).one()
        with pytest.raises(FaceMismatchError) as caught:
            await service.enroll(await request_for(service, BIDEN, sub, "欧阳修文"))
        assert caught.value.details["against"] == "stored_template"
        assert caught.value.details["review_recorded"] is True
        async with service.db.begin() as conn:
            reviews = (await conn.execute(sa.select(tables.enrollment_reviews))).all()
            after = (await conn.execute(sa.select(tables.subjects))).one()
        assert len(reviews) == 1
        assert reviews[0].subject_key == key
        assert reviews[0].reason == "face_mismatch_on_reenrollment"
        assert reviews[0].similarity < reviews[0].threshold
        assert after == before

    run(backend, enroll_pm, body)


class _FreshReference:
    """The authority's reference photo, decoded anew for each request."""

    @hookimpl
    def healthcode_reference_face(self, document: Document) -> Image | None:
        return read_image_file(FACES / "obama_2.jpg")


def _captured_at_240_lines(name: str) -> Image:
    """A phone capture that lost detail: the photo at 240 lines, scaled back up."""
    import cv2

    pixels = photo(name).pixels
    height, width = pixels.shape[:2]
    small = cv2.resize(pixels, (width * 240 // height, 240), interpolation=cv2.INTER_AREA)
    return image_from_array(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR))


def test_a_soft_capture_enrolls_with_a_warning(
    backend: Backend, enroll_pm: pluggy.PluginManager, authority: AuthorityPhotos
) -> None:
    """Less sharp than a studio photo but sharp enough to match: enrolled, and
    the person is told (image_soft), instead of "hold the camera still" again."""
    require_face_models()
    number = resident_id(dt.date(1985, 7, 9))
    authority.photos[number] = OBAMA.reference

    async def body(service: EnrollmentService) -> None:
        sub = submission(kind="cn_resident_id", number=number)
        request = attrs.evolve(
            await request_for(service, OBAMA, sub, "欧阳修文"),
            capture=_captured_at_240_lines(OBAMA.capture),
        )
        result = await service.enroll(request)
        assert result.outcome == "created" and result.match.is_match
        soft = [w for w in result.warnings if w.code == "image_soft"]
        assert len(soft) == 1 and soft[0].severity == "warning" and soft[0].message_zh
        # The same capture renews, and the person is told the same.
        renewed = await service.renew(
            result.subject.subject_id,
            await answer(service, OBAMA, "renew"),
            _captured_at_240_lines(OBAMA.capture),
        )
        assert [w.code for w in renewed.warnings] == ["image_soft"]
        sharp = await service.renew(
            result.subject.subject_id, await answer(service, OBAMA, "renew"), photo(OBAMA.capture)
        )
        assert sharp.warnings == ()
        # A dependant filmed as softly is added, with the warning.
        child = resident_id(dt.date(2016, 3, 1), sequence=310)
        authority.photos[child] = OBAMA.reference
        dependant = attrs.evolve(
            await request_for(
                service,
                OBAMA,
                submission(kind="cn_resident_id", number=child),
                "欧阳小文",
                purpose="dependant",
            ),
            capture=_captured_at_240_lines(OBAMA.capture),
        )
        added = await service.add_dependant(result.subject.subject_id, dependant)
        assert "image_soft" in [w.code for w in added.warnings]
        listed = await service.list_dependants(result.subject.subject_id)
        assert [v.warnings for v in listed] == [()]

    run(backend, enroll_pm, body)


def test_an_enrollment_finds_each_face_once_and_embeds_it_once(backend: Backend) -> None:
    """Issue 17: landmarks once per image and an embedding only where a
    comparison needs one: three frames, the capture and the reference are five
    images, so five detections and five embeddings; the binding of the capture
    to the first frame reuses that frame's."""
    require_face_models()
    from healthcode.plugins.face.memo import memo

    pm = new_plugin_manager(autoload=False)
    if not pm.is_registered(authority_status):
        pm.register(authority_status, name="authority_status")
    pm.register(_FreshReference(), name="fresh_reference")
    frames = [
        read_image_file(FACES / name) for name in ("obama_1.jpg", "obama_2.jpg", "obama_1.jpg")
    ]

    async def body(service: EnrollmentService) -> None:
        challenge = await service.issue_challenge(actions=OBAMA.actions)  # type: ignore[arg-type]
        request = EnrollmentRequest(
            submission=submission(kind="cn_resident_id", number=resident_id(dt.date(1979, 3, 4))),
            declared_name="王五",
            liveness=LivenessAnswer(nonce=challenge.nonce, frames=frames),
            capture=read_image_file(FACES / "obama_3.jpg"),
            device_public_key=device_key(),
        )
        before = (memo.misses, memo.hits, memo.embedding_misses, memo.embedding_hits)
        result = await service.enroll(request)
        assert result.outcome == "created" and result.match.is_match
        after = (memo.misses, memo.hits, memo.embedding_misses, memo.embedding_hits)
        detections, reused, embeddings, embeddings_reused = (
            b - a for a, b in zip(before, after, strict=True)
        )
        assert (detections, embeddings) == (5, 5)
        assert reused >= 1 and embeddings_reused == 1

    run(backend, pm, body)


def test_renewed_passport_is_linked_by_a_face_verified_reenrollment(
    backend: Backend, enroll_pm: pluggy.PluginManager, authority: AuthorityPhotos
) -> None:
    require_face_models()
    old, new = passport_mrz("K1234567"), passport_mrz("L7654321")
    authority.photos.update({"K1234567": OBAMA.reference, "L7654321": OBAMA.reference})
    name = "Allan James Quartermaine"

    async def body(service: EnrollmentService) -> None:
        first = await service.enroll(await request_for(service, OBAMA, submission(mrz=old), name))
        assert first.subject.masked.masked_name == "QUARTERMAINE"
        # Another person cannot attach a new passport to this subject.
        with pytest.raises(FaceMismatchError):
            await service.enroll(
                await request_for(
                    service, BIDEN, submission(mrz=new), name, previous=submission(mrz=old)
                )
            )
        linked = await service.enroll(
            await request_for(
                service, OBAMA_OTHER_WAY, submission(mrz=new), name, previous=submission(mrz=old)
            )
        )
        assert linked.outcome == "linked"
        assert linked.subject.subject_id == first.subject.subject_id
        assert linked.subject.masked.masked_number == "L7****21"
        assert await count(service.db, tables.subjects) == 1
        assert await count(service.db, tables.subject_documents) == 2
        # The authority lists the new number: the subject's status follows.
        await import_status_rows(
            service.db,
            service.secrets,
            ["kind,number,status,issuing_state\n", "passport,L7654321,red,GBR\n"],
            day=today_shanghai(),
            fmt="csv",
            pm=service.pm,
        )
        renewed = await service.renew(
            first.subject.subject_id, await answer(service, OBAMA, "renew"), photo("obama_3.jpg")
        )
        assert renewed.status.colour is Colour.RED
        # Enrolling the new passport alone later finds the same subject.
        again = await service.enroll(await request_for(service, OBAMA, submission(mrz=new), name))
        assert again.outcome == "updated"
        assert again.subject.subject_id == first.subject.subject_id

    run(backend, enroll_pm, body)


def test_liveness_answers_count_once_and_must_be_right(
    backend: Backend, enroll_pm: pluggy.PluginManager, authority: AuthorityPhotos
) -> None:
    require_face_models()
    number = resident_id(dt.date(1990, 1, 2))
    authority.photos[number] = OBAMA.reference
    sub = submission(kind="cn_resident_id", number=number)

    async def body(service: EnrollmentService) -> None:
        # The frames answer turn_right + open_mouth, not turn_left + open_mouth.
        challenge = await service.issue_challenge(actions=("turn_left", "open_mouth"))
        wrong = EnrollmentRequest(
            sub, "张三", LivenessAnswer(challenge.nonce, OBAMA.frame_images()), photo("obama_3.jpg")
        )
        with pytest.raises(LivenessFailedError) as caught:
            await service.enroll(wrong)
        assert "missing_action:turn_left" in caught.value.details["reasons"]
        # The challenge was used up by that answer.
        with pytest.raises(ChallengeUsedError):
            await service.enroll(wrong)
        with pytest.raises(ChallengeUnknownError):
            await service.enroll(
                EnrollmentRequest(
                    sub, "张三", LivenessAnswer("made-up-nonce", []), photo("obama_3.jpg")
                )
            )
        renew_challenge = await service.issue_challenge(purpose="renew", actions=OBAMA.actions)
        with pytest.raises(ChallengeUnknownError) as purpose:
            await service.enroll(
                EnrollmentRequest(
                    sub,
                    "张三",
                    LivenessAnswer(renew_challenge.nonce, OBAMA.frame_images()),
                    photo("obama_3.jpg"),
                )
            )
        assert purpose.value.details["reason"] == "wrong_purpose"
        stale = await service.issue_challenge(
            actions=OBAMA.actions, now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        )
        with pytest.raises(ChallengeExpiredError):
            await service.enroll(
                EnrollmentRequest(
                    sub,
                    "张三",
                    LivenessAnswer(stale.nonce, OBAMA.frame_images()),
                    photo("obama_3.jpg"),
                )
            )
        # Frames of one person, still photo of another.
        with pytest.raises(CaptureNotFromLivenessError):
            await service.enroll(
                await request_for(service, OBAMA, sub, "张三", capture="biden_1.jpg")
            )
        # No authority photo for this number: no reference to match.
        other = submission(kind="cn_resident_id", number=resident_id(dt.date(1990, 1, 3)))
        with pytest.raises(ReferenceFaceUnavailableError):
            await service.enroll(await request_for(service, OBAMA, other, "张三"))
        assert await count(service.db, tables.subjects) == 0
        # Five challenges were issued; kept an hour past expiry, then purged.
        assert await service.purge_challenges() == 0
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
        assert await service.purge_challenges(now=later) == 5

    run(backend, enroll_pm, body)


# --- face-only renewal ------------------------------------------------------------------------


def test_face_only_renewal(
    backend: Backend, enroll_pm: pluggy.PluginManager, authority: AuthorityPhotos
) -> None:
    require_face_models()
    number = resident_id(dt.date(1975, 12, 1))
    authority.photos[number] = OBAMA.reference

    async def body(service: EnrollmentService) -> None:
        enrolled = await service.enroll(
            await request_for(
                service, OBAMA, submission(kind="cn_resident_id", number=number), "王五"
            )
        )
        subject_id = enrolled.subject.subject_id
        renewed = await service.renew(
            subject_id, await answer(service, OBAMA_OTHER_WAY, "renew"), photo("obama_1.jpg")
        )
        assert renewed.match.is_match and renewed.status.colour is Colour.GREEN
        tomorrow = dt.datetime.combine(today_shanghai(), dt.time(0), SHANGHAI) + dt.timedelta(
            days=1
        )
        assert renewed.status.valid_until == tomorrow
        with pytest.raises(FaceMismatchError) as caught:
            await service.renew(
                subject_id, await answer(service, BIDEN, "renew"), photo("biden_1.jpg")
            )
        assert caught.value.details["review_recorded"] is True
        assert await count(service.db, tables.enrollment_reviews) == 1
        with pytest.raises(SubjectNotFoundError):
            await service.renew(
                "ab" * 32, await answer(service, OBAMA, "renew"), photo("obama_1.jpg")
            )
        with pytest.raises(SubjectNotFoundError):
            await service.renew(
                "nonsense", await answer(service, OBAMA, "renew"), photo("obama_1.jpg")
            )

    run(backend, enroll_pm, body)


# --- dependants (他人代查) ----------------------------------------------------------------------


def test_dependants_up_to_four_with_their_statuses(
    backend: Backend, enroll_pm: pluggy.PluginManager, authority: AuthorityPhotos
) -> None:
    require_face_models()
    holder_number = resident_id(dt.date(1980, 2, 2))
    authority.photos[holder_number] = OBAMA.reference
    children = [resident_id(dt.date(2015, 6, 1 + i), sequence=200 + i) for i in range(6)]
    for child in children:
        authority.photos[child] = BIDEN.reference

    async def body(service: EnrollmentService) -> None:
        holder = await service.enroll(
            await request_for(
                service, OBAMA, submission(kind="cn_resident_id", number=holder_number), "李四"
            )
        )
        holder_id = holder.subject.subject_id

        async def add(number: str, person: Person = BIDEN) -> Any:
            sub = submission(kind="cn_resident_id", number=number)
            return await service.add_dependant(
                holder_id, await request_for(service, person, sub, "李小龙", purpose="dependant")
            )

        views = [await add(children[i]) for i in range(3)]
        assert [v.slot for v in views] == [1, 2, 3]
        assert views[0].masked.masked_name == "李"
        with pytest.raises(DependantExistsError):
            await add(children[0])
        with pytest.raises(DependantIsHolderError):
            await add(holder_number, OBAMA)
        # Two adds at once for the last place: the database's constraints decide.
        results = await asyncio.gather(add(children[3]), add(children[4]), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["DependantLimitError", "DependantView"]
        limit = next(r for r in results if isinstance(r, DependantLimitError))
        assert limit.code == "dependant_limit_reached"
        with pytest.raises(DependantLimitError):
            await add(children[5])
        # A dependant's face is checked once, against their own reference.
        assert await count(service.db, tables.dependants) == 4

        await import_status_rows(
            service.db,
            service.secrets,
            ["kind,number,status\n", f"cn_resident_id,{children[1]},yellow\n"],
            day=today_shanghai(),
            fmt="csv",
            pm=service.pm,
        )
        listed = await service.list_dependants(holder_id)
        assert [v.slot for v in listed] == [1, 2, 3, 4]
        colours = {v.slot: v.status.colour for v in listed}
        assert colours[2] is Colour.YELLOW
        assert [c for s, c in colours.items() if s != 2] == [Colour.GREEN] * 3
        async with service.db.begin() as conn:
            kept = (
                await conn.execute(
                    sa.select(tables.subjects.c.encrypted_template).where(
                        tables.subjects.c.subject_key == subject_key_bytes(listed[0].subject_id)
                    )
                )
            ).scalar_one()
        assert kept is None  # the one-time check keeps no template

    run(backend, enroll_pm, body)


def test_a_dependant_face_that_does_not_match_is_refused(
    backend: Backend, enroll_pm: pluggy.PluginManager, authority: AuthorityPhotos
) -> None:
    require_face_models()
    holder_number, child = resident_id(dt.date(1980, 2, 3)), resident_id(dt.date(2016, 1, 1))
    authority.photos.update({holder_number: OBAMA.reference, child: BIDEN.reference})

    async def body(service: EnrollmentService) -> None:
        holder = await service.enroll(
            await request_for(
                service, OBAMA, submission(kind="cn_resident_id", number=holder_number), "李四"
            )
        )
        sub = submission(kind="cn_resident_id", number=child)
        # The holder answering for the child with their own face.
        with pytest.raises(FaceMismatchError) as caught:
            await service.add_dependant(
                holder.subject.subject_id,
                await request_for(service, OBAMA, sub, "李小龙", purpose="dependant"),
            )
        assert caught.value.details["against"] == "reference_photo"
        assert await count(service.db, tables.dependants) == 0

    run(backend, enroll_pm, body)


# --- assisted quick check (老幼助查) --------------------------------------------------------------


def test_assisted_check_for_children_and_elders_stores_nothing(
    backend: Backend, enroll_pm: pluggy.PluginManager
) -> None:
    now = dt.datetime(2026, 11, 26, 10, tzinfo=SHANGHAI)
    child = resident_id(dt.date(2012, 1, 1))  # 14
    elder = resident_id(dt.date(1950, 1, 1))  # 76
    adult = resident_id(dt.date(1990, 1, 1))  # 36
    sixteen = resident_id(dt.date(2010, 11, 26))  # 16 today
    limiter = OperatorRateLimiter(capacity=6, per_seconds=3600)

    async def body(service: EnrollmentService) -> None:
        await import_status_rows(
            service.db,
            service.secrets,
            ["kind,number,status\n", f"cn_resident_id,{elder},red\n"],
            day=now.date(),
            fmt="csv",
            pm=service.pm,
        )
        before = await dump_tables(service.db)

        def sub(number: str) -> DocumentSubmission:
            return submission(kind="cn_resident_id", number=number)

        kid = await service.assist_check("desk-1", sub(child), now=now)
        assert kid.status.colour is Colour.GREEN
        assert kid.masked.masked_number == child[:2] + "*" * 14 + child[-2:]
        assert kid.status.reasons == ()
        old = await service.assist_check("desk-1", sub(elder), now=now)
        assert old.status.colour is Colour.RED and old.status.reasons == ()
        assert (await service.assist_check("desk-1", sub(sixteen), now=now)).status
        with pytest.raises(AssistNotEligibleError):
            await service.assist_check("desk-1", sub(adult), now=now)
        with pytest.raises(AgeUnknownError):
            await service.assist_check(
                "desk-1", submission(kind="passport", number="K1234567"), now=now
            )
        await service.assist_check("desk-1", sub(child), now=now)
        with pytest.raises(RateLimitedError) as caught:
            await service.assist_check("desk-1", sub(child), now=now)
        assert caught.value.code == "rate_limited"
        await service.assist_check("desk-2", sub(child), now=now)
        assert await dump_tables(service.db) == before

    run(backend, enroll_pm, body, limiter=limiter)


# --- privacy -----------------------------------------------------------------------------


def test_no_raw_number_and_no_full_name_anywhere(
    backend: Backend,
    enroll_pm: pluggy.PluginManager,
    authority: AuthorityPhotos,
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_face_models()
    passport_number, id_number = "K9081726", resident_id(dt.date(1983, 4, 5), sequence=371)
    child = resident_id(dt.date(2014, 8, 9), sequence=482)
    authority.photos.update(
        {passport_number: OBAMA.reference, id_number: BIDEN.reference, child: BIDEN.reference}
    )
    latin_name = ("QUARTERMAINE", "ALLAN JAMES")
    chinese_name = "欧阳修文"
    secrets_text: list[str] = []

    async def body(service: EnrollmentService) -> None:
        secrets_text.append(service.secrets.subject_hmac_key.hex())
        first = await service.enroll(
            await request_for(
                service,
                OBAMA,
                submission(
                    mrz=passport_mrz(passport_number, surname=latin_name[0], given=latin_name[1])
                ),
                "Allan James Quartermaine",
            )
        )
        second = await service.enroll(
            await request_for(
                service, BIDEN, submission(kind="cn_resident_id", number=id_number), chinese_name
            )
        )
        await service.add_dependant(
            second.subject.subject_id,
            await request_for(
                service,
                BIDEN,
                submission(kind="cn_resident_id", number=child),
                "欧阳小明",
                purpose="dependant",
            ),
        )
        with pytest.raises(FaceMismatchError):
            await service.renew(
                first.subject.subject_id,
                await answer(service, BIDEN, "renew"),
                photo("biden_1.jpg"),
            )
        await service.renew(
            first.subject.subject_id, await answer(service, OBAMA, "renew"), photo("obama_3.jpg")
        )
        await service.list_dependants(second.subject.subject_id)
        await service.assist_check("desk-1", submission(kind="cn_resident_id", number=child))
        dump = await dump_tables(service.db)
        cells = [cell for rows in dump.values() for row in rows for cell in row]
        forbidden = [
            passport_number,
            id_number,
            child,
            " ".join(latin_name),
            "ALLAN JAMES QUARTERMAINE",
            "ALLAN",
            chinese_name,
            "修文",
            "欧阳小明",
            "小明",
        ]
        for cell in cells:
            text = cell.decode("latin-1") if isinstance(cell, bytes) else str(cell)
            utf8 = cell if isinstance(cell, bytes) else str(cell).encode()
            for value in forbidden:
                assert value.upper() not in text.upper(), "personal data stored"
                assert value.encode() not in utf8
        # The surname alone is what a pass may show.
        assert "QUARTERMAINE" in [str(c) for c in cells]

    with caplog.at_level("DEBUG"):
        run(backend, enroll_pm, body)
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "enrolled kind=" in logged
    for value in (passport_number, id_number, child, "ALLAN", chinese_name, "修文", "小明"):
        assert value not in logged
    assert secrets_text[0] not in logged


# --- typed documents: a document photo -----------------------------------------------------------


def test_enroll_with_a_photographed_passport_page(
    backend: Backend, enroll_pm: pluggy.PluginManager
) -> None:
    """A synthetic data page (generated MRZ in OCR-B) with a real portrait
    pasted in: the portrait on the page is the reference."""
    require_face_models()
    import io
    import shutil

    from PIL import Image as PILImage

    if shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed")
    from healthcode.testing.synthetic_documents import render_page

    if backend.name != "sqlite":
        pytest.skip("OCR is backend-independent; run once")
    mrz = passport_mrz("P4455667")
    page, (x, y, w, h) = render_page(mrz, "TD3", random.Random(5))
    portrait = PILImage.open(FACES / "obama_1.jpg").convert("RGB")
    portrait.thumbnail((w, h))
    page.paste(portrait, (x + (w - portrait.width) // 2, y + (h - portrait.height) // 2))
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")

    async def body(service: EnrollmentService) -> None:
        sub = submission(image=buffer.getvalue())
        result = await service.enroll(
            await request_for(service, OBAMA, sub, "QUARTERMAINE ALLAN JAMES")
        )
        assert result.reference == "document_portrait"
        assert result.subject.masked.masked_number == "P4****67"
        with pytest.raises(FaceMismatchError) as caught:
            await service.enroll(
                await request_for(
                    service, BIDEN, submission(image=buffer.getvalue()), "QUARTERMAINE ALLAN JAMES"
                )
            )
        assert caught.value.details["against"] == "stored_template"

    run(backend, enroll_pm, body)
