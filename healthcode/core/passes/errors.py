"""Refusals and failures of the pass layer, each with a stable code.

A verifier never lets a foreign exception escape: every way a pass, a
presentation, a trust list or a revocation list can be wrong ends as one of
these. Scripts and the API rely on ``code``; people read the messages.
Messages and details never carry a name or a document number.
"""

from __future__ import annotations

from healthcode.core.errors import HealthcodeError


class PassError(HealthcodeError):
    """Base of everything the pass layer refuses or cannot do."""

    code = "pass_error"
    default_en = "The pass could not be checked."
    default_zh = "无法核验该通行码。"


# --- decoding -------------------------------------------------------------------


class MalformedPassError(PassError):
    code = "malformed_pass"
    default_en = "This is not a readable health pass."
    default_zh = "无法识别的健康通行码。"


class PassTooLargeError(MalformedPassError):
    code = "pass_too_large"
    default_en = "The pass is larger than any genuine pass."
    default_zh = "通行码数据过大，不是有效的通行码。"


class UnsupportedAlgorithmError(MalformedPassError):
    code = "unsupported_algorithm"
    default_en = "The pass is signed with an algorithm that is not accepted."
    default_zh = "通行码使用了不被接受的签名算法。"


class UnknownCriticalHeaderError(MalformedPassError):
    code = "unknown_critical_header"
    default_en = "The pass requires a feature this verifier does not understand."
    default_zh = "通行码包含本核验程序无法识别的关键字段。"


class PresentationRequiredError(MalformedPassError):
    code = "presentation_required"
    default_en = "A bare pass was shown; the holder's app must show a live code."
    default_zh = "仅出示了静态通行码，请持有人出示实时动态码。"


# --- issuer and signature -------------------------------------------------------


class UnknownIssuerError(PassError):
    code = "unknown_issuer"
    default_en = "The pass was issued by a region or key this verifier does not trust."
    default_zh = "签发地区或密钥不在信任列表中。"


class IssuerKeyRevokedError(UnknownIssuerError):
    code = "issuer_key_revoked"
    default_en = "The key that signed this pass has been withdrawn."
    default_zh = "签发该通行码的密钥已被撤销。"


class IssuerKeyNotValidError(UnknownIssuerError):
    code = "issuer_key_not_valid"
    default_en = "The key that signed this pass was not valid when the pass was issued."
    default_zh = "签发该通行码时其密钥不在有效期内。"


class IssuerMismatchError(PassError):
    code = "issuer_mismatch"
    default_en = "The pass names a different region than the key that signed it."
    default_zh = "通行码声明的签发地区与签名密钥所属地区不符。"


class BadSignatureError(PassError):
    code = "bad_signature"
    default_en = "The issuer's signature does not match: the pass is forged or altered."
    default_zh = "签发方签名不符：通行码系伪造或已被篡改。"


# --- time -----------------------------------------------------------------------


class PassExpiredError(PassError):
    code = "pass_expired"
    default_en = "The pass has expired (passes end at 24:00 Beijing time)."
    default_zh = "通行码已过期（当日24:00失效）。"


class PassNotYetValidError(PassError):
    code = "pass_not_yet_valid"
    default_en = "The pass claims to be issued in the future."
    default_zh = "通行码签发时间晚于当前时间。"


class StalePresentationError(PassError):
    code = "stale_presentation"
    default_en = "The live code is too old: a screenshot or a replay."
    default_zh = "动态码已过时，可能是截图或重放。"


class PresentationFromFutureError(PassError):
    code = "presentation_from_future"
    default_en = "The live code is dated in the future: a clock is wrong."
    default_zh = "动态码时间超前，设备时钟可能有误。"


# --- holder and status ----------------------------------------------------------


class WrongDeviceError(PassError):
    code = "wrong_device"
    default_en = "The live code was not made by the device the pass was issued to."
    default_zh = "动态码并非由该通行码绑定的设备生成。"


class RevokedError(PassError):
    code = "revoked"
    default_en = "The pass has been revoked: the holder's status has changed."
    default_zh = "通行码已被撤销：持有人状态已变更。"


class PresentationReplayedError(PassError):
    code = "presentation_replayed"
    default_en = "This live code was already used."
    default_zh = "此动态码已被使用。"


class RevocationListMissingError(PassError):
    code = "revocation_list_missing"
    default_en = "Revocations could not be checked: there is no revocation list for this region."
    default_zh = "无法核查撤销情况：没有该地区的撤销列表。"


# --- signed lists, keys ---------------------------------------------------------


class TrustListError(PassError):
    code = "trust_list_invalid"
    default_en = "The trust list is damaged or not signed by a key we know."
    default_zh = "信任列表已损坏或签名无效。"


class RevocationListError(PassError):
    code = "revocation_list_invalid"
    default_en = "The revocation list is damaged or not signed by a trusted issuer."
    default_zh = "撤销列表已损坏或签名无效。"


class StatusExportError(PassError):
    code = "status_export_invalid"
    default_en = "The shared status list is damaged, not for us, or not signed by a trusted peer."
    default_zh = "共享状态列表已损坏、接收方不符或签名无效。"


class KeyStoreError(PassError):
    code = "key_store_error"
    default_en = "The issuer key store cannot be used."
    default_zh = "签发密钥库不可用。"


class NoActiveKeyError(KeyStoreError):
    code = "no_active_key"
    default_en = "There is no active issuer key; run `healthcode keys init` first."
    default_zh = "没有可用的签发密钥，请先运行 `healthcode keys init`。"


class KeyStorePermissionError(KeyStoreError):
    code = "key_permissions"
    default_en = "A private key file is readable by other users; refusing to use it."
    default_zh = "私钥文件可被其他用户读取，拒绝使用。"


class HolderKeyError(PassError):
    code = "holder_key_invalid"
    default_en = "The holder device key cannot be used."
    default_zh = "持有人设备密钥不可用。"


class QRDecodeError(MalformedPassError):
    code = "qr_unreadable"
    default_en = "No health pass QR code could be read from the image."
    default_zh = "无法从图片中读取通行码二维码。"
