"""What guards do at a door: verify a scanned presentation; the assisted
quick check (老幼助查) for children and elderly people without phones."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, post
from litestar.params import JSONBody

from healthcode.api.metrics import metrics_of
from healthcode.api.problems import AUTH_RESPONSES, COMMON_RESPONSES, INVALID_INPUT
from healthcode.api.services import require_token, services
from healthcode.api.wire import (
    AssistRequest,
    AssistResponse,
    VerificationRequest,
    VerificationResponse,
    status_to_wire,
    verdict_to_wire,
)
from healthcode.core.documents import make_submission

GUARD_RESPONSES = {**COMMON_RESPONSES, **AUTH_RESPONSES}


class GuardController(Controller):
    path = "/guard"
    tags = ["guards"]
    security = [{"bearer": []}]

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
        verification = services(request.app.state).verification
        started = time.perf_counter()
        verdict = await verification.verify(data.presentation)
        metrics_of(request.app.state).observe_verification(verdict, time.perf_counter() - started)
        return verdict_to_wire(verdict)

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
