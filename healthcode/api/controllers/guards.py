"""What guards do at a door: verify a scanned presentation; the assisted
quick check (老幼助查) for children and elderly people without phones."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.params import JSONBody

from healthcode.api.problems import AUTH_RESPONSES, COMMON_RESPONSES, INVALID_INPUT
from healthcode.api.services import require_token, services
from healthcode.api.wire import (
    AssistRequest,
    AssistResponse,
    VerificationRequest,
    VerificationResponse,
    status_to_wire,
)
from healthcode.core.documents import make_submission
from healthcode.core.passes.errors import PassError, PresentationReplayedError, RevokedError
from healthcode.core.passes.models import Verdict
from healthcode.core.replay import PURPOSE_PRESENTATION, use_once

GUARD_RESPONSES = {**COMMON_RESPONSES, **AUTH_RESPONSES}


class GuardController(Controller):
    path = "/guard"
    tags = ["guards"]

    @post(
        "/verifications",
        operation_id="verifyPresentation",
        status_code=200,
        responses=GUARD_RESPONSES,
    )
    async def verify(
        self, request: Request[Any, Any, Any], data: JSONBody[VerificationRequest]
    ) -> VerificationResponse:
        """Verify a scanned presentation: signature, issuer trust, expiry,
        freshness (30 s), device binding, then online revocation; and accept
        each live code once, on whichever screen of this node it is shown
        (``presentation_replayed`` after).

        Always 200: ``ok`` says accepted or refused, ``code`` says why.
        """
        await require_token(request, "guard", "admin")
        svc = services(request.app.state)
        svc.maybe_reload_trust()
        verdict = svc.verifier.verify(data.presentation)
        if not verdict.ok:
            return _verdict_response(verdict)
        signed, expires_at = svc.verifier.signed_presentation(data.presentation)
        # Online: this instance knows at once which of its own passes it revoked
        # (peers' revocations reach it through their signed lists).
        if (
            verdict.pass_id is not None
            and verdict.issuer == svc.region_code
            and await svc.passes.is_revoked(verdict.pass_id)
        ):
            return _refusal(RevokedError())
        # Last: only a code that is otherwise accepted uses up its one showing.
        # Shared by every worker through the database; racing workers insert
        # the same key and exactly one of them succeeds.
        if not await use_once(svc.db, PURPOSE_PRESENTATION, signed, expires_at=expires_at):
            return _refusal(PresentationReplayedError())
        await svc.maybe_purge_used()
        return _verdict_response(verdict)

    @post(
        "/assisted-checks",
        operation_id="assistedCheck",
        status_code=200,
        responses={**GUARD_RESPONSES, **INVALID_INPUT},
    )
    async def assist(
        self, request: Request[Any, Any, Any], data: JSONBody[AssistRequest]
    ) -> AssistResponse:
        """老幼助查: by document number, for people aged 16 or under or 60 or over.
        Masked result, shown briefly, nothing stored; rate-limited per guard."""
        caller = await require_token(request, "guard", "admin")
        submission, _ = make_submission(
            kind=data.kind, number=data.number, issuing_state=data.issuing_state
        )
        result = await services(request.app.state).enrollment.assist_check(
            caller.token_id or "", submission
        )
        return AssistResponse(
            masked_name=result.masked.masked_name,
            masked_number=result.masked.masked_number,
            status=status_to_wire(result.status),
            display_seconds=result.display_seconds,
        )


def _refusal(error: PassError) -> VerificationResponse:
    return VerificationResponse(
        ok=False, code=error.code, message_en=error.message_en, message_zh=error.message_zh
    )


def _verdict_response(verdict: Verdict) -> VerificationResponse:
    return VerificationResponse(
        ok=verdict.ok,
        code=verdict.code,
        message_en=verdict.message_en,
        message_zh=verdict.message_zh,
        colour=verdict.colour.value if verdict.colour else None,
        label_zh=verdict.colour.label_zh if verdict.colour else None,
        label_en=verdict.colour.label_en if verdict.colour else None,
        masked_name=verdict.masked.masked_name if verdict.masked else None,
        masked_number=verdict.masked.masked_number if verdict.masked else None,
        issuer=verdict.issuer,
        valid_until=verdict.valid_until.isoformat() if verdict.valid_until else None,
        notices=[n.code for n in verdict.notices],
    )
