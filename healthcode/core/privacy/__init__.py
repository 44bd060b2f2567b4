"""Privacy: what may be shown of a person, and what is kept of them.

* :mod:`~healthcode.core.privacy.masking` -- masked numbers and surnames for
  displays and passes;
* :mod:`~healthcode.core.privacy.subject_keys` -- keyed hashes of documents
  (subject keys) and the subject ids derived from them;
* :mod:`~healthcode.core.privacy.templates` -- face templates encrypted at
  rest (AES-256-GCM);
* :mod:`~healthcode.core.privacy.secrets` -- the operator secrets file that
  holds the keys of both.

Plugins import the masking helpers from here (``from healthcode.core.privacy
import mask_number``); every name below is public.
"""

from __future__ import annotations

from healthcode.core.privacy.masking import (
    COMPOUND_SURNAMES,
    MASK_CHAR,
    chinese_surname,
    latin_surname,
    mask_number,
)
from healthcode.core.privacy.secrets import (
    SECRETS_ENV,
    OperatorSecrets,
    create_secrets,
    default_secrets_path,
    generate_secrets,
    load_secrets,
    secrets_path,
)
from healthcode.core.privacy.subject_keys import (
    SUBJECT_KEY_BYTES,
    DocumentKeyer,
    canonical_document_key,
    document_key,
    document_key_for,
    subject_id_hex,
    subject_key_bytes,
)
from healthcode.core.privacy.templates import decrypt_template, encrypt_template

__all__ = [
    "COMPOUND_SURNAMES",
    "MASK_CHAR",
    "SECRETS_ENV",
    "SUBJECT_KEY_BYTES",
    "DocumentKeyer",
    "OperatorSecrets",
    "canonical_document_key",
    "chinese_surname",
    "create_secrets",
    "decrypt_template",
    "default_secrets_path",
    "document_key",
    "document_key_for",
    "encrypt_template",
    "generate_secrets",
    "latin_surname",
    "load_secrets",
    "mask_number",
    "secrets_path",
    "subject_id_hex",
    "subject_key_bytes",
]
