"""Errors of enrollment, face-only renewal, dependants and the assisted check.

Each has a stable ``code`` and zh/en messages; ``details`` hold only
non-personal facts (problem codes, similarities, counts), never a document
number or a name: these errors are logged and returned to clients.
"""

from __future__ import annotations

from healthcode.core.errors import DocumentError, HealthcodeError, InputError, PluginError


class EnrollmentError(HealthcodeError):
    """Enrollment (or renewal) was refused; nothing was stored except a review
    record where the error says so."""

    code = "enrollment_refused"
    default_en = "The enrollment was refused."
    default_zh = "登记未通过。"


# --- the document --------------------------------------------------------------------


class DocumentNotAcceptedError(EnrollmentError, DocumentError):
    """The document was read but cannot be used; ``details["problems"]`` lists
    every error code found, so a person sees all of them at once."""

    code = "document_not_accepted"
    default_en = "The document cannot be used for enrollment."
    default_zh = "该证件无法用于登记。"


class DocumentExpiredError(DocumentNotAcceptedError):
    code = "document_expired"
    default_en = "The document has expired; enroll with a valid document."
    default_zh = "证件已过期，请使用有效证件登记。"


class SpecimenDocumentError(DocumentNotAcceptedError):
    code = "specimen_document"
    default_en = "This is a specimen document, not a real one; it cannot be enrolled."
    default_zh = "这是样例证件，并非真实证件，不能用于登记。"


class DemoDocumentError(DocumentNotAcceptedError):
    code = "demo_document"
    default_en = (
        "This page was made by `healthcode demo`; only a demo instance "
        "(`healthcode serve --demo`) accepts it."
    )
    default_zh = "该证件页由 `healthcode demo` 生成，仅演示实例（`healthcode serve --demo`）接受。"


class NameRequiredError(EnrollmentError, InputError):
    code = "name_required"
    default_en = "Enter the name as written on the document."
    default_zh = "请输入与证件一致的姓名。"


class NameMismatchError(EnrollmentError):
    """The typed name disagrees with the name read from the document (a false
    declaration, or a typing error)."""

    code = "name_mismatch"
    default_en = "The name entered does not match the name on the document."
    default_zh = "所填姓名与证件上的姓名不一致。"


class DeviceKeyInvalidError(EnrollmentError, InputError):
    code = "device_key_invalid"
    default_en = "The device public key is not a P-256 or Ed25519 public key (DER or PEM)."
    default_zh = "设备公钥不是有效的 P-256 或 Ed25519 公钥（DER 或 PEM 格式）。"


# --- liveness and faces --------------------------------------------------------------


class ChallengeUnknownError(EnrollmentError):
    code = "challenge_unknown"
    default_en = "This liveness challenge was not issued here; request a new one."
    default_zh = "该活体检测挑战并非本系统签发，请重新获取。"


class ChallengeUsedError(EnrollmentError):
    code = "challenge_already_used"
    default_en = "This liveness challenge has already been answered; request a new one."
    default_zh = "该活体检测挑战已被使用，请重新获取。"


class ChallengeExpiredError(EnrollmentError):
    code = "challenge_expired"
    default_en = "The liveness challenge has expired; request a new one."
    default_zh = "活体检测挑战已过期，请重新获取。"


class LivenessFailedError(EnrollmentError):
    """``details["reasons"]`` are the liveness judge's reason codes."""

    code = "liveness_failed"
    default_en = "The liveness check failed: follow the instructions on screen and try again."
    default_zh = "活体检测未通过，请按屏幕提示重新操作。"


class CaptureUnusableError(EnrollmentError, InputError):
    """``details["problem"]``: ``no_face`` or ``more_than_one_face``;
    ``details["image"]``: which image (``capture``, ``frame``, ``reference``)."""

    code = "capture_unusable"
    default_en = "The photo cannot be used: exactly one face must be visible."
    default_zh = "照片无法使用：画面中必须有且仅有一张人脸。"


