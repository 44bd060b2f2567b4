"""The guard's verifier: is this presentation genuine, current, and shown by its holder?

Offline it needs only a trust list (and, when it has one, each region's
compact revocation list); online it also asks a revocation callback.
It never raises on bad input: every scan ends in a :class:`Verdict`, accepted
with what may be shown, or refused with a stable code.

Checks, in order (the first failure is the answer):

1. shape: prefix, base45, size cap, zlib, CBOR, COSE headers, claims types;
2. issuer: key id in the trust list, key not withdrawn, algorithm as listed,
   issuer signature, ``iss`` equal to the key's region;
3. time: key valid for the pass's issue time and now, pass not from the
   future, not expired (``exp`` is the next 24:00, no tolerance);
4. holder: device signature over (pass id, time) by the key in the pass;
5. freshness: not older than the window, not further in the future than the
   allowed clock skew;
6. revocation: online callback, then offline lists (without either, an
   accepted verdict carries the notice ``revocations_not_checked``, or, when
   the verifier is told to require a list, it refuses: ``revocation_list_missing``);
7. once: a live code is accepted once (``presentation_replayed`` after); the
   verifier asks its ``seen`` callback (offline: a :class:`~healthcode.core.replay.SeenList`),
   the service records it in its database (:meth:`Verifier.signed_presentation`).

Steps 1-2 depend only on the pass bytes, so their result is cached (bounded):
a pass shown again with a fresh device signature costs one verification.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import deque
from collections.abc import Callable, Iterable
from typing import Literal

from healthcode.core.clock import now_utc
from healthcode.core.passes.codec import verify_raw
from healthcode.core.passes.errors import (
    BadSignatureError,
    IssuerKeyNotValidError,
    IssuerKeyRevokedError,
    IssuerMismatchError,
    PassError,
    PassExpiredError,
    PassNotYetValidError,
    PresentationFromFutureError,
    PresentationReplayedError,
    RevocationListMissingError,
    RevokedError,
    StalePresentationError,
    UnknownIssuerError,
    WrongDeviceError,
)
from healthcode.core.passes.models import Notice, PassClaims, Verdict
from healthcode.core.passes.passes import device_message, parse_pass_cose, split_presentation
from healthcode.core.passes.revocation import DEFAULT_MAX_AGE as REVOCATION_MAX_AGE
from healthcode.core.passes.revocation import RevocationList
from healthcode.core.passes.trust import DEFAULT_MAX_AGE as TRUST_MAX_AGE
from healthcode.core.passes.trust import TrustedIssuer, TrustedKey, TrustList

DEFAULT_WINDOW = dt.timedelta(seconds=30)
DEFAULT_MAX_SKEW = dt.timedelta(seconds=10)
CLOCK_SUSPECT_OFFSET = dt.timedelta(seconds=10)
"""Median device-vs-verifier offset beyond which the verifier suspects its own clock."""
_CLOCK_SAMPLES = 9

RevocationCheck = Callable[[str, bytes, bytes], bool]
"""Online check: (issuer region, kid, pass id) -> revoked?"""
SeenCheck = Callable[[bytes, dt.datetime, dt.datetime], bool]
"""Once check: (signed text of the live code, when it expires, now) -> first use?"""
MissingRevocationList = Literal["ignore", "notice", "refuse"]
"""Offline, without a revocation list for the pass's region: accept silently,
accept with the notice ``revocations_not_checked``, or refuse."""

_Entry = tuple[PassClaims, TrustedIssuer, TrustedKey]


class Verifier:
    """Verifies presentations against one trust list; cheap to call, not thread-safe."""

    def __init__(
        self,
        trust: TrustList,
        *,
        window: dt.timedelta = DEFAULT_WINDOW,
        max_skew: dt.timedelta = DEFAULT_MAX_SKEW,
        revocation_lists: Iterable[RevocationList] = (),
        online_check: RevocationCheck | None = None,
        clock: Callable[[], dt.datetime] = now_utc,
        trust_max_age: dt.timedelta = TRUST_MAX_AGE,
        revocation_max_age: dt.timedelta = REVOCATION_MAX_AGE,
        cache_size: int = 4096,
        missing_revocation_list: MissingRevocationList = "ignore",
        seen: SeenCheck | None = None,
    ) -> None:
        self.window = window
        self.window_ms = int(window.total_seconds() * 1000)
        self.skew_ms = int(max_skew.total_seconds() * 1000)
        self.max_skew = max_skew
        self.online_check = online_check
        self.clock = clock
        self.trust_max_age = trust_max_age
        self.revocation_max_age = revocation_max_age
        self.missing_revocation_list = missing_revocation_list
        self.seen = seen
        self._cache_size = cache_size
        self._cache: dict[bytes, _Entry] = {}
        self._offsets: deque[int] = deque(maxlen=_CLOCK_SAMPLES)
        self.trust = trust
        self.revocations: dict[str, RevocationList] = {}
        for rl in revocation_lists:
            self.add_revocation_list(rl)

    # --- configuration ------------------------------------------------------

    def set_trust_list(self, trust: TrustList) -> None:
        self.trust = trust
        self._cache.clear()

    def add_revocation_list(self, rl: RevocationList) -> None:
        """Keep the newest list per region."""
        current = self.revocations.get(rl.region_code)
        if current is None or rl.issued_at >= current.issued_at:
            self.revocations[rl.region_code] = rl

    @property
    def mode(self) -> str:
        return "online" if self.online_check else "offline"

    # --- notices ------------------------------------------------------------

    def notices(self, now: dt.datetime | None = None) -> tuple[Notice, ...]:
        """Warnings about the verifier itself: stale lists, a suspect clock."""
        now = now or self.clock()
        out: list[Notice] = []
        skew = self.max_skew
        if self.trust.issued_at > now + skew or any(
            rl.issued_at > now + skew for rl in self.revocations.values()
        ):
            out.append(
                Notice(
                    "clock_suspect",
                    "This device's clock is behind: its lists were signed in its future.",
                    "本设备时钟偏慢：名单签发时间晚于本机时间。",
                    {"reason": "list_from_future"},
                )
            )
        elif len(self._offsets) >= 5:
            median = statistics.median(self._offsets)
            if abs(median) > CLOCK_SUSPECT_OFFSET.total_seconds() * 1000:
                out.append(
                    Notice(
                        "clock_suspect",
                        "This device's clock differs from the holders' phones; check it.",
                        "本设备时钟与持码人手机时间不一致，请校准。",
                        {"median_offset_s": round(median / 1000, 1)},
                    )
                )
        age = self.trust.age(now)
        if age > self.trust_max_age:
            out.append(
                Notice(
                    "trust_list_stale",
                    "The trust list is out of date; refresh it.",
                    "信任列表已过期，请更新。",
                    {"age_s": int(age.total_seconds())},
                )
            )
        if self.online_check is None:
            for rl in self.revocations.values():
                rl_age = rl.age(now)
                if rl_age > self.revocation_max_age:
                    out.append(
                        Notice(
                            "revocation_list_stale",
                            "A revocation list is out of date; refresh it.",
                            "撤销列表已过期，请更新。",
                            {"region": rl.region_code, "age_s": int(rl_age.total_seconds())},
                        )
                    )
        return tuple(out)

    # --- verification -------------------------------------------------------

    def _issuer_checked(self, cose: bytes) -> _Entry:
        cached = self._cache.get(cose)
        if cached is not None:
            return cached
        sign, claims = parse_pass_cose(cose)
        found = self.trust.by_kid.get(sign.kid)
        if found is None:
            raise UnknownIssuerError(details={"kid": sign.kid.hex(), "claimed": claims.issuer})
        issuer, key = found
        if key.revoked:
            raise IssuerKeyRevokedError(
                details={"kid": key.kid.hex(), "issuer": issuer.region_code}
            )
        if sign.alg != key.alg or not verify_raw(
            key.public_key, sign.signature, sign.to_be_signed()
        ):
            raise BadSignatureError(details={"kid": key.kid.hex()})
        if claims.issuer != issuer.region_code:
            raise IssuerMismatchError(
                details={"claimed": claims.issuer, "key_region": issuer.region_code}
            )
        entry = (claims, issuer, key)
        if len(self._cache) >= self._cache_size:
            # Drop the oldest entry (dicts keep insertion order).
            del self._cache[next(iter(self._cache))]
        self._cache[cose] = entry
        return entry

    def _check(self, text: str, now: dt.datetime) -> tuple[_Entry, int, int | None, int]:
        cose, time_ms, device_signature = split_presentation(text)
        claims, issuer, key = self._issuer_checked(cose)
        now_s = now.timestamp()
        skew_s = self.skew_ms / 1000
        issued = claims.issued_at
        if (
            issued < key.valid_from.timestamp() - skew_s
            or (key.sign_until is not None and issued > key.sign_until.timestamp() + skew_s)
            or (key.valid_until is not None and now_s >= key.valid_until.timestamp())
        ):
            raise IssuerKeyNotValidError(details={"kid": key.kid.hex()})
        if issued > now_s + skew_s:
            raise PassNotYetValidError()
        if now_s >= claims.expires_at:
            raise PassExpiredError(details={"valid_until": claims.valid_until.isoformat()})
        if not verify_raw(
            claims.holder_key, device_signature, device_message(claims.pass_id, time_ms)
        ):
            raise WrongDeviceError()
        age_ms = int(now_s * 1000) - time_ms
        self._offsets.append(age_ms)
        if age_ms > self.window_ms:
            raise StalePresentationError(details={"age_s": age_ms // 1000})
        if -age_ms > self.skew_ms:
            raise PresentationFromFutureError(details={"ahead_s": -age_ms // 1000})
        if self.online_check is not None and self.online_check(
            issuer.region_code, key.kid, claims.pass_id
        ):
            raise RevokedError(details={"source": "online"})
        rl = self.revocations.get(issuer.region_code)
        rl_age: int | None = None
        if rl is not None:
            rl_age = int(rl.age(now).total_seconds())
            if rl.is_revoked(key.kid, claims.pass_id):
                raise RevokedError(details={"source": "revocation_list", "list_age_s": rl_age})
        elif self.online_check is None and self.missing_revocation_list == "refuse":
            raise RevocationListMissingError(details={"region": issuer.region_code})
        if self.seen is not None and not self.seen(
            _signed_text(issuer.region_code, claims.pass_id, time_ms),
            self._expiry(time_ms),
            now,
        ):
            raise PresentationReplayedError()
        return (claims, issuer, key), age_ms, rl_age, time_ms

    def _expiry(self, time_ms: int) -> dt.datetime:
        # Refused as stale after the window; the skew allows for verifiers'
        # clocks that differ a little.
        return dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC) + self.window + self.max_skew

    def signed_presentation(self, text: str) -> tuple[bytes, dt.datetime]:
        """What a live code's device signature covers (with its issuer), and when
        the code expires: the key under which a service records its one use.
        For a presentation that :meth:`verify` accepted (raises ``PassError``
        otherwise)."""
        cose, time_ms, _ = split_presentation(text)
        claims, issuer, _ = self._issuer_checked(cose)
        return _signed_text(issuer.region_code, claims.pass_id, time_ms), self._expiry(time_ms)

    def verify(self, text: str, now: dt.datetime | None = None) -> Verdict:
        """Verify one scanned presentation; never raises for bad input."""
        return self.verify_online(text, now)[0]

    def verify_online(
        self, text: str, now: dt.datetime | None = None
    ) -> tuple[Verdict, tuple[bytes, dt.datetime] | None]:
        """:meth:`verify`, and for an accepted presentation what
        :meth:`signed_presentation` says (the key of its one use, and when it
        expires), from the same decoding: a service records the use next."""
        now = now or self.clock()
        try:
            (claims, issuer, key), age_ms, rl_age, time_ms = self._check(text, now)
        except PassError as exc:
            return Verdict.refusal(exc, notices=self.notices(now)), None
        notices = self.notices(now)
        if (
            rl_age is None
            and self.online_check is None
            and self.missing_revocation_list == "notice"
        ):
            notices += (
                Notice(
                    "revocations_not_checked",
                    "Revocations were not checked: no revocation list for this region "
                    "was loaded, so a revoked pass would also be accepted.",
                    "未核查撤销情况：未加载该地区的撤销列表，已撤销的通行码也会通过。",
                    {"region": issuer.region_code},
                ),
            )
        verdict = Verdict(
            ok=True,
            code="accepted",
            message_en="The pass is genuine, current, and shown by its holder.",
            message_zh="通行码真实有效，由持码人本人出示。",
            colour=claims.colour,
            masked=claims.masked,
            issuer=issuer.region_code,
            issuer_name=issuer.name,
            valid_until=claims.valid_until,
            kid=key.kid,
            pass_id=claims.pass_id,
            presentation_age_s=max(age_ms, 0) // 1000,
            revocation_list_age_s=rl_age,
            notices=notices,
        )
        once = _signed_text(issuer.region_code, claims.pass_id, time_ms), self._expiry(time_ms)
        return verdict, once


def _signed_text(region_code: str, pass_id: bytes, time_ms: int) -> bytes:
    return region_code.encode() + b"\n" + device_message(pass_id, time_ms)
