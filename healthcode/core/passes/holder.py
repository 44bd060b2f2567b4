"""The holder's side: a device key and the live codes it shows.

A phone app would keep the key in its secure element; this Python client
(used by the CLI and the tests) keeps it in a 0600 PEM file.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import attrs
from attrs import frozen
from cryptography.hazmat.primitives import serialization

from healthcode.core.clock import now_utc
from healthcode.core.passes.codec import (
    Algorithm,
    PrivateKey,
    PublicKey,
    generate_private_key,
    public_key_der,
)
from healthcode.core.passes.errors import HolderKeyError
from healthcode.core.passes.passes import make_presentation, read_pass


@frozen
class HolderDevice:
    private_key: PrivateKey = attrs.field(repr=False)

    @classmethod
    def generate(cls, alg: Algorithm = "ES256") -> HolderDevice:
        return cls(generate_private_key(alg))

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    @property
    def public_key_der(self) -> bytes:
        return public_key_der(self.public_key)

    def present(self, pass_text: str, now: dt.datetime | None = None) -> str:
        """A live code (``HCP1:``) for ``pass_text``, signed at ``now``."""
        _, claims = read_pass(pass_text)
        if public_key_der(claims.holder_key) != self.public_key_der:
            raise HolderKeyError(
                "This pass belongs to another device.",
                "该通行码绑定的是另一台设备。",
                code="pass_not_for_this_device",
            )
        return make_presentation(pass_text, self.private_key, now or now_utc())

    def save(self, path: Path | str) -> None:
        path = Path(path)
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)

    @classmethod
    def load(cls, path: Path | str) -> HolderDevice:
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError):
            raise HolderKeyError(details={"reason": "unreadable"}) from None
        if not isinstance(key, PrivateKey):
            raise HolderKeyError(details={"reason": "key_type"})
        return cls(key)
