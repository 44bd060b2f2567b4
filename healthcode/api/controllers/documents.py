"""Documents: check a typed number or an MRZ; list the known kinds."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import JSONBody

from healthcode.api.problems import COMMON_RESPONSES, INVALID_INPUT
from healthcode.api.wire import (
    DocumentCheckRequest,
    DocumentCheckResponse,
    DocumentKind,
    check_result_to_wire,
    kind_to_wire,
)
from healthcode.core.documents import check_document, document_types, make_submission
from healthcode.core.errors import EmptyInputError


class DocumentController(Controller):
    path = "/documents"
    tags = ["documents"]

    @get("/kinds", operation_id="listDocumentKinds", responses=COMMON_RESPONSES)
    async def kinds(self) -> list[DocumentKind]:
        """The document kinds the installed plugins handle."""
        return [kind_to_wire(k) for k in document_types().values()]

    @post(
        "/check",
        operation_id="checkDocument",
        status_code=200,
        responses={**COMMON_RESPONSES, **INVALID_INPUT},
    )
    async def check(self, data: JSONBody[DocumentCheckRequest]) -> DocumentCheckResponse:
        """Check a typed document number or an MRZ text.

        Answers 200 with ``valid`` and every problem found (check digits, dates,
        codes, expiry) for a document of a known kind; 422 with a problem
        document when the input cannot be read as any document.
        """
        if data.number is None and data.mrz is None:
            raise EmptyInputError(
                "Give a document number or an MRZ.",
                "请提供证件号码或机读区内容。",
                details={"fields": ["number", "mrz"]},
            )
        submission, warnings = make_submission(
            kind=data.kind, number=data.number, mrz=data.mrz, issuing_state=data.issuing_state
        )
        # Parsing is CPU-bound but short (tens of microseconds): run it inline.
        result = check_document(submission, warnings=warnings)
        return check_result_to_wire(result)
