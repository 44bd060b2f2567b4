"""Built-in status source: red and yellow lists shared by peer regions
(imported with ``healthcode trust import-status``), one contribution per peer
whose list names the subject, with the source ``peer:<region>``.

Core matches the peers' daily hashes against the subject's stored peer tokens
(see ``healthcode.core.passes.sharing``) before calling the hooks; this plugin
turns the matches into contributions. Called outside
``healthcode.core.status.resolve_status`` it has nothing to say.
"""

from __future__ import annotations

import datetime as dt

from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import StatusContribution, Subject
from healthcode.core.status_entries import peer_entries

SOURCE_PREFIX = "peer:"


@hookimpl
def healthcode_resolve_status(subject: Subject, day: dt.date) -> list[StatusContribution] | None:
    entries = peer_entries(subject.subject_id, day)
    if not entries:
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
        for entry in entries
    ]
