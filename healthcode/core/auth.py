"""Who is calling: guard and admin tokens, and holders' device-signed requests.

* **Tokens** (guards, admins): ``hc_<role>_<id>.<secret>``. Only SHA-256 of the
  secret is stored; a token is shown once, at creation; it can be revoked.
* **Holders** sign each request with the device key bound at enrollment (the
  same key a pass is bound to)::

      Authorization: HC-Device subject=<subject id>, ts=<unix ms>, sig=<base64url>

  over ``"HC-DEVICE-1\\n" + METHOD + "\\n" + TARGET + "\\n" + ts + "\\n" + sha256(body)``,
  where TARGET is the path as sent and, when there is a query string,
  ``"?"`` and the query string as sent (``/me/status?x=1``). A signature older
  or newer than ``MAX_SKEW`` is refused, and each signed request is accepted
  once: the digest of its signed text is stored until it would be stale anyway
  (:mod:`healthcode.core.replay`), so a captured request cannot be sent again.
* A revoked token is refused at once by the process that revoked it, and by
  every other worker within a second: revocations change the *tokens revision*
  (:func:`tokens_revision`), which token caches read at most once a second.
  With Redis configured, a revocation is also published
  (:mod:`healthcode.core.shared`) and every worker of every node empties its
  token cache at once; the revision read stays, for a node that missed it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
import weakref
from collections.abc import Callable

import attrs
import sqlalchemy as sa
from attrs import define, frozen
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.clock import now_utc
from healthcode.core.errors import HealthcodeError
from healthcode.core.passes.codec import PrivateKey, load_public_der, sign_raw, verify_raw
from healthcode.core.privacy import subject_key_bytes
from healthcode.core.replay import PURPOSE_REQUEST, use_once
from healthcode.core.shared import EVENT_TOKENS, publish_event
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, write_audit

ROLES = ("admin", "guard")
MAX_SKEW = dt.timedelta(seconds=60)
_MAX_SKEW_MS = int(MAX_SKEW.total_seconds() * 1000)
TOKENS_REVISION = "tokens_revision"
"""``operator_meta`` row changed by every token revocation (a random value)."""
SIGNING_CONTEXT = b"HC-DEVICE-1"

_TOKEN = re.compile(r"hc_(admin|guard)_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})")
_DEVICE_AUTH = re.compile(
    r"HC-Device\s+subject=([^,\s]{0,200}),\s*ts=(\d{1,15}),\s*sig=([A-Za-z0-9_-]{20,200}={0,2})"
)
_SUBJECT_ID = re.compile(r"[0-9a-f]{64}")


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


class SubjectUnknownError(AuthError):
    code = "subject_unknown"
    default_en = (
        "No holder is enrolled with this subject id; check the id printed at enrollment, "
        "or enroll first."
    )
    default_zh = "没有以此主体编号登记的持有人；请核对登记时显示的主体编号，或先登记。"


class StaleRequestError(AuthError):
    code = "stale_request"
    default_en = "The request's signature is too old or from the future; check the phone's clock."
    default_zh = "请求签名已过期或时间超前，请检查手机时间。"


class RequestReplayedError(AuthError):
    code = "request_replayed"
    default_en = "This signed request was already used; sign each request afresh."
    default_zh = "该签名请求已被使用过，每次请求须重新签名。"


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


# Revocations made through each open Database of this process: a token cache
# in the same process drops its entries at once, without waiting for its next
# read of the tokens revision.
_revoked_here: weakref.WeakKeyDictionary[Database, int] = weakref.WeakKeyDictionary()


def local_revocations(db: Database) -> int:
    """How many tokens this process has revoked through ``db``."""
    return _revoked_here.get(db, 0)


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
            await _bump_tokens_revision(conn, db.backend)
            await write_audit(conn, "token_revoke", {"token_id": token_id})
    if changed:
        _revoked_here[db] = _revoked_here.get(db, 0) + 1
        await publish_event(db, EVENT_TOKENS)
    return changed


async def _bump_tokens_revision(conn: AsyncConnection, backend: str) -> None:
    meta = tables.operator_meta
    insert = (sqlite.insert if backend == "sqlite" else postgresql.insert)(meta).values(
        name=TOKENS_REVISION, value=secrets.token_hex(16)
    )
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=[meta.c.name], set_={"value": insert.excluded.value}
        )
    )


async def tokens_revision(db: Database) -> str | None:
    """A value that changes with every token revocation (None: none yet).

    One primary-key read: token caches call it at most once a second."""
    meta = tables.operator_meta
    async with db.begin() as conn:
        return (
            await conn.execute(sa.select(meta.c.value).where(meta.c.name == TOKENS_REVISION))
        ).scalar_one_or_none()


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


def request_target(path: str, query: str = "") -> str:
    """What the signature covers of the URL: the path, and ``?query`` when there is one."""
    return f"{path}?{query}" if query else path


def request_message(method: str, target: str, ts_ms: int, body: bytes) -> bytes:
    """The text a holder signs. ``target``: the path with its query string, as sent."""
    return b"\n".join(
        (
            SIGNING_CONTEXT,
            method.upper().encode(),
            target.encode(),
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
    """The ``Authorization`` header value for a holder's request (client side).

    ``path``: the request target exactly as it will be sent, with its query
    string (``/me/status?day=2026-11-26``). Each request needs its own
    signature: the service accepts a signed request once.
    """
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
    """Check a device-signed request against the device key stored at enrollment,
    and accept it once. ``path``: the request target, with ``?query`` when the
    request has one (:func:`request_target`)."""
    if not authorization or not authorization.startswith("HC-Device "):
        raise AuthError()
    match = _DEVICE_AUTH.fullmatch(authorization.strip())
    if match is None:
        raise DeviceSignatureError(details={"reason": "header_format"})
    subject_id, ts_text, sig_text = match.groups()
    if not _SUBJECT_ID.fullmatch(subject_id):
        # A subject id is 64 lower-case hex digits: this one names nobody.
        raise SubjectUnknownError(details={"reason": "subject_format"})
    now = now or now_utc()
    ts_ms = int(ts_text)
    # Compared as integers: a timestamp far outside the datetime range (15
    # digits is year 33658) is stale, not a crash.
    if abs(int(now.timestamp() * 1000) - ts_ms) > _MAX_SKEW_MS:
        raise StaleRequestError(details={"max_skew_s": int(MAX_SKEW.total_seconds())})
    async with db.begin() as conn:
        row = (
            await conn.execute(
                sa.select(tables.subjects.c.device_public_key).where(
                    tables.subjects.c.subject_key == subject_key_bytes(subject_id)
                )
            )
        ).first()
    if row is None:
        raise SubjectUnknownError(details={"reason": "not_enrolled"})
    if row.device_public_key is None:  # e.g. a dependant: no device of their own
        raise DeviceSignatureError(details={"reason": "no_device_key"})
    try:
        signature = _unb64(sig_text)
        key = load_public_der(bytes(row.device_public_key))
    except (ValueError, HealthcodeError):
        raise DeviceSignatureError(details={"reason": "signature_format"}) from None
    message = request_message(method, path, ts_ms, body)
    if not verify_raw(key, signature, message):
        raise DeviceSignatureError(details={"reason": "bad_signature"})
    # Keyed by what was signed, not by the signature: an ECDSA signature can be
    # rewritten into another valid one, the signed text cannot.
    expires_at = dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC) + MAX_SKEW
    if not await use_once(
        db, PURPOSE_REQUEST, subject_id.encode() + b"\n" + message, expires_at=expires_at, now=now
    ):
        raise RequestReplayedError()
    return Caller(role="holder", subject_id=subject_id)


# --- per worker: checked tokens ---------------------------------------------------

# Checked tokens, kept briefly so that a guard's scans do not each cost a
# token read. A revocation empties the cache at once in the process that made
# it, and in every other worker within TOKEN_RECHECK_SECONDS.
TOKEN_CACHE_SECONDS = 30.0
TOKEN_RECHECK_SECONDS = 1.0
_TOKEN_CACHE_MAX = 10_000


@define
class TokenCache:
    """Guard and admin tokens already checked, per worker.

    Like the online revocation set (``PassService.is_revoked``), it is brought
    up to date at most once a ``TOKEN_RECHECK_SECONDS``, here with one
    primary-key read of the tokens revision, which every revocation changes.
    """

    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds; tests drive it."""
    entries: dict[str, tuple[float, Caller]] = attrs.field(factory=dict)
    revision: str | None = None
    """The tokens revision the entries were checked under."""
    revoked_here: int = 0
    """Revocations this process made through the database, when last looked at."""
    checked_at: float = float("-inf")

    def drop_all(self) -> None:
        """Forget every checked token (a revocation was published); the next
        call also rereads the tokens revision."""
        self.entries.clear()
        self.checked_at = float("-inf")

    async def caller(self, db: Database, header: str) -> Caller:
        now = self.clock()
        if local_revocations(db) != self.revoked_here:
            self.revoked_here = local_revocations(db)
            self.entries.clear()
        if now - self.checked_at >= TOKEN_RECHECK_SECONDS:
            revision = await tokens_revision(db)
            self.checked_at = now
            if revision != self.revision:
                self.revision = revision
                self.entries.clear()
        cached = self.entries.get(header)
        if cached is not None and cached[0] > now:
            return cached[1]
        caller = await authenticate_token(db, header or None)
        if len(self.entries) >= _TOKEN_CACHE_MAX:
            self.entries.clear()
        self.entries[header] = (now + TOKEN_CACHE_SECONDS, caller)
        return caller
