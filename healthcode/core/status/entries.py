"""What core has read about one subject for one day before it asks the status
sources: the ``entries`` argument of ``healthcode_resolve_status``.

Hooks are synchronous and storage is async, so core reads the subject's
imported entries (one indexed read) and matches its peer tokens against the
peers' lists before calling the hook, and hands the result to every status
source alike: the built-in ``authority_status`` and ``peer_status`` plugins
read nothing that a third-party plugin could not.
"""

from __future__ import annotations

from attrs import frozen

from healthcode.core.models import Colour


@frozen
class AuthorityEntry:
    """What one imported source lists for a subject on a day."""

    source: str
    """The source named at import (``healthcode status import --source``)."""
    colour: Colour
    """The most severe colour that source lists for the subject."""


@frozen
class PeerEntry:
    """What one peer region's shared list says of a subject on a day."""

    peer_region: str
    """The peer's GB/T 2260 region code."""
    colour: Colour
    """The most severe colour the peer's list gives the subject."""


@frozen
class StatusEntries:
    """Everything stored about one subject for one day, for the status sources."""

    authority: tuple[AuthorityEntry, ...] = ()
    """Imported authority lists naming the subject, one entry per source."""
    peers: tuple[PeerEntry, ...] = ()
    """Peer regions' shared lists naming the subject, one entry per peer."""
