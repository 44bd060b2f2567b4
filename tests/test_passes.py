"""Passes, presentations and the verifier: genuine codes pass, every forgery is refused
with its own stable code. Time is injected; nothing sleeps."""

from __future__ import annotations

import datetime as dt
import os
import stat
import zlib
from pathlib import Path

import cbor2
import pytest
from support.passes import MASKED, NOW, Instance, at

from healthcode.core.models import Colour, MaskedDocument
from healthcode.core.passes import (
    HolderDevice,
    KeyStore,
    Verifier,
    build_revocation_list,
    issue_pass,
    load_revocation_list,
    read_pass,
)
from healthcode.core.passes.base45 import b45decode, b45encode
from healthcode.core.passes.codec import MAX_INFLATED, sign_raw, wrap
from healthcode.core.passes.errors import (
    HolderKeyError,
    KeyStorePermissionError,
    MalformedPassError,
    NoActiveKeyError,
    PassError,
    RevocationListError,
)
from healthcode.core.passes.passes import (
    PASS_PREFIX,
    PRESENTATION_PREFIX,
    UnmaskedIdentityError,
    device_message,
    pass_cose_from_text,
)


@pytest.fixture
def bj(tmp_path: Path) -> Instance:
    return Instance.create(tmp_path, "110000", "北京市")


@pytest.fixture
def device() -> HolderDevice:
    return HolderDevice.generate()


# --- base45 ------------------------------------------------------------------------


def test_base45_rfc9285_examples() -> None:
    assert b45encode(b"AB") == "BB8"
    assert b45encode(b"Hello!!") == "%69 VD92EX0"
    assert b45encode(b"base-45") == "UJCLQE7W581"
    assert b45decode("QED8WEX0") == b"ietf!"


@pytest.mark.parametrize("text", ["GGW", "A", "ZZZZ", "abc", "QED8WEX0\u00e9", ":::"])
def test_base45_refuses_malformed(text: str) -> None:
    with pytest.raises(MalformedPassError):
        b45decode(text)


# --- the pass itself ------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_issue_and_verify_round_trip(tmp_path: Path, alg: str, device: HolderDevice) -> None:
    inst = Instance.create(tmp_path, "110000", "北京市", alg=alg)  # type: ignore[arg-type]
    issued = inst.issue(device, Colour.YELLOW)
    assert issued.text.startswith(PASS_PREFIX)
    verdict = inst.verifier(at(5)).verify(device.present(issued.text, at(1)))
    assert verdict.ok, verdict
    assert verdict.code == "accepted"
    assert verdict.colour is Colour.YELLOW
    assert verdict.masked == MASKED
    assert verdict.issuer == "110000" and verdict.issuer_name == "北京市"
    # Valid until the next 24:00 Beijing time.
    assert verdict.valid_until == dt.datetime(2026, 11, 26, 16, 0, tzinfo=dt.UTC)
    assert verdict.presentation_age_s == 4
    payload = verdict.as_dict()
    assert payload["label_zh"] == "居家观察"


@pytest.mark.parametrize(
    ("colour", "admit", "decision"),
    [
        (Colour.GREEN, True, ("通行", "Admit")),
        (Colour.YELLOW, False, ("禁止通行", "Do not admit")),
        (Colour.RED, False, ("禁止通行", "Do not admit")),
    ],
)
def test_only_a_genuine_current_green_pass_admits(
    bj: Instance, device: HolderDevice, colour: Colour, admit: bool, decision: tuple[str, str]
) -> None:
    """ "Genuine" and "let in" are different answers: a red pass is genuine."""
    from healthcode.api.wire import verdict_to_wire

    verdict = bj.verifier(at(5)).verify(device.present(bj.issue(device, colour).text, at(1)))
    assert verdict.ok and verdict.code == "accepted"
    assert verdict.admit is admit
    assert (verdict.decision_zh, verdict.decision_en) == decision
    wire = verdict_to_wire(verdict)
    assert (wire.admit, wire.ok, wire.decision_zh, wire.decision_en) == (admit, True, *decision)
    assert verdict.as_dict()["admit"] is admit


def test_a_refused_code_never_admits(bj: Instance, device: HolderDevice) -> None:
    shown = device.present(bj.issue(device, Colour.GREEN).text, at(1))
    stale = bj.verifier(at(300)).verify(shown)
    assert not stale.ok and not stale.admit and stale.decision_en == "Do not admit"


