"""Signed passes, live presentations, verification, trust lists and revocation.

The public surface; see each module for the formats:

* :mod:`~healthcode.core.passes.keys` -- issuer keys on disk, rotation;
* :mod:`~healthcode.core.passes.passes` -- issuing passes, presentations;
* :mod:`~healthcode.core.passes.holder` -- the holder's device client;
* :mod:`~healthcode.core.passes.verify` -- the guard's verifier (offline);
* :mod:`~healthcode.core.passes.service` -- issuing, recording and revoking
  passes in the database, a holder's current status;
* :mod:`~healthcode.core.passes.verification` -- online verification at a
  node (own revocations, one use per live code).
* :mod:`~healthcode.core.passes.trust` -- trust lists, mutual recognition;
* :mod:`~healthcode.core.passes.revocation` -- compact signed revocation lists;
* :mod:`~healthcode.core.passes.signed` -- signing and opening those signed
  documents (also the shared status lists), and the times they carry;
* :mod:`~healthcode.core.passes.qr` -- QR rendering and reading.

Status lists shared with peer regions are signed with the same keys but
belong to the status domain: :mod:`healthcode.core.status.sharing`.
"""

from __future__ import annotations

from healthcode.core.passes.holder import HolderDevice
from healthcode.core.passes.keys import KeyStore, SigningKey, default_keys_dir
from healthcode.core.passes.models import IssuedPass, IssuerKeyInfo, Notice, PassClaims, Verdict
from healthcode.core.passes.passes import issue_pass, make_presentation, read_pass
from healthcode.core.passes.revocation import (
    RevocationList,
    build_revocation_list,
    load_revocation_list,
)
from healthcode.core.passes.trust import (
    TrustList,
    TrustStore,
    export_issuer,
    load_trust_list,
    read_issuer_export,
)
from healthcode.core.passes.verify import Verifier

__all__ = [
    "HolderDevice",
    "IssuedPass",
    "IssuerKeyInfo",
    "KeyStore",
    "Notice",
    "PassClaims",
    "RevocationList",
    "SigningKey",
    "TrustList",
    "TrustStore",
    "Verdict",
    "Verifier",
    "build_revocation_list",
    "default_keys_dir",
    "export_issuer",
    "issue_pass",
    "load_revocation_list",
    "load_trust_list",
    "make_presentation",
    "read_issuer_export",
    "read_pass",
]