class CaptureNotFromLivenessError(EnrollmentError):
    """The still capture does not show the person who answered the challenge."""

    code = "capture_not_from_liveness"
    default_en = "The photo does not show the person who did the liveness check."
    default_zh = "照片中的人与完成活体检测的人不一致。"


class FaceMismatchError(EnrollmentError):
    """The live face does not match the reference. ``details["against"]`` is
    ``stored_template``, ``document_portrait`` or ``reference_photo``;
    ``details["review_recorded"]`` says whether a review record was written."""

    code = "face_mismatch"
    default_en = "The face does not match the document holder's."
    default_zh = "人脸与证件持有人不符。"


class ReferenceFaceUnavailableError(EnrollmentError):
    code = "reference_face_unavailable"
    default_en = (
        "No reference photo is available for this document; enroll with a photo of the "
        "document's data page instead."
    )
    default_zh = "无法获取该证件的参考照片，请改为拍摄证件资料页进行登记。"


class FaceWorkBusyError(EnrollmentError):
    code = "face_service_busy"
    default_en = "Face checks are busy right now; please try again in a moment."
    default_zh = "人脸核验繁忙，请稍后再试。"


class FaceCheckUnavailableError(EnrollmentError, PluginError):
    code = "face_check_unavailable"
    default_en = "No installed plugin can check faces; face checks are unavailable."
    default_zh = "没有可进行人脸核验的插件，暂时无法进行人脸核验。"


class DocumentBlockedError(EnrollmentError):
    """An operator blocked this document from the review queue (后台核验);
    ``details["reason"]``: ``document_blocked`` (the document presented, or the
    previous one of a renewed passport) or ``subject_blocked`` (a renewal of a
    subject one of whose documents is blocked)."""

    code = "document_blocked"
    default_en = (
        "This document has been blocked after a review and cannot be used to enroll or "
        "renew; please bring the document to a service counter."
    )
    default_zh = "该证件经后台核验已被停用，无法用于登记或更新，请携带证件到服务窗口办理。"
    http_status = 403


# --- subjects and dependants -----------------------------------------------------------


class DuplicateLivenessActionError(PluginError):
    """Two plugins register a liveness action of the same name."""

    code = "duplicate_liveness_action"
    default_en = "Two plugins register the same liveness action."
    default_zh = "两个插件注册了同名的活体检测动作。"


class SubjectNotFoundError(EnrollmentError):
    code = "subject_not_found"
    default_en = "No enrolled person was found; enroll with your document first."
    default_zh = "未找到登记信息，请先使用证件登记。"


class DocumentLinkedElsewhereError(EnrollmentError):
    code = "document_linked_to_another_subject"
    default_en = "This document is already enrolled for another person."
    default_zh = "该证件已登记在其他人名下。"


class EnrollmentConflictError(EnrollmentError):
    code = "enrollment_conflict"
    default_en = "The same document is being enrolled at this moment; try again."
    default_zh = "该证件正在进行登记，请稍后再试。"


class DependantLimitError(EnrollmentError):
    code = "dependant_limit_reached"
    default_en = "A holder can manage at most 4 dependants; remove one first."
    default_zh = "每人最多可代查 4 人，请先移除一人。"


class DependantExistsError(EnrollmentError):
    code = "dependant_already_added"
    default_en = "This person is already one of your dependants."
    default_zh = "此人已在您的代查名单中。"


class DependantIsHolderError(EnrollmentError):
    code = "dependant_is_holder"
    default_en = "You cannot add yourself as a dependant."
    default_zh = "不能将自己添加为代查对象。"


# --- the review queue (后台核验) ------------------------------------------------------


class ReviewError(HealthcodeError):
    """An operator's action on the review queue was refused."""

    code = "review_refused"
    default_en = "The review action was refused."
    default_zh = "核验操作未执行。"


