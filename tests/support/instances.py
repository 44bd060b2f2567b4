"""A service instance of a test's own: SQLite database, secrets and the
region's issuer key in a temporary directory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from healthcode.api.settings import Settings
from healthcode.core.passes import KeyStore
from healthcode.core.storage.database import init_instance


def sqlite_instance(home: Path, **overrides: Any) -> Settings:
    """Settings for a new instance in ``home`` (region 110000, 北京市): the
    database initialised, the secrets written, the issuer key made;
    ``overrides`` are further ``Settings`` fields."""
    url = f"sqlite:///{home / 'hc.db'}"
    secrets = home / "secrets.json"
    asyncio.run(init_instance(url, secrets))
    KeyStore(home / "keys").init("110000", "北京市")
    return Settings(
        database_url=url,
        secrets_file=secrets,
        keys_dir=home / "keys",
        trust_file=home / "trust.hct",
        **overrides,
    )
