"""Service settings, from the environment (so that every worker of
``healthcode serve --workers N`` sees the same) or given to ``create_app``."""

from __future__ import annotations

import os
from pathlib import Path

from attrs import frozen

MiB = 1024 * 1024


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        parsed = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {value!r}") from None
    if parsed <= 0:
        raise ValueError(f"{name} must be positive")
    return parsed


def _names_env(name: str) -> tuple[str, ...]:
    """A comma-separated list of names (blanks dropped, order and duplicates tidied)."""
    value = os.environ.get(name) or ""
    return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


@frozen
class Settings:
    database_url: str | None = None
    """``HEALTHCODE_DATABASE_URL``; None: the embedded SQLite file."""
    secrets_file: Path | None = None
    """``HEALTHCODE_SECRETS_FILE``; None: the default location."""
    keys_dir: Path | None = None
    """``HEALTHCODE_KEYS_DIR``: the issuer key store; None: the default location."""
    trust_file: Path | None = None
    """``HEALTHCODE_TRUST_FILE``: the signed trust list; None: the default location."""
    max_body_bytes: int = 12 * MiB
    """Largest request body (an enrollment carries several images)."""
    max_in_flight: int = 64
    """Requests handled at once per worker; beyond it: 503 with Retry-After."""
    rate_limit_per_minute: int = 1200
    """Requests per client IP per minute; beyond it: 429 with Retry-After."""
    caller_rate_per_minute: int = 600
    """Requests per guard token and per holder per minute; beyond it: 429."""
    retry_after_seconds: int = 2
    run_purge: bool = True
    """Purge day-scoped data after each 24:00 Asia/Shanghai inside the server."""
    migrate_on_start: bool = True
    redis_url: str | None = None
    """``HEALTHCODE_REDIS_URL`` (``redis://127.0.0.1:6379/0``): the fast state several
    nodes share (rate limits, used live codes and signed requests, revocation
    fan-out); None: one node, in-process state and the database."""
    liveness_actions: tuple[str, ...] = ()
    """``HEALTHCODE_LIVENESS_ACTIONS`` (comma-separated, e.g. ``turn_left,turn_right``):
    draw liveness challenges from these registered actions only; empty: all of them."""
    demo: bool = False
    """``HEALTHCODE_DEMO=1`` (``healthcode serve --demo``): this instance accepts
    ``healthcode demo`` enrollments. Never set it on an instance that serves people."""

    @classmethod
    def from_env(cls) -> Settings:
        secrets = os.environ.get("HEALTHCODE_SECRETS_FILE")
        keys = os.environ.get("HEALTHCODE_KEYS_DIR")
        trust = os.environ.get("HEALTHCODE_TRUST_FILE")
        return cls(
            database_url=os.environ.get("HEALTHCODE_DATABASE_URL") or None,
            secrets_file=Path(secrets) if secrets else None,
            keys_dir=Path(keys) if keys else None,
            trust_file=Path(trust) if trust else None,
            max_body_bytes=_int_env("HEALTHCODE_MAX_BODY_BYTES", 12 * MiB),
            max_in_flight=_int_env("HEALTHCODE_MAX_IN_FLIGHT", 64),
            rate_limit_per_minute=_int_env("HEALTHCODE_RATE_LIMIT_PER_MINUTE", 1200),
            caller_rate_per_minute=_int_env("HEALTHCODE_CALLER_RATE_PER_MINUTE", 600),
            run_purge=os.environ.get("HEALTHCODE_RUN_PURGE", "1") not in ("0", "false", "no"),
            migrate_on_start=os.environ.get("HEALTHCODE_MIGRATE_ON_START", "1")
            not in ("0", "false", "no"),
            redis_url=os.environ.get("HEALTHCODE_REDIS_URL", "").strip() or None,
            liveness_actions=_names_env("HEALTHCODE_LIVENESS_ACTIONS"),
            demo=os.environ.get("HEALTHCODE_DEMO", "0") in ("1", "true", "yes"),
        )
