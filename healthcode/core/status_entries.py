"""Imported entries handed from core to the built-in status-source plugins:
authority lists (``authority_status``) and peer regions' shared lists
(``peer_status``).

Kept apart from ``healthcode.core.status`` so that loading the plugin (which
every command does) does not import the database stack.
"""

from __future__ import annotations

import contextvars
import datetime as dt

from attrs import frozen

from healthcode.core.models import Colour


@frozen
class AuthorityEntry:
    """What one imported source lists for a subject on a day."""

    source: str
    colour: Colour


@frozen
class PeerEntry:
    """What one peer region's shared list says of a subject on a day."""

    peer_region: str
    colour: Colour


@frozen
class Prefetched:
    subject_id: str
    day: dt.date
    entries: tuple[AuthorityEntry, ...]
    peer_entries: tuple[PeerEntry, ...] = ()
    """Matches of the subject's peer tokens in the peers' lists for ``day``."""


# Hooks are synchronous and storage is async: core reads the subject's imported
# entries (one indexed read) before calling the hooks, and the built-in
# authority_status plugin reads them from here.
prefetched: contextvars.ContextVar[Prefetched | None] = contextvars.ContextVar(
    "healthcode_authority_entries", default=None
)


def authority_entries(subject_id: str, day: dt.date) -> tuple[AuthorityEntry, ...] | None:
    """The imported entries for ``subject_id`` on ``day`` during a
    ``resolve_status`` call; ``None`` outside one (or for another subject/day)."""
    current = prefetched.get()
    if current is None or current.subject_id != subject_id or current.day != day:
        return None
    return current.entries


def peer_entries(subject_id: str, day: dt.date) -> tuple[PeerEntry, ...] | None:
    """The peer lists' matches for ``subject_id`` on ``day`` during a
    ``resolve_status`` call; ``None`` outside one (or for another subject/day)."""
    current = prefetched.get()
    if current is None or current.subject_id != subject_id or current.day != day:
        return None
    return current.peer_entries