class ReviewNotFoundError(ReviewError):
    code = "review_not_found"
    default_en = "There is no review entry with this id."
    default_zh = "不存在该编号的核验记录。"
    http_status = 404


class ReviewAlreadyResolvedError(ReviewError):
    """``details``: the earlier ``resolution`` and when (``resolved_at``);
    nothing was changed."""

    code = "review_already_resolved"
    default_en = "This review entry has already been resolved; nothing was changed."
    default_zh = "该核验记录已处理，本次操作未作任何更改。"
    http_status = 409


class ReviewNotBlockedError(ReviewError):
    """An unblock of an entry that does not block (open, confirmed, or
    unblocked already); ``details``: its ``resolution``. Nothing was changed."""

    code = "review_not_blocked"
    default_en = "This review entry blocks no document; there is nothing to unblock."
    default_zh = "该核验记录未停用证件，无需解除停用。"
    http_status = 409


class ReviewInputError(ReviewError, InputError):
    """A decision, reason, state filter, page size or cursor that cannot be
    used; ``details["field"]`` names it."""

    code = "review_input_invalid"
    default_en = "The review request is not valid."
    default_zh = "核验请求无效。"


class ReviewReasonPersonalDataError(ReviewInputError):
    code = "review_reason_personal_data"
    default_en = (
        "The reason looks like it contains a document number; write the reason without "
        "personal data (it is kept in the audit log)."
    )
    default_zh = "处理理由中似乎含有证件号码，请勿填写个人信息（理由将记入审计日志）。"


# --- assisted quick check (老幼助查) ----------------------------------------------------


class AssistError(HealthcodeError):
    code = "assist_refused"
    default_en = "The assisted check was refused."
    default_zh = "助查未通过。"


class AgeUnknownError(AssistError):
    code = "age_unknown"
    default_en = (
        "The document does not show a date of birth, so the assisted check (for people "
        "aged 16 or under or 60 or over) cannot be used; use the person's own enrollment."
    )
    default_zh = (
        "证件上没有出生日期，无法使用老幼助查（限 16 周岁及以下或 60 周岁及以上），请本人登记。"
    )


class AssistNotEligibleError(AssistError):
    code = "assist_not_eligible"
    default_en = "The assisted check is only for people aged 16 or under or 60 or over."
    default_zh = "老幼助查仅限 16 周岁及以下或 60 周岁及以上人员使用。"


class RateLimitedError(AssistError):
    """``details["retry_after_s"]``: when the next check is allowed."""

    code = "rate_limited"
    default_en = "Too many checks in a short time; try again later."
    default_zh = "查询过于频繁，请稍后再试。"


__all__ = [
    "AgeUnknownError",
    "AssistError",
    "AssistNotEligibleError",
    "CaptureNotFromLivenessError",
    "CaptureUnusableError",
    "ChallengeExpiredError",
    "ChallengeUnknownError",
    "ChallengeUsedError",
    "DependantExistsError",
    "DependantIsHolderError",
    "DependantLimitError",
    "DeviceKeyInvalidError",
    "DocumentBlockedError",
    "DocumentExpiredError",
    "DocumentLinkedElsewhereError",
    "DocumentNotAcceptedError",
    "DuplicateLivenessActionError",
    "EnrollmentConflictError",
    "EnrollmentError",
    "FaceCheckUnavailableError",
    "FaceMismatchError",
    "FaceWorkBusyError",
    "LivenessFailedError",
    "NameMismatchError",
    "NameRequiredError",
    "RateLimitedError",
    "ReferenceFaceUnavailableError",
    "ReviewAlreadyResolvedError",
    "ReviewError",
    "ReviewInputError",
    "ReviewNotBlockedError",
    "ReviewNotFoundError",
    "ReviewReasonPersonalDataError",
    "SpecimenDocumentError",
    "SubjectNotFoundError",
]
