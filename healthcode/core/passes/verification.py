"""Online verification at a node: what a guard's scan is checked against when
the service, not a guard's device, answers it.

The offline checks of :class:`~healthcode.core.passes.verify.Verifier`
(signature, trust, expiry, freshness, device binding) come first; then two
that need this node's database:

1. this region's own revocations, known at once (peers' revocations reach it
   through their signed lists, which an offline verifier loads);
2. the live code's one use, shared by every worker through the database
   (:func:`~healthcode.core.replay.use_once`): racing workers insert the same
   key and exactly one of them succeeds; with Redis configured, by every node
   through Redis, and Redis unreachable refuses the scan with 503
   ``replay_check_unavailable`` rather than accept it unchecked. Last, so
   that only a code that is otherwise accepted uses up its one showing.

The verifier's trust list follows the signed trust file and the key store on
disk: a list or key rotation written by another worker or the CLI is picked up
within ``TRUST_RECHECK_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence

from healthcode.core.models import Issuer
from healthcode.core.passes.errors import PresentationReplayedError, RevokedError
from healthcode.core.passes.keys import KeyStore
from healthcode.core.passes.models import Verdict
from healthcode.core.passes.service import PassService
from healthcode.core.passes.trust import TrustStore, with_plugin_issuers
from healthcode.core.passes.verify import Verifier
from healthcode.core.replay import PURPOSE_PRESENTATION, UsedPurger, use_once
from healthcode.core.storage.database import Database

TRUST_RECHECK_SECONDS = 1.0
"""How stale a worker's view of the trust list and the key store may be."""


class VerificationService:
    """One worker's online verifier: offline checks, own revocations, one use."""

    def __init__(
        self,
        db: Database,
        keys: KeyStore,
        trust: TrustStore,
        passes: PassService,
        *,
        plugin_issuers: Sequence[Issuer] = (),
        used: UsedPurger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.keys = keys
        self.trust = trust
        self.passes = passes
        self.plugin_issuers = list(plugin_issuers)
        """Peers named by plugins (``healthcode_trusted_issuers``), merged into the trust list."""
        self.used = used or UsedPurger(db)
        self.clock = clock
        self.region_code = keys.region_code
        """This instance's region (GB/T 2260), read once from the key store."""
        self.verifier = Verifier(with_plugin_issuers(trust.load(), self.plugin_issuers))
        self._trust_seen = self._trust_stamp()
        self._trust_checked_at = float("-inf")

    # --- the trust list -------------------------------------------------------------

    def reload_trust(self) -> None:
        """Rebuild the verifier's trust list from the signed file and the plugins."""
        self.verifier.set_trust_list(with_plugin_issuers(self.trust.load(), self.plugin_issuers))
        self._trust_seen = self._trust_stamp()

    def maybe_reload_trust(self) -> None:
        """Pick up a trust list or key rotation written by another worker or the
        CLI: one ``stat`` a second at most."""
        now = self.clock()
        if now - self._trust_checked_at < TRUST_RECHECK_SECONDS:
            return
        self._trust_checked_at = now
        if self._trust_stamp() != self._trust_seen:
            self.reload_trust()

    def _trust_stamp(self) -> tuple[float, float]:
        """Modification times of the trust list and the key store's metadata."""
        stamps = []
        for path in (self.trust.path, self.keys.path / "issuer.json"):
            try:
                stamps.append(path.stat().st_mtime)
            except OSError:
                stamps.append(0.0)
        return stamps[0], stamps[1]

    # --- verification -----------------------------------------------------------------

    async def verify(self, presentation: str, *, now: dt.datetime | None = None) -> Verdict:
        """The verdict on one scanned presentation; never raises for bad input.

        Refusals after the offline checks: ``revoked`` (a pass of this region
        revoked here) and ``presentation_replayed`` (the live code was accepted
        before, by any worker of this node).
        """
        self.maybe_reload_trust()
        verdict, once = self.verifier.verify_online(presentation, now)
        if once is None:
            return verdict
        signed, expires_at = once
        if (
            verdict.pass_id is not None
            and verdict.issuer == self.region_code
            and await self.passes.is_revoked(verdict.pass_id)
        ):
            return Verdict.refusal(RevokedError())
        if not await use_once(self.db, PURPOSE_PRESENTATION, signed, expires_at=expires_at):
            return Verdict.refusal(PresentationReplayedError())
        await self.used.maybe_purge()
        return verdict


__all__ = ["TRUST_RECHECK_SECONDS", "VerificationService"]
