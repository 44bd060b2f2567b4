"""Who is calling: guard and admin tokens, and holders' device-signed requests.

* **Tokens** (guards, admins): ``hc_<role>_<id>.<secret>``. Only SHA-256 of the
  secret is stored; a token is shown once, at creation; it can be revoked.
* **Holders** sign each request with the device key bound at enrollment (the
  same key a pass is bound to)::

      Authorization: HC-Device subject=<subject id>, ts=<unix ms>, sig=<base64url>

  over ``"HC-DEVICE-1\\n" + METHOD + "\\n" + PATH + "\\n" + ts + "\\n" + sha256(body)``.
  A signature older or newer than ``MAX_SKEW`` is refused, so a captured
  request is useless after a minute.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets

import sqlalchemy as sa
from attrs import frozen

from healthcode.core.clock import now_utc
from healthcode.core.errors import HealthcodeError
from healthcode.core.passes.codec import PrivateKey, load_public_der, sign_raw, verify_raw
from healthcode.core.privacy_crypto import subject_key_bytes
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, write_audit

ROLES = ("admin", "guard")
MAX_SKEW = dt.timedelta(seconds=60)
SIGNING_CONTEXT = b"HC-DEVICE-1"

_TOKEN = re.compile(r"hc_(admin|guard)_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})")
_DEVICE_AUTH = re.compile(
    r"HC-Device\s+subject=([0-9a-f]{64}),\s*ts=(\d{1,15}),\s*sig=([A-Za-z0-9_-]{20,200}={0,2})"
)


class AuthError(HealthcodeError):
    code = "unauthorized"
    default_en = "Authentication is required."
    default_zh = "需要身份认证。"
    http_status = 401


class InvalidTokenError(AuthError):
    code = "invalid_token"
    default_en = "The token is not valid or has been revoked."
    default_zh = "令牌无效或已被吊销。"


class ForbiddenError(AuthError):
    code = "forbidden"
    default_en = "This is not allowed for your role."
    default_zh = "您的角色无权执行此操作。"
    http_status = 403


class DeviceSignatureError(AuthError):
    code = "device_signature_invalid"
    default_en = "The request is not signed by the device this person enrolled with."
    default_zh = "请求未由登记时绑定的设备签名。"


class StaleRequestError(AuthError):
    code = "stale_request"
    default_en = "The request's signature is too old or from the future; check the phone's clock."
    default_zh = "请求签名已过期或时间超前，请检查手机时间。"


@frozen
class Caller:
    role: str
    """``admin``, ``guard`` or ``holder``."""
    token_id: str | None = None
    subject_id: str | None = None


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_token(
    db: Database, role: str, label: str, *, now: dt.datetime | None = None
) -> str:
    """A new token for ``role``; the only time its secret is ever shown."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    label = label.strip()[:64] or role
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    async with db.begin() as conn:
        await conn.execute(
            tables.api_tokens.insert().values(
                token_id=token_id,
                role=role,
                label=label,
                secret_hash=_hash(secret),
                created_at=now or now_utc(),
            )
        )
        await write_audit(conn, "token_create", {"token_id": token_id, "role": role})
    return f"hc_{role}_{token_id}.{secret}"


async def revoke_token(db: Database, token_id: str, *, now: dt.datetime | None = None) -> bool:
    async with db.begin() as conn:
        result = await conn.execute(
            tables.api_tokens.update()
            .where(tables.api_tokens.c.token_id == token_id)
            .where(tables.api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now or now_utc())
        )
        changed = bool(result.rowcount)
        if changed:
            await write_audit(conn, "token_revoke", {"token_id": token_id})
    return changed


async def list_tokens(db: Database) -> list[dict[str, str | None]]:
    t = tables.api_tokens
    async with db.begin() as conn:
        rows = (await conn.execute(sa.select(t).order_by(t.c.created_at))).all()
    return [
        {
            "token_id": row.token_id,
            "role": row.role,
            "label": row.label,
            "created_at": row.created_at.isoformat(),
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        }
        for row in rows
    ]


async def authenticate_token(db: Database, authorization: str | None) -> Caller:
    """``Authorization: Bearer hc_<role>_<id>.<secret>`` -> the caller."""
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError()
    match = _TOKEN.fullmatch(authorization[len("Bearer ") :].strip())
    if match is None:
        raise InvalidTokenError()
    role, token_id, secret = match.groups()
    t = tables.api_tokens
    async with db.begin() as conn:
        row = (
            await conn.execute(
                sa.select(t.c.role, t.c.secret_hash, t.c.revoked_at).where(t.c.token_id == token_id)
            )
        ).first()
    if (
        row is None
        or row.revoked_at is not None
        or row.role != role
        or not hmac.compare_digest(bytes(row.secret_hash), _hash(secret))
    ):
        raise InvalidTokenError()
    return Caller(role=role, token_id=token_id)


# --- holders ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def request_message(method: str, path: str, ts_ms: int, body: bytes) -> bytes:
    return b"\n".join(
        (
            SIGNING_CONTEXT,
            method.upper().encode(),
            path.encode(),
            str(ts_ms).encode(),
            hashlib.sha256(body).hexdigest().encode(),
        )
    )


def sign_request(
    key: PrivateKey,
    subject_id: str,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    now: dt.datetime | None = None,
) -> str:
    """The ``Authorization`` header value for a holder's request (client side)."""
    ts_ms = int((now or now_utc()).timestamp() * 1000)
    signature = sign_raw(key, request_message(method, path, ts_ms, body))
    return f"HC-Device subject={subject_id}, ts={ts_ms}, sig={_b64(signature)}"


async def authenticate_holder(
    db: Database,
    authorization: str | None,
    *,
    method: str,
    path: str,
    body: bytes,
    now: dt.datetime | None = None,
) -> Caller:
    """Check a device-signed request against the device key stored at enrollment."""
    if not authorization or not authorization.startswith("HC-Device "):
        raise AuthError()
    match = _DEVICE_AUTH.fullmatch(authorization.strip())
    if match is None:
        raise DeviceSignatureError(details={"reason": "header_format"})
    subject_id, ts_text, sig_text = match.groups()
    now = now or now_utc()
    signed_at = dt.datetime.fromtimestamp(int(ts_text) / 1000, dt.UTC)
    if abs(now - signed_at) > MAX_SKEW:
        raise StaleRequestError(details={"max_skew_s": int(MAX_SKEW.total_seconds())})
    async with db.begin() as conn:
        row = (
            await conn.execute(
                sa.select(tables.subjects.c.device_public_key).where(
                    tables.subjects.c.subject_key == subject_key_bytes(subject_id)
                )
            )
        ).first()
    if row is None or row.device_public_key is None:
        raise DeviceSignatureError(details={"reason": "unknown_device"})
    try:
        signature = _unb64(sig_text)
        key = load_public_der(bytes(row.device_public_key))
    except (ValueError, HealthcodeError):
        raise DeviceSignatureError(details={"reason": "signature_format"}) from None
    if not verify_raw(key, signature, request_message(method, path, int(ts_text), body)):
        raise DeviceSignatureError(details={"reason": "bad_signature"})
    return Caller(role="holder", subject_id=subject_id)
