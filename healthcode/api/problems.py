"""Errors as RFC 9457 problem details: the one place where errors become HTTP.

Every problem carries the stable ``code`` and the messages in Chinese and
English. Unexpected exceptions become a 500 problem without internals; the
overload and rate-limit paths answer 503/429 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from healthcode.core.errors import (
    DocumentError,
    HealthcodeError,
    InputError,
    PluginError,
)
from healthcode.core.storage.errors import (
    DatabaseUnavailableError,
    SecretsError,
    StatusImportError,
    StorageError,
)

log = logging.getLogger("healthcode.api")

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 2


class Problem(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details, with healthcode's stable code and zh/en messages."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    message_en: str
    message_zh: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


def problem_response(
    status: int,
    code: str,
    message_en: str,
    message_zh: str,
    *,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    body = problem_document(status, code, message_en, message_zh, details=details)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_document(
    status: int,
    code: str,
    message_en: str,
    message_zh: str,
    *,
    details: dict[str, Any] | None = None,
) -> Problem:
    return Problem(
        type=f"https://healthcode.invalid/problems/{code}",
        title=code.replace("_", " "),
        status=status,
        detail=message_en,
        code=code,
        message_en=message_en,
        message_zh=message_zh,
        details=details or {},
    )


def problem_for_status(status: int) -> Problem:
    """The generic problem document for an HTTP status (429, 503, ...)."""
    code, en, zh = _HTTP_CODES[status]
    return problem_document(status, code, en, zh)


# Codes whose meaning is an HTTP status of its own; the rest of the input and
# document errors are 422.
_STATUS_BY_CODE = {
    "subject_not_found": 404,
    "face_mismatch": 403,
    "challenge_already_used": 409,
    "challenge_expired": 409,
    "challenge_unknown": 409,
    "enrollment_conflict": 409,
    "document_linked_to_another_subject": 409,
    "dependant_limit_reached": 409,
    "dependant_already_added": 409,
    "device_key_missing": 409,
    "rate_limited": 429,
    "face_check_unavailable": 503,
    "face_service_busy": 503,
    "reference_face_unavailable": 422,
}


def status_for(error: HealthcodeError) -> int:
    if error.code in _STATUS_BY_CODE:
        return _STATUS_BY_CODE[error.code]
    explicit = getattr(error, "http_status", None)
    if isinstance(explicit, int):
        return explicit
    if isinstance(error, DatabaseUnavailableError):
        return HTTP_503_SERVICE_UNAVAILABLE
    if isinstance(error, InputError | DocumentError | StatusImportError):
        return HTTP_422_UNPROCESSABLE_ENTITY
    if isinstance(error, PluginError | SecretsError | StorageError):
        return HTTP_500_INTERNAL_SERVER_ERROR
    return HTTP_422_UNPROCESSABLE_ENTITY


def healthcode_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    assert isinstance(exc, HealthcodeError)
    status = status_for(exc)
    headers = None
    if status in (HTTP_429_TOO_MANY_REQUESTS, HTTP_503_SERVICE_UNAVAILABLE):
        retry = exc.details.get("retry_after_s", RETRY_AFTER_SECONDS)
        headers = {"Retry-After": str(max(1, int(retry)))}
    if status >= 500:
        # The code only: messages and details may describe input.
        log.error("request failed: %s", exc.code)
    return problem_response(
        status, exc.code, exc.message_en, exc.message_zh, details=exc.details, headers=headers
    )


def validation_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    assert isinstance(exc, ValidationException)
    fields = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            fields.append({"key": item.get("key"), "source": item.get("source")})
    return problem_response(
        HTTP_400_BAD_REQUEST,
        "invalid_request",
        "The request is not well-formed: " + (exc.detail or "check its fields."),
        "请求格式错误，请检查各字段。",
        details={"fields": fields},
    )


_HTTP_CODES = {
    HTTP_400_BAD_REQUEST: ("bad_request", "The request is not well-formed.", "请求格式错误。"),
    HTTP_401_UNAUTHORIZED: ("unauthorized", "Authentication is required.", "需要身份认证。"),
    HTTP_403_FORBIDDEN: (
        "forbidden",
        "This is not allowed for your role.",
        "您的角色无权执行此操作。",
    ),
    404: ("not_found", "No such resource.", "资源不存在。"),
    405: ("method_not_allowed", "This method is not allowed here.", "不支持该请求方法。"),
    HTTP_409_CONFLICT: (
        "conflict",
        "The request conflicts with the current state.",
        "请求与当前状态冲突。",
    ),
    HTTP_413_REQUEST_ENTITY_TOO_LARGE: (
        "request_too_large",
        "The request body is too large.",
        "请求内容过大。",
    ),
    415: ("unsupported_media_type", "This content type is not accepted.", "不支持该内容类型。"),
    HTTP_429_TOO_MANY_REQUESTS: (
        "too_many_requests",
        "Too many requests: please try again shortly.",
        "请求过于频繁，请稍后再试。",
    ),
    HTTP_503_SERVICE_UNAVAILABLE: (
        "service_busy",
        "The service is busy: please try again shortly.",
        "服务繁忙，请稍后再试。",
    ),
}


def http_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code, en, zh = _HTTP_CODES.get(
        status, ("http_error", exc.detail or "The request failed.", "请求失败。")
    )
    headers = dict(exc.headers or {})
    if status in (HTTP_429_TOO_MANY_REQUESTS, HTTP_503_SERVICE_UNAVAILABLE):
        reset = headers.get("RateLimit-Reset")
        headers["Retry-After"] = reset if reset and reset.isdigit() else str(RETRY_AFTER_SECONDS)
    return problem_response(status, code, en, zh, headers=headers)


def undecodable_request_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # A text form field or a JSON body that is not UTF-8: the client's fault.
    return problem_response(
        HTTP_400_BAD_REQUEST,
        "invalid_request_encoding",
        "A text field of the request is not valid UTF-8.",
        "请求中的文本字段不是有效的 UTF-8 编码。",
    )


def internal_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.error("unexpected %s", type(exc).__name__, exc_info=exc)
    return problem_response(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal_error",
        "Something went wrong on our side; nothing was saved. Please try again.",
        "服务器内部错误，未保存任何内容，请重试。",
    )


EXCEPTION_HANDLERS = {
    HealthcodeError: healthcode_error_handler,
    ValidationException: validation_error_handler,
    NotFoundException: http_error_handler,
    TooManyRequestsException: http_error_handler,
    HTTPException: http_error_handler,
    UnicodeDecodeError: undecodable_request_handler,
    Exception: internal_error_handler,
}


def problem_spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=Problem, description=description, media_type=PROBLEM_JSON)


# Responses every operation may give; listed so the OpenAPI document is complete.
COMMON_RESPONSES: dict[int, ResponseSpec] = {
    HTTP_400_BAD_REQUEST: problem_spec("The request is not well-formed."),
    HTTP_413_REQUEST_ENTITY_TOO_LARGE: problem_spec("The request body is too large."),
    HTTP_429_TOO_MANY_REQUESTS: problem_spec("Rate limit reached; see Retry-After."),
    HTTP_500_INTERNAL_SERVER_ERROR: problem_spec("Unexpected failure; nothing was saved."),
    HTTP_503_SERVICE_UNAVAILABLE: problem_spec(
        "Overloaded or database unavailable; see Retry-After."
    ),
}
INVALID_INPUT = {HTTP_422_UNPROCESSABLE_ENTITY: problem_spec("The input is not valid.")}
AUTH_RESPONSES = {
    HTTP_401_UNAUTHORIZED: problem_spec("Authentication is required."),
    HTTP_403_FORBIDDEN: problem_spec("Not allowed for this role."),
}

__all__ = ["COMMON_RESPONSES", "EXCEPTION_HANDLERS", "MediaType", "Problem"]
