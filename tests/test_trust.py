"""Mutual recognition between two independent instances, trust lists, status sharing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support.passes import NOW, Instance, at

from healthcode.core.models import Colour
from healthcode.core.passes import (
    HolderDevice,
    Verifier,
    build_revocation_list,
    export_issuer,
    load_revocation_list,
    load_trust_list,
    read_issuer_export,
)
from healthcode.core.passes.errors import StatusExportError, TrustListError
from healthcode.core.passes.trust import trusted_key_from_info
from healthcode.core.privacy import canonical_document_key
from healthcode.core.status.peer_tokens import pair_hash, peer_token
from healthcode.core.status.sharing import export_status_list, parse_status_export


@pytest.fixture
def beijing(tmp_path: Path) -> Instance:
    return Instance.create(tmp_path / "a", "110000", "北京市")


@pytest.fixture
def tianjin(tmp_path: Path) -> Instance:
    return Instance.create(tmp_path / "b", "120000", "天津市", alg="EdDSA")


def test_mutual_recognition(beijing: Instance, tianjin: Instance) -> None:
    device = HolderDevice.generate()
    tj_pass = tianjin.issue(device, Colour.GREEN)
    # The two instances share nothing: separate key directories and trust lists.
    assert beijing.keys.path != tianjin.keys.path
    assert tianjin.verifier().verify(device.present(tj_pass.text, NOW)).ok

    # 1. Before trust is exchanged, Beijing refuses Tianjin's pass.
    verdict = beijing.verifier().verify(device.present(tj_pass.text, NOW))
    assert verdict.code == "unknown_issuer"

    # 2. Tianjin exports its keys; Beijing adds them; the pass verifies.
    added = beijing.trust_store.add(export_issuer(tianjin.keys, NOW), at(1))
    assert added.region_code == "120000" and added.name == "天津市"
    verdict = beijing.verifier(at(2)).verify(device.present(tj_pass.text, at(2)))
    assert verdict.ok, verdict
    assert (verdict.issuer, verdict.issuer_name) == ("120000", "天津市")
    # Beijing's own passes still verify in Beijing, and not yet in Tianjin.
    bj_pass = beijing.issue(device)
    assert beijing.verifier(at(2)).verify(device.present(bj_pass.text, at(2))).ok
    assert tianjin.verifier(at(2)).verify(device.present(bj_pass.text, at(2))).code == (
        "unknown_issuer"
    )

    # 3a. Tianjin's key revoked in Beijing's list: refused, with the reason.
    assert beijing.trust_store.revoke_key(tj_pass.kid, at(3))
    verdict = beijing.verifier(at(4)).verify(device.present(tj_pass.text, at(4)))
    assert verdict.code == "issuer_key_revoked"

    # 3b. Re-added, then removed altogether: unknown again.
    beijing.trust_store.add(export_issuer(tianjin.keys, at(5)), at(5))
    assert beijing.verifier(at(6)).verify(device.present(tj_pass.text, at(6))).ok
    assert beijing.trust_store.remove("120000", now=at(7))
    verdict = beijing.verifier(at(8)).verify(device.present(tj_pass.text, at(8)))
    assert verdict.code == "unknown_issuer"


def test_removing_one_key_of_a_peer(beijing: Instance, tianjin: Instance) -> None:
    device = HolderDevice.generate()
    old = tianjin.issue(device)
    tianjin.keys.rotate(now=at(10))
    new = tianjin.issue(device, now=at(20))
    beijing.trust_store.add(export_issuer(tianjin.keys, at(20)), at(20))
    assert beijing.trust_store.remove("120000", kid=old.kid, now=at(21))
    verifier = beijing.verifier(at(22))
    assert verifier.verify(device.present(old.text, at(22))).code == "unknown_issuer"
    assert verifier.verify(device.present(new.text, at(22))).ok
    assert not beijing.trust_store.remove("120000", kid=b"\0" * 8, now=at(23))
    assert not beijing.trust_store.remove("130000", now=at(23))


def test_peer_revocation_list_is_honoured_offline(beijing: Instance, tianjin: Instance) -> None:
    device = HolderDevice.generate()
    tj_pass = tianjin.issue(device)
    beijing.trust_store.add(export_issuer(tianjin.keys, NOW), NOW)
    tj_key = tianjin.keys.active()
    text = build_revocation_list(tj_key, [(tj_key.kid, tj_pass.claims.pass_id)], at(30))
    verifier = beijing.verifier(at(40))
    verifier.add_revocation_list(load_revocation_list(text, beijing.trust(at(40))))
    verdict = verifier.verify(device.present(tj_pass.text, at(40)))
    assert verdict.code == "revoked"


def test_a_region_cannot_revoke_anothers_passes(beijing: Instance, tianjin: Instance) -> None:
    from healthcode.core.passes.errors import RevocationListError

    beijing.trust_store.add(export_issuer(tianjin.keys, NOW), NOW)
    bj_kid = beijing.keys.active().kid
    text = build_revocation_list(tianjin.keys.active(), [(bj_kid, b"\1" * 16)], NOW)
    with pytest.raises(RevocationListError) as err:
        load_revocation_list(text, beijing.trust(NOW))
    assert err.value.details["reason"] == "foreign_partition"


def test_trust_list_is_signed_and_checked(beijing: Instance, tianjin: Instance) -> None:
    trust = beijing.trust(NOW)
    anchors = [trusted_key_from_info(k) for k in beijing.keys.list_keys()]
    again = load_trust_list(trust.text, anchors)
    assert set(again.issuers) == {"110000"}
    # Signed by someone else: refused.
    other = [trusted_key_from_info(k) for k in tianjin.keys.list_keys()]
    with pytest.raises(TrustListError):
        load_trust_list(trust.text, other)
    # Damaged: refused with the same stable code.
    with pytest.raises(TrustListError) as err:
        load_trust_list(trust.text[:-4] + "AAAA", anchors)
    assert err.value.code == "trust_list_invalid"
    with pytest.raises(TrustListError):
        load_trust_list("HCT1:%%%", anchors)


def test_issuer_export_must_be_self_signed(beijing: Instance, tianjin: Instance) -> None:
    issuer, exported_at = read_issuer_export(export_issuer(tianjin.keys, NOW))
    assert issuer.region_code == "120000" and exported_at == NOW
    with pytest.raises(TrustListError) as err:
        beijing.trust_store.add(export_issuer(beijing.keys, NOW), NOW)
    assert err.value.code == "trust_own_region"


def test_trust_list_age_and_staleness(beijing: Instance) -> None:
    trust = beijing.trust(NOW)
    assert trust.age(at(60)) == dt.timedelta(seconds=60)
    assert not trust.is_stale(at(60))
    assert trust.is_stale(NOW + dt.timedelta(days=8))
    assert "trust_list_stale" in [
        n.code for n in Verifier(trust).notices(NOW + dt.timedelta(days=8))
    ]


# --- status sharing ------------------------------------------------------------------


def test_status_export_round_trip(tmp_path: Path, beijing: Instance, tianjin: Instance) -> None:
    beijing.trust_store.add(export_issuer(tianjin.keys, NOW), NOW)
    pair_key = tianjin.keys.pair_key("110000", create=True)
    beijing.keys.set_pair_key("120000", pair_key)  # agreed out of band
    day = dt.date(2026, 11, 26)
    listed = canonical_document_key("cn_resident_id", "CHN", "11010519491231002X")
    passport = canonical_document_key("passport", "CHN", "E12345678")
    unlisted = canonical_document_key("cn_resident_id", "CHN", "120101199001011234")

    def daily(canonical: bytes) -> bytes:
        # What Tianjin computes at its authority import, from the number.
        return pair_hash(peer_token(pair_key, canonical), day)

    text = export_status_list(
        tianjin.keys.active(),
        to_region="110000",
        day=day,
        entries=[
            (daily(listed), Colour.RED),
            (daily(passport), Colour.YELLOW),
            (daily(passport), Colour.RED),  # most severe wins
            (daily(unlisted), Colour.GREEN),  # never sent
        ],
        now=NOW,
    )
    assert "11010519491231002X" not in text
    shared = parse_status_export(text, beijing.trust(NOW), our_region="110000", now=at(60))
    assert len(shared.entries) == 2
    # Beijing matches with the tokens it stored at enrollment (no number kept).
    bj_key = beijing.keys.pair_key("120000")
    assert shared.colour_of(peer_token(bj_key, listed)) is Colour.RED
    assert shared.colour_of(peer_token(bj_key, passport)) is Colour.RED
    assert shared.colour_of(peer_token(bj_key, unlisted)) is None
    # Without the pair key, the hashes are useless.
    assert shared.colour_of(peer_token(b"k" * 32, listed)) is None
    # Not for us, from an untrusted signer, or expired: refused.
    with pytest.raises(StatusExportError):
        parse_status_export(text, beijing.trust(NOW), our_region="130000", now=at(60))
    hebei = Instance.create(tmp_path / "c", "130000", "河北省")  # does not trust Tianjin
    with pytest.raises(StatusExportError):
        parse_status_export(text, hebei.trust(NOW), our_region="130000", now=at(60))
    with pytest.raises(StatusExportError) as err:
        parse_status_export(text, beijing.trust(NOW), our_region="110000", now=at(86400))
    assert err.value.details["reason"] == "expired"
    with pytest.raises(StatusExportError):
        parse_status_export("HCS1:garbage", beijing.trust(NOW), our_region="110000", now=NOW)


def test_a_bad_issuer_export_is_named_as_such(beijing: Instance, tianjin: Instance) -> None:
    from healthcode.core.passes.trust import IssuerExportInvalidError

    good = export_issuer(tianjin.keys, NOW)
    for text in ("HCK1:garbage", beijing.trust(NOW).text, good[:-6] + "AAAAAA", "hello"):
        with pytest.raises(IssuerExportInvalidError) as err:
            beijing.trust_store.add(text, NOW)
        # Still a trust list error for callers that catch those, with its own code.
        assert isinstance(err.value, TrustListError)
        assert err.value.code == "issuer_export_invalid"
        assert "keys export" in err.value.message_en
    assert set(beijing.trust(NOW).issuers) == {"110000"}