def test_pass_claims_are_exactly_the_listed_ones(bj: Instance, device: HolderDevice) -> None:
    issued = bj.issue(device)
    cose = cbor2.loads(pass_cose_from_text(issued.text))
    claims = cbor2.loads(cose.value[2])
    assert set(claims) == {1, 4, 6, 7, 8, -65537, -65538, -65539, -65540}
    assert claims[1] == "110000"
    assert claims[-65540] == "11**************2X"
    assert len(claims[7]) == 16
    protected = cbor2.loads(cose.value[0])
    assert protected == {1: -7, 4: issued.kid}
    # Nothing but the masked identity reaches the pass.
    assert "11010519491231002X" not in repr(claims)


def test_pass_is_a_standard_cwt_readable_by_the_cwt_library(
    bj: Instance, device: HolderDevice
) -> None:
    import cwt
    from cryptography.hazmat.primitives import serialization

    issued = bj.issue(device)
    key = bj.keys.active()
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public = cwt.COSEKey.from_pem(pem, alg="ES256", kid=key.kid)
    claims = cwt.decode(pass_cose_from_text(issued.text), public, no_verify=True)
    assert isinstance(claims, dict)
    assert claims[1] == "110000" and claims[-65537] == "green"


def test_unmasked_number_is_refused_at_issue(bj: Instance, device: HolderDevice) -> None:
    with pytest.raises(UnmaskedIdentityError):
        bj.issue(device, masked=MaskedDocument("cn_resident_id", "张", "11010519491231002X"))


def test_holder_refuses_to_present_someone_elses_pass(bj: Instance, device: HolderDevice) -> None:
    issued = bj.issue(device)
    with pytest.raises(HolderKeyError) as err:
        HolderDevice.generate().present(issued.text, NOW)
    assert err.value.code == "pass_not_for_this_device"


def test_holder_key_file_round_trip(tmp_path: Path, bj: Instance, device: HolderDevice) -> None:
    path = tmp_path / "device.pem"
    device.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = HolderDevice.load(path)
    assert again.public_key_der == device.public_key_der


# --- refusals ---------------------------------------------------------------------


def test_bare_pass_is_not_enough(bj: Instance, device: HolderDevice) -> None:
    verdict = bj.verifier().verify(bj.issue(device).text)
    assert (verdict.ok, verdict.code) == (False, "presentation_required")


def test_replayed_screenshot_is_refused_after_the_window(
    bj: Instance, device: HolderDevice
) -> None:
    shown = device.present(bj.issue(device).text, NOW)
    assert bj.verifier(at(30)).verify(shown).ok  # exactly at the window's edge
    verdict = bj.verifier(at(31)).verify(shown)
    assert verdict.code == "stale_presentation"
    # A window is configurable.
    assert Verifier(bj.trust(), window=dt.timedelta(seconds=60)).verify(shown, at(31)).ok


def test_clock_skew_bounds(bj: Instance, device: HolderDevice) -> None:
    issued = bj.issue(device)
    verifier = bj.verifier()
    assert verifier.verify(device.present(issued.text, at(10)), NOW).ok  # 10 s ahead: tolerated
    verdict = verifier.verify(device.present(issued.text, at(11)), NOW)
    assert verdict.code == "presentation_from_future"
    narrow = Verifier(bj.trust(), max_skew=dt.timedelta(seconds=2))
    assert narrow.verify(device.present(issued.text, at(3)), NOW).code == (
        "presentation_from_future"
    )


def test_wrong_device_key_is_refused(bj: Instance, device: HolderDevice) -> None:
    from healthcode.core.passes.passes import make_presentation

    issued = bj.issue(device)
    thief = HolderDevice.generate()
    forged = make_presentation(issued.text, thief.private_key, NOW)
    assert bj.verifier().verify(forged).code == "wrong_device"


def test_modified_pass_is_refused(bj: Instance, device: HolderDevice) -> None:
    issued = bj.issue(device)
    cose = cbor2.loads(pass_cose_from_text(issued.text))
    claims = cbor2.loads(cose.value[2])
    claims[-65537] = "green" if claims[-65537] != "green" else "red"
    cose.value[2] = cbor2.dumps(claims)
    tampered = cbor2.dumps(cose)
    time_ms = int(NOW.timestamp() * 1000)
    signature = sign_raw(device.private_key, device_message(claims[7], time_ms))
    text = wrap(PRESENTATION_PREFIX, cbor2.dumps([tampered, time_ms, signature]))
    assert bj.verifier().verify(text).code == "bad_signature"


