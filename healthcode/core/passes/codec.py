"""Low-level encoding shared by passes, presentations and signed lists.

* text: a short prefix, then base45 of zlib-compressed CBOR;
* signatures: COSE_Sign1 (RFC 9052) with ES256 (-7) or EdDSA (-8), the key id
  in the protected header so that it is covered by the signature;
* keys: the key id is the first 8 bytes of SHA-256 over the DER
  SubjectPublicKeyInfo, as EU DCC derives its kids.

Signing goes through the ``cwt`` library; verification is done here with
``cbor2`` and ``cryptography`` directly, because a verifier must refuse
every malformed input with a precise code of ours, and must be fast.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from typing import Any, Literal

import cbor2
from attrs import frozen
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from healthcode.core.passes.base45 import b45decode, b45encode
from healthcode.core.passes.errors import (
    MalformedPassError,
    PassError,
    PassTooLargeError,
    UnknownCriticalHeaderError,
    UnsupportedAlgorithmError,
)

Algorithm = Literal["ES256", "EdDSA"]
ALGORITHMS: dict[Algorithm, int] = {"ES256": -7, "EdDSA": -8}
ALGORITHM_BY_ID: dict[int, Algorithm] = {v: k for k, v in ALGORITHMS.items()}

COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_CRIT = 2
HEADER_KID = 4
KID_LENGTH = 8

MAX_TEXT_LENGTH = 4096
"""No genuine pass or presentation comes near this many characters."""
MAX_INFLATED = 4096
"""Cap on a pass's decompressed size: a decompression bomb stops here."""
MAX_LIST_SIZE = 16 * 1024 * 1024
"""Cap on a signed list's decompressed size (trust, revocation, status lists)."""

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


# --- text wrapping ----------------------------------------------------------------


def wrap(prefix: str, payload: bytes) -> str:
    return prefix + b45encode(zlib.compress(payload, 9))


def unwrap(
    prefix: str,
    text: str,
    *,
    error: type[PassError] = MalformedPassError,
    max_size: int = MAX_INFLATED,
) -> bytes:
    """Strip ``prefix``, base45-decode and inflate with a size cap.

    ``max_size`` caps the decompressed bytes (and, times 3, the text): passes
    keep the small default; signed lists pass a larger one.
    """
    if len(text) > (MAX_TEXT_LENGTH if max_size <= MAX_INFLATED else 2 * max_size):
        raise PassTooLargeError(details={"reason": "text_length"})
    if not text.startswith(prefix):
        raise error(details={"reason": "prefix", "expected": prefix})
    try:
        compressed = b45decode(text[len(prefix) :])
    except MalformedPassError as exc:
        raise error(details=exc.details) from None
    return inflate(compressed, error=error, max_size=max_size)


def inflate(
    data: bytes, *, error: type[PassError] = MalformedPassError, max_size: int = MAX_INFLATED
) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max_size)
    except zlib.error:
        raise error(details={"reason": "zlib"}) from None
    if inflater.unconsumed_tail:
        raise PassTooLargeError(details={"reason": "inflated_size", "limit": max_size})
    if not inflater.eof or inflater.unused_data:
        raise error(details={"reason": "zlib"})
    return out


def cbor_loads(data: bytes, *, error: type[PassError] = MalformedPassError) -> Any:
    """Decode exactly one CBOR item; trailing bytes are refused."""
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except Exception:
        raise error(details={"reason": "cbor"}) from None
    if stream.tell() != len(data):
        raise error(details={"reason": "cbor_trailing_bytes"})
    return value


# --- keys ---------------------------------------------------------------------------


def public_key_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def kid_for(key: PublicKey) -> bytes:
    """The key id: first 8 bytes of SHA-256 over the DER public key."""
    return hashlib.sha256(public_key_der(key)).digest()[:KID_LENGTH]


def algorithm_of(key: PublicKey | PrivateKey) -> Algorithm:
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise UnsupportedAlgorithmError(details={"curve": key.curve.name})
        return "ES256"
    return "EdDSA"


def load_public_der(der: bytes) -> PublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        raise MalformedPassError(details={"reason": "public_key"}) from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise UnsupportedAlgorithmError(details={"reason": "key_type"})


def generate_private_key(alg: Algorithm) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise UnsupportedAlgorithmError(details={"algorithm": alg})


def sign_raw(key: PrivateKey, message: bytes) -> bytes:
    """Sign in COSE form: ECDSA as fixed-size r||s, EdDSA as is."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    r, s = decode_dss_signature(key.sign(message, _ECDSA_SHA256))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_raw(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """Check a COSE-form signature; any malformed signature is just 'no'."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
            return True
        if len(signature) != 64:
            return False
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        key.verify(der, message, _ECDSA_SHA256)
        return True
    except (InvalidSignature, ValueError):
        return False


