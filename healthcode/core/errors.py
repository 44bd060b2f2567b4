"""Errors with stable machine codes and bilingual (zh/en) messages.

Every error a person can meet carries:

* ``code`` -- a stable snake_case identifier that scripts and the API rely on;
* ``message_en`` / ``message_zh`` -- what a person reads;
* ``details`` -- small, non-personal facts (lengths, positions, expected values).

The CLI maps these to exit codes in one place (``healthcode.cli.errors``), the
API to RFC 9457 problem details in one place. Messages never contain a document
number or a name: they may end up in logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class HealthcodeError(Exception):
    """Base class of every error healthcode raises on purpose."""

    code: ClassVar[str] = "healthcode_error"
    default_en: ClassVar[str] = "Something went wrong."
    default_zh: ClassVar[str] = "出现错误。"

    def __init__(
        self,
        message_en: str | None = None,
        message_zh: str | None = None,
        *,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.message_en = message_en or self.default_en
        self.message_zh = message_zh or self.default_zh
        if code is not None:
            # A subclass may refine the code per occurrence (e.g. which field).
            self.code = code  # type: ignore[misc]
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(self.message_en)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message_en} / {self.message_zh}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
            "details": self.details,
        }


# --- input --------------------------------------------------------------------


class InputError(HealthcodeError):
    """The input cannot be read as any document: empty, too long, bad characters."""

    code = "invalid_input"
    default_en = "The input could not be read."
    default_zh = "无法识别输入内容。"


class EmptyInputError(InputError):
    code = "empty_input"
    default_en = "Nothing was entered."
    default_zh = "未输入任何内容。"


class InputTooLongError(InputError):
    code = "input_too_long"
    default_en = "The input is too long."
    default_zh = "输入内容过长。"


class InvalidCharactersError(InputError):
    code = "invalid_characters"
    default_en = "The input contains characters that cannot appear in a document number."
    default_zh = "输入内容包含证件号码中不可能出现的字符。"


# --- documents ----------------------------------------------------------------


class DocumentError(HealthcodeError):
    """A document input was recognised but is malformed beyond parsing."""

    code = "invalid_document"
    default_en = "The document is not valid."
    default_zh = "证件无效。"


class UnknownDocumentKindError(DocumentError):
    code = "unknown_document_kind"
    default_en = "No installed plugin recognises this document."
    default_zh = "无法识别该证件类型。"


class MalformedNumberError(DocumentError):
    code = "malformed_number"
    default_en = "The document number has the wrong format."
    default_zh = "证件号码格式错误。"


class MalformedMRZError(DocumentError):
    code = "malformed_mrz"
    default_en = "The machine-readable zone has the wrong format."
    default_zh = "机读区格式错误。"


class UnsupportedInputError(DocumentError):
    code = "unsupported_input"
    default_en = "This document kind cannot be read from this kind of input."
    default_zh = "该证件类型不支持此种输入方式。"


# --- plugins ------------------------------------------------------------------


class PluginError(HealthcodeError):
    """A plugin is broken: bad hook name, duplicate registration, bad return value."""

    code = "plugin_error"
    default_en = "A plugin is misconfigured."
    default_zh = "插件配置错误。"


class DuplicateDocumentKindError(PluginError):
    code = "duplicate_document_kind"
    default_en = "Two plugins register the same document kind."
    default_zh = "两个插件注册了相同的证件类型。"
