"""Liveness challenges: the actions they may ask for, how they are drawn, and
their life in the database (issued, checked, used once, purged).

The actions are not core's: face plugins register them
(``healthcode_liveness_actions``) and core draws each challenge from the
registered ones, so the challenge and the judge always speak the same words.
A challenge is stored when issued and marked used in the same statement that
checks it is unused, so an answer counts once whatever the number of workers.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

import pluggy
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.enrollment.errors import (
    ChallengeExpiredError,
    ChallengeUnknownError,
    ChallengeUsedError,
    DuplicateLivenessActionError,
)
from healthcode.core.enrollment.values import Purpose
from healthcode.core.errors import PluginError
from healthcode.core.models import LivenessAction, LivenessChallenge
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database

DEFAULT_CHALLENGE_LENGTH = 2
CHALLENGE_TTL = dt.timedelta(seconds=90)
CHALLENGE_RETENTION = dt.timedelta(hours=1)
"""Used and expired challenges are kept this long after expiry, then purged."""
DEMO_ACTIONS = ("turn_left", "turn_right", "open_mouth")
"""The actions a demo instance (``serve --demo``) draws from unless the operator
chose others: each can be answered from a still photo (a face turned to one
side, its mirror image for the other side, a photo with the mouth open);
``blink`` and ``nod`` cannot. ``healthcode demo`` asks for another challenge
when a draw needs a photo it was not given."""
MAX_NONCE_LENGTH = 64
"""Issued nonces have 22 characters; a longer one is unknown without a look-up."""

liveness_challenges = tables.liveness_challenges


def liveness_actions(pm: pluggy.PluginManager) -> dict[str, LivenessAction]:
    """Every registered liveness action, by name; two of the same name are an error."""
    actions: dict[str, LivenessAction] = {}
    for batch in pm.hook.healthcode_liveness_actions():
        for action in batch or ():
            if not isinstance(action, LivenessAction):
                raise PluginError(
                    "healthcode_liveness_actions must return LivenessAction records.",
                    "healthcode_liveness_actions 必须返回 LivenessAction 记录。",
                    details={"got": type(action).__name__},
                )
            if action.name in actions:
                raise DuplicateLivenessActionError(details={"action": action.name})
            actions[action.name] = action
    return actions


def restrict_actions(vocabulary: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    """The actions of ``vocabulary`` that ``allowed`` names (an operator's
    restriction, in ``vocabulary``'s order); a ``ValueError`` naming the
    unknown ones when ``allowed`` names an action nobody registered, or when
    it names none."""
    unknown = [name for name in allowed if name not in vocabulary]
    if unknown:
        raise ValueError(
            f"unknown liveness actions {', '.join(unknown)}; registered: {', '.join(vocabulary)}"
        )
    chosen = tuple(name for name in vocabulary if name in allowed)
    if not chosen:
        raise ValueError("at least one liveness action must be allowed")
    return chosen


def draw_challenge(
    vocabulary: Sequence[str],
    *,
    length: int,
    ttl: dt.timedelta,
    now: dt.datetime,
    actions: Sequence[str] | None = None,
) -> LivenessChallenge:
    """A fresh challenge: a random nonce and ``length`` distinct actions drawn
    at random from ``vocabulary`` (or the fixed ``actions``, each of them in
    ``vocabulary`` when it is not empty), valid for ``ttl`` from ``now``."""
    if actions is None:
        if not 1 <= length <= len(vocabulary):
            raise ValueError(f"length must be between 1 and {len(vocabulary)}")
        pool = list(vocabulary)
        actions = [pool.pop(secrets.randbelow(len(pool))) for _ in range(length)]
    if not actions or (vocabulary and any(a not in vocabulary for a in actions)):
        raise ValueError(f"actions must be drawn from {tuple(vocabulary)}")
    return LivenessChallenge(
        nonce=secrets.token_urlsafe(16),
        actions=tuple(actions),
        issued_at=now,
        expires_at=now + ttl,
    )


async def store_challenge(db: Database, challenge: LivenessChallenge, purpose: Purpose) -> None:
    async with db.begin() as conn:
        await conn.execute(
            liveness_challenges.insert().values(
                nonce=challenge.nonce,
                purpose=purpose,
                actions=",".join(challenge.actions),
                issued_at=challenge.issued_at,
                expires_at=challenge.expires_at,
            )
        )


async def answerable_challenge(
    conn: AsyncConnection, nonce: str, purpose: Purpose, now: dt.datetime
) -> LivenessChallenge:
    """The challenge ``nonce`` if it may be answered now (known, of this
    purpose, unused, unexpired); the matching challenge error otherwise."""
    table = liveness_challenges
    row = (await conn.execute(sa.select(table).where(table.c.nonce == nonce))).one_or_none()
    if row is None or row.purpose != purpose:
        raise ChallengeUnknownError(
            details={"reason": "unknown" if row is None else "wrong_purpose"}
        )
    if row.used_at is not None:
        raise ChallengeUsedError()
    if row.expires_at < now:
        raise ChallengeExpiredError()
    return LivenessChallenge(
        nonce=row.nonce,
        actions=tuple(row.actions.split(",")),
        issued_at=row.issued_at,
        expires_at=row.expires_at,
    )


async def check_challenge(
    db: Database, nonce: str, purpose: Purpose, now: dt.datetime
) -> LivenessChallenge:
    """The challenge ``nonce`` if it can be answered now, without using it up."""
    if not nonce or len(nonce) > MAX_NONCE_LENGTH:
        raise ChallengeUnknownError(details={"reason": "unknown"})
    async with db.begin() as conn:
        return await answerable_challenge(conn, nonce, purpose, now)


async def consume_challenge(
    db: Database, nonce: str, purpose: Purpose, now: dt.datetime
) -> LivenessChallenge:
    """The challenge ``nonce``, marked used: it cannot be answered again."""
    table = liveness_challenges
    async with db.begin() as conn:
        challenge = await answerable_challenge(conn, nonce, purpose, now)
        # The guard on used_at makes this the single point where two
        # workers racing with the same answer are told apart.
        result = await conn.execute(
            table.update()
            .where(table.c.nonce == nonce, table.c.used_at.is_(None))
            .values(used_at=now)
        )
        if result.rowcount != 1:
            raise ChallengeUsedError()
    return challenge


async def purge_challenges(db: Database, now: dt.datetime) -> int:
    """Delete challenges that expired more than ``CHALLENGE_RETENTION`` before ``now``."""
    cutoff = now - CHALLENGE_RETENTION
    async with db.begin() as conn:
        result = await conn.execute(
            liveness_challenges.delete().where(liveness_challenges.c.expires_at < cutoff)
        )
    return int(result.rowcount or 0)
