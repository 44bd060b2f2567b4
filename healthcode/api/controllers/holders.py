"""What a holder does from their phone, each request signed with the device
key bound at enrollment: today's status, a pass, renewal by face, dependants.

Every handler here is behind the HC-Device check (``require_holder``): a
subject id nobody enrolled with is 401 ``subject_unknown``, a signature that
is not from the enrolled device 401 ``device_signature_invalid``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body

from healthcode.api.controllers.enrollments import (
    answer_images,
    form_request,
    masked_subject_view,
    subject_view,
)
from healthcode.api.metrics import metrics_of
from healthcode.api.problems import AUTH_RESPONSES, COMMON_RESPONSES, INVALID_INPUT, problem_spec
from healthcode.api.services import require_holder, services
from healthcode.api.wire import (
    DependantAddedResponse,
    DependantResponse,
    PassResponse,
    RenewalResponse,
    StatusView,
    problem_to_wire,
    status_to_wire,
)
from healthcode.core.auth import Caller
from healthcode.core.enrollment import DependantView

HOLDER_RESPONSES = {**COMMON_RESPONSES, **AUTH_RESPONSES}
FACE_RESPONSES = {
    **HOLDER_RESPONSES,
    **INVALID_INPUT,
    409: problem_spec("The challenge was already used, or a limit is reached."),
}


@dataclass
class RenewalForm:
    challenge_nonce: str
    capture: UploadFile
    frames: list[UploadFile] = field(default_factory=list)


@dataclass
class DependantForm:
    challenge_nonce: str
    declared_name: str
    capture: UploadFile
    frames: list[UploadFile] = field(default_factory=list)
    number: str | None = None
    mrz: str | None = None
    kind: str | None = None
    issuing_state: str | None = None
    document_image: UploadFile | None = None


async def _authenticate(request: Request[Any, Any, Any]) -> None:
    """Runs before the body is parsed: the device signature covers the raw
    body, so it is read (and kept for the form parser) first."""
    request.state.caller = await require_holder(request)


def _caller(request: Request[Any, Any, Any]) -> Caller:
    caller: Caller = request.state.caller
    return caller


def _dependant_response(view: DependantView) -> DependantResponse:
    return DependantResponse(
        slot=view.slot,
        subject=masked_subject_view(view.subject_id, view.masked),
        status=status_to_wire(view.status),
    )


class HolderController(Controller):
    path = "/me"
    tags = ["holders"]
    security = [{"HC-Device": []}]

    @get(
        "/status", operation_id="myStatus", before_request=_authenticate, responses=HOLDER_RESPONSES
    )
    async def status(self, request: Request[Any, Any, Any]) -> StatusView:
        """Today's status, valid until 24:00 Asia/Shanghai (reasons are never shown)."""
        passes = services(request.app.state).passes
        return status_to_wire(await passes.current_status(_caller(request).subject_id or ""))

    @post(
        "/passes",
        operation_id="issuePass",
        before_request=_authenticate,
        status_code=201,
        responses=HOLDER_RESPONSES,
    )
    async def issue_pass(self, request: Request[Any, Any, Any]) -> PassResponse:
        """Sign today's pass, bound to this device's key."""
        caller = _caller(request)
        svc = services(request.app.state)
        issued = await svc.passes.issue(caller.subject_id or "")
        return PassResponse(
            text=issued.issued.text,
            status=status_to_wire(issued.status),
            issuer=issued.issued.claims.issuer,
            kid=issued.issued.kid.hex(),
            valid_until=issued.status.valid_until.isoformat(),
        )

    @post(
        "/renewals",
        operation_id="renewByFace",
        before_request=_authenticate,
        status_code=201,
        responses=FACE_RESPONSES,
    )
    async def renew(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[RenewalForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> RenewalResponse:
        """Face-only renewal: answer a new challenge; no document is re-entered."""
        caller = _caller(request)
        enrollment = services(request.app.state).enrollment
        with metrics_of(request.app.state).enrollment("renew") as counted:
            async with answer_images(
                enrollment, "renew", data.challenge_nonce, data.frames, data.capture
            ) as (liveness, capture):
                result = await enrollment.renew(caller.subject_id or "", liveness, capture)
            counted.result = "renewed"
        return RenewalResponse(
            subject=subject_view(result.subject),
            status=status_to_wire(result.status),
            similarity=round(result.match.similarity, 4),
            warnings=[problem_to_wire(p) for p in result.warnings],
        )

    @get(
        "/dependants",
        operation_id="listDependants",
        before_request=_authenticate,
        responses=HOLDER_RESPONSES,
    )
    async def dependants(self, request: Request[Any, Any, Any]) -> list[DependantResponse]:
        """The holder's dependants (up to 4) with today's statuses."""
        caller = _caller(request)
        views = await services(request.app.state).enrollment.list_dependants(
            caller.subject_id or ""
        )
        return [_dependant_response(v) for v in views]

    # A path of its own: Litestar's automatic OPTIONS answer lists only one
    # handler's methods when two handlers share a path.
    @post(
        "/dependant-enrollments",
        operation_id="addDependant",
        before_request=_authenticate,
        status_code=201,
        responses=FACE_RESPONSES,
    )
    async def add_dependant(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[DependantForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> DependantAddedResponse:
        """Add a dependant (他人代查): their document and a one-time face check."""
        caller = _caller(request)
        enrollment = services(request.app.state).enrollment
        with metrics_of(request.app.state).enrollment("dependant") as counted:
            async with form_request(enrollment, "dependant", data) as enrollment_request:
                view = await enrollment.add_dependant(caller.subject_id or "", enrollment_request)
            counted.result = "added"
        listed = _dependant_response(view)
        return DependantAddedResponse(
            slot=listed.slot,
            subject=listed.subject,
            status=listed.status,
            warnings=[problem_to_wire(p) for p in view.warnings],
        )
