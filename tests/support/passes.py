"""Independent region instances for the pass and trust tests (no tests in here)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from attrs import define

from healthcode.core.models import Colour, MaskedDocument
from healthcode.core.passes import (
    HolderDevice,
    IssuedPass,
    KeyStore,
    TrustList,
    TrustStore,
    Verifier,
    issue_pass,
)
from healthcode.core.passes.codec import Algorithm

from .data import CLOCK_START

NOW = CLOCK_START
"""10:00 in Beijing; the pass expires at 16:00 UTC (24:00 Beijing)."""
MASKED = MaskedDocument("cn_resident_id", "张", "11**************2X")


@define
class Instance:
    """One region's deployment: its own key directory and trust list."""

    region: str
    keys: KeyStore
    trust_store: TrustStore

    @classmethod
    def create(
        cls, root: Path, region: str, name: str, alg: Algorithm = "ES256", now: dt.datetime = NOW
    ) -> Instance:
        keys = KeyStore(root / region / "keys")
        keys.init(region, name, alg=alg, now=now)
        return cls(region, keys, TrustStore(root / region / "trust.hct", keys))

    def issue(
        self,
        device: HolderDevice,
        colour: Colour = Colour.GREEN,
        now: dt.datetime = NOW,
        masked: MaskedDocument = MASKED,
    ) -> IssuedPass:
        key = self.keys.active()
        return issue_pass(
            key.private_key,
            key.kid,
            region_code=self.region,
            colour=colour,
            masked=masked,
            holder_key=device.public_key,
            now=now,
        )

    def trust(self, now: dt.datetime = NOW) -> TrustList:
        return self.trust_store.load(now)

    def verifier(self, now: dt.datetime = NOW, **kwargs: object) -> Verifier:
        return Verifier(self.trust(now), clock=lambda: now, **kwargs)  # type: ignore[arg-type]


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)
