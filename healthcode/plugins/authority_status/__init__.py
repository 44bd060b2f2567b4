"""Built-in status source: the authority lists imported with ``healthcode
status import`` (one contribution per imported source that lists the subject).

Core reads the imported entries for the subject and day (one indexed read)
before calling the hooks; this plugin turns them into contributions. Called
outside ``healthcode.core.status.resolve_status`` it has nothing to say.
"""

from __future__ import annotations

import datetime as dt

from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import StatusContribution, Subject
from healthcode.core.status_entries import authority_entries


@hookimpl
def healthcode_resolve_status(subject: Subject, day: dt.date) -> list[StatusContribution] | None:
    entries = authority_entries(subject.subject_id, day)
    if not entries:
        return None
    return [
        StatusContribution(
            source=entry.source,
            colour=entry.colour,
            reason=(
                f"listed as {entry.colour.value} ({entry.colour.label_zh}) by {entry.source} "
                f"for {day.isoformat()}"
            ),
        )
        for entry in entries
    ]
