"""A status source written from the README alone, as a third party would: the
README's "Writing a plugin" section and the ``healthcode_resolve_status`` row
of its hook table. It does what the built-in ``authority_status`` and
``peer_status`` plugins do, from the hook's arguments only, so that
``test_status_source_plugin`` can show that built-ins are not privileged.
"""

from __future__ import annotations

import datetime as dt

from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import StatusContribution, Subject
from healthcode.core.status import StatusEntries


@hookimpl
def healthcode_resolve_status(
    subject: Subject, day: dt.date, entries: StatusEntries
) -> list[StatusContribution] | None:
    found = [
        StatusContribution(e.source, e.colour, f"example: {e.source} lists {day.isoformat()}")
        for e in entries.authority
    ] + [
        StatusContribution(f"example-peer:{e.peer_region}", e.colour, "example: a peer's list")
        for e in entries.peers
    ]
    return found or None
