"""The daily status: authority data import, resolution, sharing and day rollover.

One module per step:

* :mod:`~healthcode.core.status.rows` -- reading a list's rows (CSV with a
  header, or JSON Lines: document kind, number, red or yellow) and keying
  each number; the number is hashed and dropped.
* :mod:`~healthcode.core.status.importing` -- one source's list for one day,
  in one transaction and under a lock on (source, day); the day an operator
  typed is checked by ``parse_import_day`` (``YYYY-MM-DD``; yesterday, today
  or tomorrow in Asia/Shanghai unless any day is explicitly allowed).
* :mod:`~healthcode.core.status.service` -- import a list, then revoke the
  passes of holders whose status worsened (``StatusImportService``: what the
  CLI and the API call).
* :mod:`~healthcode.core.status.entries` and
  :mod:`~healthcode.core.status.resolution` -- what storage holds about a
  subject for a day, handed to every status source through
  ``healthcode_resolve_status``; the most severe colour wins; nobody
  reporting means green 未见异常; valid until the next 24:00 Asia/Shanghai.
* :mod:`~healthcode.core.status.peer_tokens` and
  :mod:`~healthcode.core.status.sharing` -- red and yellow lists shared with
  peer regions, hashed per peer pair and signed (``HCS1:``).
* :mod:`~healthcode.core.status.purge` -- the one purge of expired data.
"""

from __future__ import annotations

from healthcode.core.status.entries import AuthorityEntry, PeerEntry, StatusEntries
from healthcode.core.status.importing import (
    BATCH_SIZE,
    DEFAULT_SOURCE,
    MAX_REPORTED_INVALID,
    ImportDayError,
    ImportDayOutOfRangeError,
    ImportInProgressError,
    ImportSummary,
    ImportSwapBusyError,
    check_source_name,
    import_lock_name,
    import_status_file,
    import_status_rows,
    parse_import_day,
)
from healthcode.core.status.purge import PurgeSummary, purge_expired
from healthcode.core.status.resolution import (
    combine_contributions,
    fetch_authority_entries,
    fetch_status_entries,
    resolve_document_status,
    resolve_status,
)
from healthcode.core.status.rows import ImportFormat, InvalidRow, detect_format

# Last: it reaches the signing stack (``healthcode.core.passes``), whose pass
# service imports the names above.
from healthcode.core.status.service import AuditNote, ListImport, Recheck, StatusImportService

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_SOURCE",
    "MAX_REPORTED_INVALID",
    "AuditNote",
    "AuthorityEntry",
    "ImportDayError",
    "ImportDayOutOfRangeError",
    "ImportFormat",
    "ImportInProgressError",
    "ImportSummary",
    "ImportSwapBusyError",
    "InvalidRow",
    "ListImport",
    "PeerEntry",
    "PurgeSummary",
    "Recheck",
    "StatusEntries",
    "StatusImportService",
    "check_source_name",
    "combine_contributions",
    "detect_format",
    "fetch_authority_entries",
    "fetch_status_entries",
    "import_lock_name",
    "import_status_file",
    "import_status_rows",
    "parse_import_day",
    "purge_expired",
    "resolve_document_status",
    "resolve_status",
]