def cose_key_of(key: PublicKey) -> dict[int, Any]:
    """The COSE_Key map of a holder device public key (for the ``cnf`` claim)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {1: 1, -1: 6, -2: raw}
    numbers = key.public_numbers()
    return {1: 2, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}


def public_key_from_cose(value: Any) -> PublicKey:
    """Parse a COSE_Key map (EC2 P-256 or OKP Ed25519) into a public key."""
    if not isinstance(value, dict):
        raise MalformedPassError(details={"reason": "cose_key"})
    try:
        kty, crv, x = value[1], value[-1], value[-2]
        if kty == 1 and crv == 6 and isinstance(x, bytes) and len(value) == 3:
            return ed25519.Ed25519PublicKey.from_public_bytes(x)
        y = value[-3]
        if (
            kty == 2
            and crv == 1
            and isinstance(x, bytes)
            and isinstance(y, bytes)
            and len(x) == len(y) == 32
            and len(value) == 4
        ):
            # from_encoded_point checks that the point is on the curve.
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
    except (KeyError, ValueError, TypeError):
        pass
    raise MalformedPassError(details={"reason": "cose_key"})


# --- COSE_Sign1 ---------------------------------------------------------------------


@frozen
class Sign1:
    """A structurally valid COSE_Sign1, not yet verified."""

    protected: bytes
    alg: Algorithm
    kid: bytes
    payload: bytes
    signature: bytes

    def to_be_signed(self) -> bytes:
        return sig_structure(self.protected, self.payload)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


_SIGNERS: dict[bytes, tuple[Any, Any]] = {}


def sign1(key: PrivateKey, kid: bytes, payload: bytes) -> bytes:
    """Sign ``payload`` as a tagged COSE_Sign1 through the ``cwt`` library."""
    signer = _SIGNERS.get(kid)
    if signer is None:
        # Imported here: cwt pulls in a large module graph a verifier never needs.
        from cwt import COSE, COSEKey

        if kid_for(key.public_key()) != kid:
            raise ValueError("kid does not belong to this key")
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        alg = algorithm_of(key)
        signer = (
            COSE.new(alg_auto_inclusion=False, kid_auto_inclusion=False),
            COSEKey.from_pem(pem, alg=alg, kid=kid),
        )
        # Keyed by kid, which is derived from the key itself.
        _SIGNERS[kid] = signer
    ctx, cose_key = signer
    out = ctx.encode_and_sign(
        payload, cose_key, protected={HEADER_ALG: ALGORITHMS[algorithm_of(key)], HEADER_KID: kid}
    )
    assert isinstance(out, bytes)
    return out


def parse_sign1(item: Any, *, error: type[PassError] = MalformedPassError) -> Sign1:
    """Check the shape of a decoded COSE_Sign1 and its headers, strictly."""
    protected, unprotected, payload, signature = _sign1_parts(item, error)
    header = cbor_loads(protected, error=error) if protected else {}
    if not isinstance(header, dict):
        raise error(details={"reason": "cose_header"})
    alg, kid = _check_headers(header, unprotected, error)
    return Sign1(protected=protected, alg=alg, kid=kid, payload=payload, signature=signature)


def _sign1_parts(item: Any, error: type[PassError]) -> tuple[bytes, dict[Any, Any], bytes, bytes]:
    """The four members of a (possibly tagged) COSE_Sign1 array, type-checked."""
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise error(details={"reason": "cose_tag"})
        item = item.value
    if not isinstance(item, list) or len(item) != 4:
        raise error(details={"reason": "cose_structure"})
    protected, unprotected, payload, signature = item
    if not (
        isinstance(protected, bytes)
        and isinstance(unprotected, dict)
        and isinstance(payload, bytes)
        and isinstance(signature, bytes)
    ):
        raise error(details={"reason": "cose_types"})
    return protected, unprotected, payload, signature


def _check_headers(
    header: dict[Any, Any], unprotected: dict[Any, Any], error: type[PassError]
) -> tuple[Algorithm, bytes]:
    """The signed algorithm and the key id; nothing else may be in the headers."""
    if HEADER_CRIT in header or HEADER_CRIT in unprotected:
        # We define no critical extension; anything marked critical is unknown.
        raise UnknownCriticalHeaderError(details={"reason": "crit"})
    unknown = [k for k in (*header, *unprotected) if k not in (HEADER_ALG, HEADER_KID)]
    if unknown:
        raise error(details={"reason": "unexpected_header"})
    if HEADER_ALG in unprotected:
        # The algorithm must be signed over, or it could be swapped.
        raise UnsupportedAlgorithmError(details={"reason": "alg_unprotected"})
    alg_id = header.get(HEADER_ALG)
    alg = ALGORITHM_BY_ID.get(alg_id) if isinstance(alg_id, int) else None
    if alg is None:
        raise UnsupportedAlgorithmError(details={"reason": "alg", "alg": repr(alg_id)[:20]})
    if (HEADER_KID in header) == (HEADER_KID in unprotected):
        raise error(details={"reason": "kid_count"})
    kid = header.get(HEADER_KID, unprotected.get(HEADER_KID))
    if not isinstance(kid, bytes) or len(kid) != KID_LENGTH:
        raise error(details={"reason": "kid"})
    return alg, kid
