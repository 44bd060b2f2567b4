"""Built-in status source: red and yellow lists shared by peer regions
(imported with ``healthcode trust import-status``), one contribution per peer
whose list names the subject, with the source ``peer:<region>``.

Core matches the peers' daily hashes against the subject's stored peer tokens
(see ``healthcode.core.status.sharing``) and hands the matches to every
status source as the hook's ``entries`` argument; this plugin turns
``entries.peers`` into contributions, using nothing a third-party plugin
could not.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import StatusContribution, Subject

if TYPE_CHECKING:
    from healthcode.core.status import StatusEntries

SOURCE_PREFIX = "peer:"


@hookimpl
def healthcode_resolve_status(
    subject: Subject, day: dt.date, entries: StatusEntries
) -> list[StatusContribution] | None:
    if not entries.peers:
        return None
    return [
        StatusContribution(
            source=f"{SOURCE_PREFIX}{entry.peer_region}",
            colour=entry.colour,
            reason=(
                f"listed as {entry.colour.value} ({entry.colour.label_zh}) by peer region "
                f"{entry.peer_region} for {day.isoformat()}"
            ),
        )
        for entry in entries.peers
    ]
