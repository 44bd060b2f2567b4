"""Operator actions, each audited: authority status imports and rechecks, purge, keys,
trust, the review queue (后台核验); and the public, signed documents peers
and offline verifiers fetch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, JSONBody, QueryParameter

from healthcode.api.metrics import metrics_of
from healthcode.api.problems import AUTH_RESPONSES, COMMON_RESPONSES, INVALID_INPUT, problem_spec
from healthcode.api.services import require_token, services
from healthcode.api.wire import (
    IssuerKeyView,
    KeyRotationRequest,
    PurgeResponse,
    ReviewPageView,
    ReviewResolveRequest,
    ReviewUnblockRequest,
    ReviewView,
    StatusImportResponse,
    StatusRecheckResponse,
    TextDocument,
    TrustAddRequest,
    TrustedIssuerView,
    review_page_to_wire,
    review_to_wire,
)
from healthcode.core.clock import now_utc
from healthcode.core.enrollment.reviews import ReviewService
from healthcode.core.passes import export_issuer
from healthcode.core.status import AuditNote, StatusImportService, parse_import_day
from healthcode.core.status.peer_tokens import configured_pair_keys
from healthcode.core.storage.database import write_audit

ADMIN_RESPONSES = {**COMMON_RESPONSES, **AUTH_RESPONSES}


@dataclass
class StatusImportForm:
    file: UploadFile
    day: str
    """YYYY-MM-DD: the day the list applies to; yesterday, today or tomorrow
    (Asia/Shanghai) unless ``allow_any_day``."""
    source: str = "authority"
    allow_any_day: bool = False
    """The admin means another day (a correction of an old list, a test)."""


class AdminController(Controller):
    path = "/admin"
    tags = ["admin"]
    security = [{"bearer": []}]

    @post(
        "/status-imports",
        operation_id="importStatusList",
        status_code=201,
        responses={**ADMIN_RESPONSES, **INVALID_INPUT},
    )
    async def import_status(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[StatusImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> StatusImportResponse:
        """Import an authority list (CSV or JSON Lines) for a day, then revoke
        unexpired passes whose holders' status became more severe.

        ``day`` is YYYY-MM-DD and yesterday, today or tomorrow in Asia/Shanghai
        unless ``allow_any_day=true`` (422 ``import_day_invalid`` /
        ``import_day_out_of_range``). While another import of the same source
        for the same day runs: 409 ``import_in_progress``, nothing imported."""
        caller = await require_token(request, "admin")
        day = parse_import_day(data.day, now=now_utc(), allow_any_day=data.allow_any_day)
        svc = services(request.app.state)
        imports = StatusImportService(
            svc.db,
            svc.secrets,
            svc.passes,
            pm=svc.pm,
            peer_keys=lambda: configured_pair_keys(svc.keys),
        )
        result = await imports.import_authority_upload(
            await data.file.read(),
            data.file.filename,
            day=day,
            source=data.source,
            audit=AuditNote(
                "api_status_import",
                {
                    "token_id": caller.token_id,
                    "day": day.isoformat(),
                    "source": data.source,
                    "allow_any_day": data.allow_any_day,
                },
            ),
        )
        summary = result.summary
        metrics_of(request.app.state).observe_import(summary)
        return StatusImportResponse(
            day=day.isoformat(),
            source=summary.source,
            imported=summary.rows_imported,
            invalid=summary.rows_invalid,
            invalid_rows=[row.as_dict() for row in summary.invalid_rows],
            passes_checked=result.passes_checked,
            passes_revoked=result.passes_revoked,
        )

    @post(
        "/status-rechecks",
        operation_id="recheckStatuses",
        status_code=200,
        responses=ADMIN_RESPONSES,
    )
    async def recheck_statuses(self, request: Request[Any, Any, Any]) -> StatusRecheckResponse:
        """Ask every status source again, with no list to import (as
        ``healthcode status recheck``): for a status source plugin that reads
        data of its own, when that data changes. Holders' next look-ups ask the
        sources again at every worker and node, and unexpired passes whose
        holder's status is now more severe are revoked."""
        caller = await require_token(request, "admin")
        svc = services(request.app.state)
        result = await StatusImportService(svc.db, svc.secrets, svc.passes, pm=svc.pm).recheck(
            audit=AuditNote("api_status_recheck", {"token_id": caller.token_id})
        )
        return StatusRecheckResponse(
            passes_checked=result.passes_checked, passes_revoked=result.passes_revoked
        )

    @post("/purge", operation_id="purge", status_code=200, responses=ADMIN_RESPONSES)
    async def purge(self, request: Request[Any, Any, Any]) -> PurgeResponse:
        """Delete day-scoped data whose day has ended, expired passes and their
        revocations (the same purge as ``healthcode purge`` and the server's at 24:00)."""
        caller = await require_token(request, "admin")
        svc = services(request.app.state)
        deleted = await svc.passes.purge()
        async with svc.db.begin() as conn:
            await write_audit(conn, "api_purge", {"token_id": caller.token_id})
        return PurgeResponse(deleted=deleted)

    @get("/keys", operation_id="listIssuerKeys", responses=ADMIN_RESPONSES)
    async def keys(self, request: Request[Any, Any, Any]) -> list[IssuerKeyView]:
        """This region's issuer keys (public facts only), newest first."""
        await require_token(request, "admin")
        return [
            IssuerKeyView(
                kid=k.kid.hex(),
                alg=k.alg,
                created_at=k.created_at.isoformat(),
                retired_at=k.retired_at.isoformat() if k.retired_at else None,
                verify_until=k.verify_until.isoformat() if k.verify_until else None,
            )
            for k in services(request.app.state).keys.list_keys()
        ]

    @post(
        "/keys/rotations",
        operation_id="rotateIssuerKey",
        status_code=201,
        responses=ADMIN_RESPONSES,
    )
    async def rotate(
        self, request: Request[Any, Any, Any], data: JSONBody[KeyRotationRequest]
    ) -> IssuerKeyView:
        """Start signing with a new key; the old one verifies until its passes expire."""
        caller = await require_token(request, "admin")
        svc = services(request.app.state)
        info = svc.keys.rotate(alg=data.alg)
        svc.trust.refresh()
        svc.verification.reload_trust()
        async with svc.db.begin() as conn:
            await write_audit(
                conn, "api_key_rotate", {"token_id": caller.token_id, "kid": info.kid.hex()}
            )
        return IssuerKeyView(
            kid=info.kid.hex(),
            alg=info.alg,
            created_at=info.created_at.isoformat(),
            retired_at=None,
            verify_until=None,
        )

    @get("/trust", operation_id="listTrustedIssuers", responses=ADMIN_RESPONSES)
    async def trust(self, request: Request[Any, Any, Any]) -> list[TrustedIssuerView]:
        """The regions whose passes verify here (this region included)."""
        await require_token(request, "admin")
        trust = services(request.app.state).trust.load()
        return [
            TrustedIssuerView(
                region_code=i.region_code, name=i.name, kids=[k.kid.hex() for k in i.keys]
            )
            for i in trust.issuers.values()
        ]

    @post(
        "/trust",
        operation_id="addTrustedIssuer",
        status_code=201,
        responses={**ADMIN_RESPONSES, **INVALID_INPUT},
    )
    async def add_trust(
        self, request: Request[Any, Any, Any], data: JSONBody[TrustAddRequest]
    ) -> TrustedIssuerView:
        """Trust a peer region from its signed issuer export (mutual recognition)."""
        caller = await require_token(request, "admin")
        svc = services(request.app.state)
        issuer = svc.trust.add(data.export)
        svc.verification.reload_trust()
        async with svc.db.begin() as conn:
            await write_audit(
                conn,
                "api_trust_add",
                {"token_id": caller.token_id, "region": issuer.region_code},
            )
        return TrustedIssuerView(
            region_code=issuer.region_code,
            name=issuer.name,
            kids=[k.kid.hex() for k in issuer.keys],
        )

    @delete(
        "/trust/{region_code:str}",
        operation_id="removeTrustedIssuer",
        status_code=204,
        responses={**ADMIN_RESPONSES, 404: problem_spec("No such peer region.")},
    )
    async def remove_trust(
        self, request: Request[Any, Any, Any], region_code: FromPath[str]
    ) -> None:
        """Stop trusting a peer region: its passes are refused at once."""
        caller = await require_token(request, "admin")
        svc = services(request.app.state)
        if not svc.trust.remove(region_code):
            raise NotFoundException()
        svc.verification.reload_trust()
        async with svc.db.begin() as conn:
            await write_audit(
                conn, "api_trust_remove", {"token_id": caller.token_id, "region": region_code}
            )

    # --- the review queue (后台核验) --------------------------------------------------

    @get("/reviews", operation_id="listReviews", responses={**ADMIN_RESPONSES, **INVALID_INPUT})
    async def reviews(
        self,
        request: Request[Any, Any, Any],
        review_state: Annotated[
            str, QueryParameter(name="state", description="open (default), resolved or all")
        ] = "open",
        limit: Annotated[int, QueryParameter(description="entries per page, 1 to 100")] = 20,
        cursor: Annotated[
            int | None, QueryParameter(description="next_cursor of the previous page")
        ] = None,
    ) -> ReviewPageView:
        """Enrollments and renewals refused for a face mismatch, the oldest first:
        what was compared, similarity and threshold, the document kind and
        masked number, when (Asia/Shanghai) and the state. 422
        ``review_input_invalid`` for an unknown state, a page size outside
        1-100 or a negative cursor."""
        await require_token(request, "admin")
        svc = services(request.app.state)
        page = await ReviewService(svc.db).list(state=review_state, limit=limit, cursor=cursor)
        return review_page_to_wire(page)

    @get(
        "/reviews/{review_id:int}",
        operation_id="getReview",
        responses={**ADMIN_RESPONSES, 404: problem_spec("No such review entry.")},
    )
    async def review(self, request: Request[Any, Any, Any], review_id: FromPath[int]) -> ReviewView:
        """One entry of the review queue (404 ``review_not_found``)."""
        await require_token(request, "admin")
        return review_to_wire(await ReviewService(services(request.app.state).db).get(review_id))

    @post(
        "/reviews/{review_id:int}/resolution",
        operation_id="resolveReview",
        status_code=200,
        responses={
            **ADMIN_RESPONSES,
            **INVALID_INPUT,
            404: problem_spec("No such review entry."),
            409: problem_spec("The entry was resolved already; nothing was changed."),
        },
    )
    async def resolve_review(
        self,
        request: Request[Any, Any, Any],
        review_id: FromPath[int],
        data: JSONBody[ReviewResolveRequest],
    ) -> ReviewView:
        """Resolve an entry once, audited with the token id and the reason.
        ``confirm``: it is the same person; that face may retry once within 72
        hours and is then enrolled. ``block``: the document is blocked; its
        enrollments and the subject's renewals are refused (``document_blocked``).
        409 ``review_already_resolved`` when the entry was resolved before."""
        caller = await require_token(request, "admin")
        review = await ReviewService(services(request.app.state).db).resolve(
            review_id, data.decision, data.reason, operator=f"token:{caller.token_id}"
        )
        return review_to_wire(review)

    @post(
        "/reviews/{review_id:int}/unblock",
        operation_id="unblockReview",
        status_code=200,
        responses={
            **ADMIN_RESPONSES,
            **INVALID_INPUT,
            404: problem_spec("No such review entry."),
            409: problem_spec("The entry blocks no document; nothing was changed."),
        },
    )
    async def unblock_review(
        self,
        request: Request[Any, Any, Any],
        review_id: FromPath[int],
        data: JSONBody[ReviewUnblockRequest],
    ) -> ReviewView:
        """Lift an entry's block (a wrong decision, an appeal upheld): the
        documents it blocked may enroll and renew again. Audited with the token
        id and the reason; the entry then shows ``unblocked``. 409
        ``review_not_blocked`` when the entry blocks nothing."""
        caller = await require_token(request, "admin")
        review = await ReviewService(services(request.app.state).db).unblock(
            review_id, data.reason, operator=f"token:{caller.token_id}"
        )
        return review_to_wire(review)


class PublicController(Controller):
    """Signed documents anyone may fetch: they carry no personal data."""

    path = "/public"
    tags = ["public"]

    @get("/issuer", operation_id="issuerExport", responses=COMMON_RESPONSES)
    async def issuer(self, request: Request[Any, Any, Any]) -> TextDocument:
        """This region's signed issuer export (``HCK1:``), for peers' trust lists."""
        return TextDocument(text=export_issuer(services(request.app.state).keys))

    @get("/revocations", operation_id="revocationList", responses=COMMON_RESPONSES)
    async def revocations(self, request: Request[Any, Any, Any]) -> TextDocument:
        """The signed revocation list (``HCR1:``) of this region's unexpired passes."""
        return TextDocument(text=await services(request.app.state).passes.revocation_list())