def test_forged_pass_signed_by_an_untrusted_key_is_refused(
    tmp_path: Path, bj: Instance, device: HolderDevice
) -> None:
    rogue = Instance.create(tmp_path / "rogue", "110000", "北京市 (forged)")
    shown = device.present(rogue.issue(device).text, NOW)
    assert bj.verifier().verify(shown).code == "unknown_issuer"


def test_kid_of_one_issuer_with_another_signature(
    tmp_path: Path, bj: Instance, device: HolderDevice
) -> None:
    rogue = KeyStore(tmp_path / "rogue")
    rogue.init("110000", "rogue", now=NOW)
    rogue_key = rogue.active()
    real_kid = bj.keys.active().kid
    issued = issue_pass(
        rogue_key.private_key,
        rogue_key.kid,
        region_code="110000",
        colour=Colour.GREEN,
        masked=MASKED,
        holder_key=device.public_key,
        now=NOW,
    )
    cose = cbor2.loads(pass_cose_from_text(issued.text))
    cose.value[0] = cbor2.dumps({1: -7, 4: real_kid})  # claim the genuine key id
    text = wrap(PASS_PREFIX, cbor2.dumps(cose))
    assert bj.verifier().verify(device.present(text, NOW)).code == "bad_signature"


def test_expired_by_one_second(bj: Instance, device: HolderDevice) -> None:
    issued = bj.issue(device)
    end = issued.claims.valid_until
    last = end - dt.timedelta(seconds=1)
    assert bj.verifier(last).verify(device.present(issued.text, last), last).ok
    verdict = bj.verifier(end).verify(device.present(issued.text, end), end)
    assert verdict.code == "pass_expired"


def test_pass_from_the_future_is_refused(bj: Instance, device: HolderDevice) -> None:
    issued = bj.issue(device, now=at(3600))
    verdict = bj.verifier().verify(device.present(issued.text, NOW), NOW)
    assert verdict.code == "pass_not_yet_valid"


def test_verifier_warns_when_its_clock_looks_wrong(bj: Instance, device: HolderDevice) -> None:
    issued = bj.issue(device)
    verifier = bj.verifier()
    # Every phone is 25 s behind us: our clock is the odd one out.
    for _ in range(5):
        verdict = verifier.verify(device.present(issued.text, NOW), at(25))
    assert verdict.ok  # still inside the window
    assert "clock_suspect" in [n.code for n in verdict.notices]
    # Lists signed "in the future" also reveal a clock that is behind.
    late = Verifier(bj.trust_store.refresh(at(3600)))
    assert "clock_suspect" in [n.code for n in late.notices(NOW)]


def test_trust_list_staleness_warning(bj: Instance, device: HolderDevice) -> None:
    issued = bj.issue(device)
    later = NOW + dt.timedelta(days=8)
    verifier = Verifier(bj.trust(NOW))
    assert not verifier.notices(NOW)
    verdict = verifier.verify(device.present(issued.text, later), later)
    assert "trust_list_stale" in [n.code for n in verdict.notices]


# --- keys and rotation -------------------------------------------------------------


def test_private_keys_are_0600_and_kid_is_derived(bj: Instance) -> None:
    from healthcode.core.passes.codec import kid_for

    key = bj.keys.active()
    assert kid_for(key.private_key.public_key()) == key.kid
    pem = bj.keys.path / f"{key.kid.hex()}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600


def test_world_readable_private_key_is_refused(bj: Instance) -> None:
    pem = bj.keys.path / f"{bj.keys.active().kid.hex()}.pem"
    os.chmod(pem, 0o644)
    with pytest.raises(KeyStorePermissionError):
        bj.keys.active()


def test_uninitialised_store(tmp_path: Path) -> None:
    with pytest.raises(NoActiveKeyError):
        KeyStore(tmp_path / "none").active()


def test_rotation_overlap(bj: Instance, device: HolderDevice) -> None:
    old_pass = bj.issue(device, now=NOW)
    rotated_at = at(3600)
    new_info = bj.keys.rotate(alg="EdDSA", now=rotated_at)
    assert new_info.alg == "EdDSA"
    new_pass = bj.issue(device, now=at(3700))
    assert new_pass.kid != old_pass.kid
    trust = bj.trust_store.refresh(at(3700))
    verifier = Verifier(trust)
    # Both keys verify during the overlap.
    for issued in (old_pass, new_pass):
        assert verifier.verify(device.present(issued.text, at(3700)), at(3700)).ok
    # The retired key cannot sign new passes that verify.
    old_key = bj.keys.list_keys()[1]
    assert old_key.retired_at == rotated_at
    assert old_key.verify_until is not None and old_key.verify_until > old_pass.claims.valid_until
    # After its passes expire the old key is pruned and the list no longer names it.
    after = old_key.verify_until + dt.timedelta(seconds=1)
    assert bj.keys.prune(after) == [old_pass.kid]
    assert [k.kid for k in bj.keys.list_keys()] == [new_pass.kid]


