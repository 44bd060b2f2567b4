"""Issuer keys on disk: one region's signing keys, with rotation.

Layout of the key directory (``HEALTHCODE_KEYS_DIR``, default under the
platform data directory)::

    issuer.json          region code, name, and each key's public facts
    <kid-hex>.pem        PKCS#8 private key, mode 0600
    pair-<region>.key    keyed-hash secret shared with one peer region, mode 0600

Rotation makes a new key the signer and keeps the old one for verification
until every pass it signed has expired (the next 24:00 after rotation, plus a
margin for clock skew); ``prune`` then deletes its private key.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen
from cryptography.hazmat.primitives import serialization

from healthcode.core.clock import next_cutoff, now_utc
from healthcode.core.passes.codec import (
    ALGORITHMS,
    Algorithm,
    PrivateKey,
    generate_private_key,
    kid_for,
    public_key_der,
)
from healthcode.core.passes.errors import (
    KeyStoreError,
    KeyStorePermissionError,
    NoActiveKeyError,
)
from healthcode.core.passes.models import IssuerKeyInfo

KEYS_DIR_ENV = "HEALTHCODE_KEYS_DIR"
ROTATION_GRACE = dt.timedelta(minutes=10)
"""Added to a retired key's last pass expiry: verifiers' clocks may lag."""
_META = "issuer.json"


def default_keys_dir() -> Path:
    configured = os.environ.get(KEYS_DIR_ENV)
    if configured:
        return Path(configured)
    import platformdirs

    return platformdirs.user_data_path("healthcode") / "keys"


@frozen
class SigningKey:
    """The private key a region signs with now (never logged)."""

    private_key: PrivateKey = attrs.field(repr=False)
    kid: bytes
    alg: Algorithm
    region_code: str
    name: str


def _from_iso(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _write_private(path: Path, data: bytes) -> None:
    # Created with 0600 from the start: no window where the key is readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _read_private(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyStoreError(details={"reason": "missing_key_file", "file": path.name}) from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStorePermissionError(details={"file": path.name, "mode": oct(mode & 0o777)})
    return path.read_bytes()


class KeyStore:
    """The key directory of one region's instance."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_keys_dir()

    # --- metadata ------------------------------------------------------------

    def exists(self) -> bool:
        return (self.path / _META).is_file()

    def _load_meta(self) -> dict[str, Any]:
        try:
            meta = json.loads((self.path / _META).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NoActiveKeyError(details={"reason": "not_initialised"}) from None
        except (OSError, ValueError):
            raise KeyStoreError(details={"reason": "metadata_unreadable"}) from None
        if not isinstance(meta, dict) or not isinstance(meta.get("keys"), list):
            raise KeyStoreError(details={"reason": "metadata_unreadable"})
        return meta

    def _save_meta(self, meta: dict[str, Any]) -> None:
        tmp = self.path / (_META + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path / _META)

    @property
    def region_code(self) -> str:
        return str(self._load_meta()["region_code"])

    @property
    def name(self) -> str:
        return str(self._load_meta()["name"])

    def list_keys(self) -> list[IssuerKeyInfo]:
        """Every key still on disk, newest first."""
        meta = self._load_meta()
        out = [
            IssuerKeyInfo(
                kid=bytes.fromhex(k["kid"]),
                alg=k["alg"],
                public_key_der=bytes.fromhex(k["public_key"]),
                region_code=meta["region_code"],
                created_at=dt.datetime.fromisoformat(k["created_at"]),
                retired_at=_from_iso(k.get("retired_at")),
                verify_until=_from_iso(k.get("verify_until")),
            )
            for k in meta["keys"]
        ]
        return sorted(out, key=lambda k: k.created_at, reverse=True)

    def verification_keys(self, now: dt.datetime | None = None) -> list[IssuerKeyInfo]:
        """Keys whose passes may still be shown at ``now``."""
        now = now or now_utc()
        return [k for k in self.list_keys() if k.verify_until is None or k.verify_until > now]

    # --- lifecycle -----------------------------------------------------------

    def _new_key(self, meta: dict[str, Any], alg: Algorithm, now: dt.datetime) -> IssuerKeyInfo:
        if alg not in ALGORITHMS:
            raise KeyStoreError(details={"reason": "algorithm", "algorithm": alg})
        private = generate_private_key(alg)
        public = private.public_key()
        kid = kid_for(public)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self.path / f"{kid.hex()}.pem", pem)
        meta["keys"].append(
            {
                "kid": kid.hex(),
                "alg": alg,
                "public_key": public_key_der(public).hex(),
                "created_at": now.isoformat(),
                "retired_at": None,
                "verify_until": None,
            }
        )
        self._save_meta(meta)
        return next(k for k in self.list_keys() if k.kid == kid)

    def init(
        self,
        region_code: str,
        name: str,
        *,
        alg: Algorithm = "ES256",
        now: dt.datetime | None = None,
    ) -> IssuerKeyInfo:
        """Create the directory and the first key; refuse to overwrite."""
        if self.exists():
            raise KeyStoreError(
                "The key directory is already initialised.",
                "密钥目录已初始化。",
                code="key_store_exists",
            )
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.name == "posix":
            self.path.chmod(0o700)
        meta: dict[str, Any] = {"region_code": region_code, "name": name, "keys": []}
        return self._new_key(meta, alg, now or now_utc())

    def rotate(
        self, *, alg: Algorithm | None = None, now: dt.datetime | None = None
    ) -> IssuerKeyInfo:
        """Start signing with a new key; the old one verifies until its passes expire."""
        now = now or now_utc()
        meta = self._load_meta()
        previous_alg: Algorithm = "ES256"
        for k in meta["keys"]:
            if k.get("retired_at") is None:
                previous_alg = k["alg"]
                k["retired_at"] = now.isoformat()
                k["verify_until"] = (next_cutoff(now) + ROTATION_GRACE).isoformat()
        return self._new_key(meta, alg or previous_alg, now)

    def prune(self, now: dt.datetime | None = None) -> list[bytes]:
        """Delete keys no pass can need any more; returns their kids."""
        now = now or now_utc()
        meta = self._load_meta()
        keep, gone = [], []
        for k in meta["keys"]:
            until = _from_iso(k.get("verify_until"))
            if until is not None and until <= now:
                gone.append(bytes.fromhex(k["kid"]))
                (self.path / f"{k['kid']}.pem").unlink(missing_ok=True)
            else:
                keep.append(k)
        meta["keys"] = keep
        self._save_meta(meta)
        return gone

    def active(self) -> SigningKey:
        """The current signing key, loaded from its 0600 file."""
        meta = self._load_meta()
        current = [k for k in meta["keys"] if k.get("retired_at") is None]
        if not current:
            raise NoActiveKeyError()
        entry = current[-1]
        pem = _read_private(self.path / f"{entry['kid']}.pem")
        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise KeyStoreError(details={"reason": "private_key_unreadable"}) from None
        if not isinstance(private, PrivateKey):
            raise KeyStoreError(details={"reason": "private_key_type"})
        kid = kid_for(private.public_key())
        if kid.hex() != entry["kid"]:
            raise KeyStoreError(details={"reason": "kid_mismatch"})
        return SigningKey(
            private_key=private,
            kid=kid,
            alg=entry["alg"],
            region_code=meta["region_code"],
            name=meta["name"],
        )

    # --- secrets shared with one peer (status sharing) ----------------------

    def pair_key(self, peer_region: str, *, create: bool = False) -> bytes:
        """The keyed-hash secret agreed with ``peer_region`` (32 bytes)."""
        path = self.path / f"pair-{peer_region}.key"
        if not path.exists():
            if not create:
                raise KeyStoreError(
                    "No shared secret with this peer region.",
                    "尚未与该地区约定共享密钥。",
                    code="pair_key_missing",
                    details={"peer": peer_region},
                )
            self.set_pair_key(peer_region, secrets.token_bytes(32))
        try:
            return bytes.fromhex(_read_private(path).decode("ascii").strip())
        except ValueError:
            raise KeyStoreError(details={"reason": "pair_key_unreadable"}) from None

    def set_pair_key(self, peer_region: str, key: bytes) -> None:
        if len(key) < 16:
            raise KeyStoreError(details={"reason": "pair_key_too_short"})
        path = self.path / f"pair-{peer_region}.key"
        path.unlink(missing_ok=True)
        _write_private(path, key.hex().encode("ascii"))
