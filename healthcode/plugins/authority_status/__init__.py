"""Built-in status source: the authority lists imported with ``healthcode
status import`` (one contribution per imported source that lists the subject).

Core reads the imported entries for the subject and day (one indexed read)
and hands them to every status source as the hook's ``entries`` argument;
this plugin turns ``entries.authority`` into contributions, using nothing a
third-party plugin could not.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import StatusContribution, Subject

if TYPE_CHECKING:
    from healthcode.core.status import StatusEntries


@hookimpl
def healthcode_resolve_status(
    subject: Subject, day: dt.date, entries: StatusEntries
) -> list[StatusContribution] | None:
    if not entries.authority:
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
        for entry in entries.authority
    ]