def test_pass_signed_after_retirement_is_refused(bj: Instance, device: HolderDevice) -> None:
    old_key = bj.keys.active()
    bj.keys.rotate(now=at(60))
    trust = bj.trust_store.refresh(at(120))
    late = issue_pass(
        old_key.private_key,
        old_key.kid,
        region_code="110000",
        colour=Colour.GREEN,
        masked=MASKED,
        holder_key=device.public_key,
        now=at(600),
    )
    verdict = Verifier(trust).verify(device.present(late.text, at(600)), at(600))
    assert verdict.code == "issuer_key_not_valid"


# --- revocation --------------------------------------------------------------------


def test_revocation_online_and_offline(bj: Instance, device: HolderDevice) -> None:
    revoked = bj.issue(device, Colour.GREEN)
    other = bj.issue(device, Colour.GREEN)
    shown = device.present(revoked.text, NOW)
    # Online: the service says so at once.
    online = bj.verifier(online_check=lambda region, kid, pid: pid == revoked.claims.pass_id)
    assert online.mode == "online"
    assert online.verify(shown).code == "revoked"
    assert online.verify(device.present(other.text, NOW)).ok
    # Offline: accepted until the next list arrives, refused after.
    offline = bj.verifier()
    assert offline.verify(shown).ok
    key = bj.keys.active()
    text = build_revocation_list(key, [(key.kid, revoked.claims.pass_id)], at(60))
    rl = load_revocation_list(text, bj.trust())
    assert rl.is_revoked(key.kid, revoked.claims.pass_id)
    assert not rl.is_revoked(key.kid, other.claims.pass_id)
    offline.add_revocation_list(rl)
    verdict = offline.verify(device.present(revoked.text, at(90)), at(90))
    assert verdict.code == "revoked"
    assert verdict.details["list_age_s"] == 30
    accepted = offline.verify(device.present(other.text, at(90)), at(90))
    assert accepted.ok and accepted.revocation_list_age_s == 30
    # An old list is reported.
    late = at(7 * 3600)
    stale = offline.verify(device.present(other.text, late), late)
    assert "revocation_list_stale" in [n.code for n in stale.notices]


def test_revocation_list_is_compact_and_has_no_false_negatives(bj: Instance) -> None:
    key = bj.keys.active()
    ids = [os.urandom(16) for _ in range(1000)]
    text = build_revocation_list(key, [(key.kid, i) for i in ids], NOW)
    rl = load_revocation_list(text, bj.trust())
    assert all(rl.is_revoked(key.kid, i) for i in ids)
    # ~29 bits per entry at 1e-6, base45 adds 50 %: well under 8 KB per 1000.
    assert rl.size_bytes < 8000
    assert rl.age(at(5)) == dt.timedelta(seconds=5)


def test_revocation_list_from_untrusted_signer_or_tampered(tmp_path: Path, bj: Instance) -> None:
    rogue = Instance.create(tmp_path / "rogue", "110000", "rogue")
    rk = rogue.keys.active()
    with pytest.raises(RevocationListError):
        load_revocation_list(build_revocation_list(rk, [], NOW), bj.trust())
    key = bj.keys.active()
    text = build_revocation_list(key, [(key.kid, b"x" * 16)], NOW)
    raw = cbor2.loads(zlib.decompress(b45decode(text[5:])))
    raw.value[3] = raw.value[3][:-1] + bytes([raw.value[3][-1] ^ 1])
    with pytest.raises(RevocationListError) as err:
        load_revocation_list(wrap("HCR1:", cbor2.dumps(raw)), bj.trust())
    assert err.value.code == "revocation_list_invalid"


# --- malformed input -------------------------------------------------------------


def _presentation_of(cose: bytes, device: HolderDevice, pass_id: bytes = b"\0" * 16) -> str:
    time_ms = int(NOW.timestamp() * 1000)
    signature = sign_raw(device.private_key, device_message(pass_id, time_ms))
    return wrap(PRESENTATION_PREFIX, cbor2.dumps([cose, time_ms, signature]))


