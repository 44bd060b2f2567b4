"""Importing a status list, then revoking the passes it makes stale, audited.

Every list that can worsen someone's status (an authority list from the
CLI or the API, a peer region's shared list) goes through
``StatusImportService``: the import, then ``revoke_worsened`` on the passes
issued earlier today, so a pass shown as green does not stay valid until
24:00 once its holder is listed. Each import also changes the status
revision, which stales every worker's cached decisions at once
(``healthcode.core.status.resolution``); ``recheck`` does both with no list,
for a status source plugin whose own data changed. The CLI commands and the API handler only
translate their input into one of its calls and its result back.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import pluggy
from attrs import frozen

from healthcode.core.errors import InputError
from healthcode.core.passes.trust import TrustList
from healthcode.core.privacy import OperatorSecrets
from healthcode.core.status.importing import (
    DEFAULT_SOURCE,
    ImportSummary,
    import_status_file,
    import_status_rows,
)
from healthcode.core.status.peer_tokens import PeerKeys
from healthcode.core.status.resolution import bump_status_revision
from healthcode.core.status.rows import ImportFormat, detect_format
from healthcode.core.status.sharing import PeerImportSummary, import_from_peer
from healthcode.core.storage.database import Database, write_audit


class RevocationCounts(Protocol):
    @property
    def checked(self) -> int:
        """Unexpired, unrevoked passes looked at."""

    @property
    def revoked(self) -> int:
        """Passes revoked because their holder's status is now more severe."""


class WorsenedPassRevoker(Protocol):
    """What revokes passes whose holder's status worsened (the pass service)."""

    async def revoke_worsened(self, *, now: dt.datetime | None = None) -> RevocationCounts: ...


class _Summary(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=_Summary)


@frozen
class ListImport(Generic[S]):
    """A list imported, and what it did to the passes already issued."""

    summary: S
    """The import's own summary (``ImportSummary`` or ``PeerImportSummary``)."""
    passes_checked: int
    passes_revoked: int

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary.as_dict(),
            "passes_checked": self.passes_checked,
            "passes_revoked": self.passes_revoked,
        }


@frozen
class Recheck:
    """The status sources asked again without a list, and what it did to the
    passes already issued."""

    passes_checked: int
    passes_revoked: int

    def as_dict(self) -> dict[str, Any]:
        return {"passes_checked": self.passes_checked, "passes_revoked": self.passes_revoked}


@frozen
class AuditNote:
    """One more audit record, written once the list is in and the passes
    checked (the API records which token asked)."""

    action: str
    details: Mapping[str, Any]


class StatusImportService:
    """Import a list, then revoke the passes of holders whose status worsened."""

    def __init__(
        self,
        db: Database,
        secrets: OperatorSecrets,
        passes: WorsenedPassRevoker,
        *,
        pm: pluggy.PluginManager | None = None,
        peer_keys: PeerKeys | None = None,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.passes = passes
        self.pm = pm
        self.peer_keys = peer_keys
        """Pair keys by peer region: each listed person's daily hash for each
        peer is stored at an authority import, for ``trust export-status``."""

    async def import_authority_file(
        self,
        path: Path | str,
        *,
        day: dt.date,
        source: str = DEFAULT_SOURCE,
        fmt: ImportFormat | None = None,
        replace: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> ListImport[ImportSummary]:
        """An authority list from a file (``import_status_file``)."""
        summary = await import_status_file(
            self.db,
            self.secrets,
            path,
            day=day,
            source=source,
            fmt=fmt,
            replace=replace,
            pm=self.pm,
            progress=progress,
            peer_keys=self.peer_keys,
        )
        return await self._revoke_worsened(summary)

    async def import_authority_upload(
        self,
        data: bytes,
        filename: str | None,
        *,
        day: dt.date,
        source: str = DEFAULT_SOURCE,
        audit: AuditNote | None = None,
    ) -> ListImport[ImportSummary]:
        """An authority list uploaded whole: UTF-8 (``InputError``
        ``import_not_utf8`` otherwise), CSV or JSON Lines by its file name
        or else its first line; it replaces the source's list for ``day``."""
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(
                "The list must be UTF-8 text.", "名单须为 UTF-8 文本。", code="import_not_utf8"
            ) from None
        fmt = detect_format(Path(filename or "upload.csv"), text.split("\n", 1)[0])
        summary = await import_status_rows(
            self.db,
            self.secrets,
            io.StringIO(text),
            day=day,
            fmt=fmt,
            source=source,
            pm=self.pm,
            peer_keys=self.peer_keys,
        )
        return await self._revoke_worsened(summary, audit=audit)

    async def import_peer_list(
        self, text: str, trust: TrustList, *, our_region: str, now: dt.datetime
    ) -> ListImport[PeerImportSummary]:
        """A peer region's signed list (``import_from_peer``), checked against ``trust``."""
        summary = await import_from_peer(self.db, text, trust, our_region=our_region, now=now)
        return await self._revoke_worsened(summary, now=now)

    async def recheck(self, *, audit: AuditNote, now: dt.datetime | None = None) -> Recheck:
        """Ask every status source again, with no list imported: for a status
        source plugin that reads data of its own (a service, a database of its
        own), run when that data has changed. Every worker's cached decisions
        are staled and the unexpired passes of holders whose status is now more
        severe revoked, as after an import; audited as ``audit`` with the counts."""
        revoked = await self._ask_again(now)
        result = Recheck(revoked.checked, revoked.revoked)
        async with self.db.begin() as conn:
            await write_audit(conn, audit.action, {**audit.details, **result.as_dict()})
        return result

    async def _revoke_worsened(
        self, summary: S, *, now: dt.datetime | None = None, audit: AuditNote | None = None
    ) -> ListImport[S]:
        revoked = await self._ask_again(now)
        if audit is not None:
            async with self.db.begin() as conn:
                await write_audit(conn, audit.action, dict(audit.details))
        return ListImport(summary, revoked.checked, revoked.revoked)

    async def _ask_again(self, now: dt.datetime | None) -> RevocationCounts:
        # First: every worker's next look-up asks the status sources again
        # (the cached decisions were made from what they said before).
        await bump_status_revision(self.db)
        return await self.passes.revoke_worsened(now=now)
