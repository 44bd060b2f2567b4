"""Operator secrets: the HMAC key behind subject keys and the AES-GCM key(s)
that encrypt face templates at rest.

They live in one JSON file, outside the database on purpose: a stolen
database backup without this file yields neither document numbers (only keyed
hashes) nor face templates (only ciphertext). ``healthcode init`` creates the
file with 0600 permissions; ``HEALTHCODE_SECRETS_FILE`` points elsewhere.
Losing the file makes every stored subject unreachable, so back it up apart
from the database.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets as _random
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import platformdirs
from attrs import frozen

from healthcode.core.storage.errors import (
    SecretsInsecureError,
    SecretsInvalidError,
    SecretsMissingError,
)

SECRETS_ENV = "HEALTHCODE_SECRETS_FILE"
FILE_FORMAT = "healthcode-secrets"
FILE_VERSION = 1
KEY_BYTES = 32


@frozen
class OperatorSecrets:
    """The keys of one operator. Never logged: every key is left out of repr."""

    subject_hmac_key: bytes = attrs.field(repr=False)
    """HMAC-SHA256 key for subject keys (32 bytes)."""
    template_keys: Mapping[str, bytes] = attrs.field(repr=False)
    """Key id -> AES-256-GCM key. Old ids stay so old templates still decrypt."""
    current_template_key_id: str
    """The key id new templates are encrypted with."""

    @property
    def fingerprint(self) -> str:
        """A short non-secret tag of the HMAC key, stored in the database so
        that a wrong secrets file is caught at start instead of finding nobody."""
        tag = hmac.digest(self.subject_hmac_key, b"healthcode/fingerprint/v1", hashlib.sha256)
        return tag[:8].hex()

    @property
    def current_template_key(self) -> bytes:
        return self.template_keys[self.current_template_key_id]


def generate_secrets() -> OperatorSecrets:
    return OperatorSecrets(
        subject_hmac_key=_random.token_bytes(KEY_BYTES),
        template_keys={"t1": _random.token_bytes(KEY_BYTES)},
        current_template_key_id="t1",
    )


def default_secrets_path() -> Path:
    return platformdirs.user_config_path("healthcode", appauthor=False) / "secrets.json"


def secrets_path(path: Path | str | None = None) -> Path:
    """Explicit path, else ``HEALTHCODE_SECRETS_FILE``, else the per-user config dir."""
    if path is not None:
        return Path(path)
    env = os.environ.get(SECRETS_ENV, "").strip()
    return Path(env) if env else default_secrets_path()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    try:
        key = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise SecretsInvalidError(details={"field": what}) from None
    if len(key) != KEY_BYTES:
        raise SecretsInvalidError(details={"field": what, "reason": "wrong_key_length"})
    return key


def _serialise(secrets: OperatorSecrets) -> bytes:
    doc = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "subject_hmac_key": _b64(secrets.subject_hmac_key),
        "template_keys": {kid: _b64(key) for kid, key in secrets.template_keys.items()},
        "current_template_key": secrets.current_template_key_id,
    }
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def _parse(data: bytes) -> OperatorSecrets:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SecretsInvalidError(details={"reason": "not_json"}) from None
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise SecretsInvalidError(details={"reason": "wrong_format"})
    if doc.get("version") != FILE_VERSION:
        raise SecretsInvalidError(details={"reason": "unknown_version"})
    raw_keys = doc.get("template_keys")
    current = doc.get("current_template_key")
    if not isinstance(raw_keys, dict) or not raw_keys or current not in raw_keys:
        raise SecretsInvalidError(details={"field": "template_keys"})
    return OperatorSecrets(
        subject_hmac_key=_unb64(doc.get("subject_hmac_key"), "subject_hmac_key"),
        template_keys={str(k): _unb64(v, "template_keys") for k, v in raw_keys.items()},
        current_template_key_id=str(current),
    )


def load_secrets(path: Path | str | None = None) -> OperatorSecrets:
    """Read the secrets file; refuse one that other users can read."""
    target = secrets_path(path)
    try:
        st = target.stat()
        data = target.read_bytes()
    except FileNotFoundError:
        raise SecretsMissingError(details={"path": str(target)}) from None
    except OSError as exc:
        raise SecretsInvalidError(
            "The operator secrets file cannot be read.",
            "无法读取运营方密钥文件。",
            details={"path": str(target), "errno": exc.errno},
        ) from None
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsInsecureError(
            details={"path": str(target), "mode": oct(stat.S_IMODE(st.st_mode))}
        )
    return _parse(data)


def create_secrets(path: Path | str | None = None) -> tuple[OperatorSecrets, bool]:
    """Create the secrets file unless it exists; return ``(secrets, created)``.

    An existing file is never overwritten: replacing it would orphan every
    enrolled subject. The file appears atomically with mode 0600 (written
    under a temporary name, then hard-linked into place, which fails if a
    concurrent ``init`` got there first).
    """
    target = secrets_path(path)
    if target.exists():
        return load_secrets(target), False
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = generate_secrets()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{_random.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_serialise(fresh))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            return load_secrets(target), False
    finally:
        tmp.unlink(missing_ok=True)
    return fresh, True