def _recose(issued_text: str, protected: dict[int, object] | None = None, **kw: object) -> bytes:
    cose = cbor2.loads(pass_cose_from_text(issued_text))
    if protected is not None:
        cose.value[0] = cbor2.dumps(protected)
    if "unprotected" in kw:
        cose.value[1] = kw["unprotected"]
    if "claims" in kw:
        cose.value[2] = cbor2.dumps(kw["claims"])
    return cbor2.dumps(cose)


def test_malformed_inputs_each_get_a_stable_code(bj: Instance, device: HolderDevice) -> None:
    issued = bj.issue(device)
    kid = issued.kid
    good = device.present(issued.text, NOW)
    claims = cbor2.loads(cbor2.loads(pass_cose_from_text(issued.text)).value[2])
    bomb = PRESENTATION_PREFIX + b45encode(zlib.compress(b"\0" * (MAX_INFLATED * 100)))
    cases = {
        "": "malformed_pass",
        "hello": "malformed_pass",
        "HCP1:": "malformed_pass",
        good[:-7]: "malformed_pass",  # truncated
        good[:40] + "a" + good[41:]: "malformed_pass",  # not base45
        good + "::": "malformed_pass",  # garbled tail
        "HCP1:" + "A" * 5000: "pass_too_large",
        bomb: "pass_too_large",
        wrap(PRESENTATION_PREFIX, cbor2.dumps({"not": "a list"})): "malformed_pass",
        wrap(PRESENTATION_PREFIX, cbor2.dumps(["x", "y", "z"])): "malformed_pass",
        wrap(PRESENTATION_PREFIX, cbor2.dumps([b"x", 1, b"\0" * 64])): "malformed_pass",
        wrap(PRESENTATION_PREFIX, cbor2.dumps([1, 2])) + "": "malformed_pass",
        _presentation_of(_recose(issued.text, {1: -7, 4: kid, 2: [99]}), device): (
            "unknown_critical_header"
        ),
        _presentation_of(_recose(issued.text, {1: 0, 4: kid}), device): "unsupported_algorithm",
        _presentation_of(_recose(issued.text, {1: "none", 4: kid}), device): (
            "unsupported_algorithm"
        ),
        _presentation_of(_recose(issued.text, {1: -257, 4: kid}), device): (
            "unsupported_algorithm"
        ),
        _presentation_of(_recose(issued.text, {4: kid}, unprotected={1: -7}), device): (
            "unsupported_algorithm"
        ),
        _presentation_of(_recose(issued.text, {1: -7}), device): "malformed_pass",  # no kid
        _presentation_of(_recose(issued.text, claims={**claims, 1: 110000}), device): (
            "malformed_pass"  # iss of the wrong type
        ),
        _presentation_of(_recose(issued.text, claims={**claims, 4: "tomorrow"}), device): (
            "malformed_pass"
        ),
        _presentation_of(_recose(issued.text, claims={**claims, 6: True}), device): (
            "malformed_pass"
        ),
        _presentation_of(_recose(issued.text, claims={**claims, -65537: "blue"}), device): (
            "malformed_pass"
        ),
        _presentation_of(_recose(issued.text, claims={**claims, 99: "extra"}), device): (
            "malformed_pass"
        ),
        _presentation_of(_recose(issued.text, claims={**claims, 8: {1: {1: 2}}}), device): (
            "malformed_pass"
        ),
        _presentation_of(_recose(issued.text, claims=[1, 2, 3]), device): "malformed_pass",
        _presentation_of(b"\xff\xff", device): "malformed_pass",
    }
    verifier = bj.verifier()
    for text, code in cases.items():
        verdict = verifier.verify(text)
        assert (verdict.ok, verdict.code) == (False, code), (text[:60], verdict.details)


def test_read_pass_refuses_presentations_and_junk() -> None:
    for text in ("HCP1:ABC", "HC1:", "HC1:%%%"):
        with pytest.raises(PassError):
            read_pass(text)


def test_exp_in_the_year_9999_and_beyond_is_refused_not_crashed(
    bj: Instance, device: HolderDevice
) -> None:
    issued = bj.issue(device)
    claims = cbor2.loads(cbor2.loads(pass_cose_from_text(issued.text)).value[2])
    for exp in (2**63, 2**37, -1, 1.5):
        text = _presentation_of(_recose(issued.text, claims={**claims, 4: exp}), device)
        assert bj.verifier().verify(text).code == "malformed_pass"
