"""The holder's side of the CLI, as a newcomer meets it (issue 16, "CLI that
fits its users"): each friction point seen, through the real ``healthcode``
app, against a real database or the real service (uvicorn on loopback).

* frames are positional, and ``--frames`` is answered with what to type;
* the key file ``passes device-key`` writes is the one every command takes;
* a holder profile remembers the server, the subject id and the key;
* renewal and dependants through the API, ``passes present --watch``;
* text files and stdin where a code is read;
* ``verify --online --server --token``;
* clear errors (an unknown subject, an unreachable server, a refused
  document's problems, a refusal's code), each said once;
* times in Asia/Shanghai.

The live server of this module draws every liveness challenge from
``turn_right`` and ``open_mouth`` (``HEALTHCODE_LIVENESS_ACTIONS``), which the
OBAMA photos answer in either order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import itertools
import json
import os
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.backends import LiveServer
from support.browser import add_holder, data_page_png, new_token
from support.data import FACES
from support.documents import resident_id
from support.faces import OBAMA, require_face_models
from typer.testing import CliRunner, Result

from healthcode.cli.main import app
from healthcode.core.passes import KeyStore
from healthcode.core.storage.database import init_instance

runner = CliRunner()
FRAMES = [str(FACES / name) for name, _ in OBAMA.frames]
CAPTURE = str(FACES / OBAMA.capture)
SHANGHAI_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00")
"""How the CLI shows a time to a person: Asia/Shanghai, with its offset."""


@pytest.fixture(scope="module")
def _liveness_actions_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEALTHCODE_LIVENESS_ACTIONS", ",".join(OBAMA.actions))
        yield


@pytest.fixture(scope="module")
def live_server(_liveness_actions_env: None, live_server: LiveServer) -> LiveServer:
    """The live server (tests/conftest.py), with the actions the photos answer."""
    return live_server


@pytest.fixture(autouse=True)
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Profiles in the test's own directory; no server or token from outside."""
    for name in ("HEALTHCODE_SERVER", "HEALTHCODE_GUARD_TOKEN", "HEALTHCODE_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HEALTHCODE_PROFILE_DIR", str(tmp_path / "profiles"))
    return tmp_path / "profiles"


def hc(*args: str, expect: int = 0, stdin: str | None = None) -> Result:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == expect, (result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def hc_json(*args: str, expect: int = 0) -> Any:
    return json.loads(hc(*args, "--json", expect=expect).stdout)


def flat(text: str) -> str:
    """``text`` without the line breaks and box of Rich's error panel."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


def said_once(result: Result, code: str) -> None:
    """The problem on stderr once, in both languages, and nothing on stdout."""
    assert result.stdout == ""
    assert result.stderr.count(f"[{code}]") == 1, result.stderr
    assert "错误：" in result.stderr


def device_key_file(tmp_path: Path) -> Path:
    key = tmp_path / "phone.key"
    hc("passes", "device-key", str(key))
    return key


# --- frames, keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["holder", "enroll", "--name", "X Y", "--mrz", "P<"],
        ["holder", "renew"],
        ["holder", "dependants", "add", "--name", "X Y", "--number", "1"],
        ["enroll", "submit", "--name", "X Y", "--number", "1"],
        ["enroll", "renew", "--subject", "ab" * 32],
        ["dependants", "add", "--holder", "ab" * 32, "--name", "X Y", "--number", "1"],
    ],
)
def test_frames_given_with_dash_dash_frames_say_what_to_type(command: list[str]) -> None:
    # The README once said `--frames f1.jpg f2.jpg f3.jpg`.
    words = " ".join(itertools.takewhile(lambda w: not w.startswith("-"), command))
    base = [*command, "--challenge", "n", "--capture", CAPTURE]
    for args in ([*base, "--frames", *FRAMES], base):
        message = flat(hc(*args, expect=2).stderr)
        assert "without --frames" in message
        assert f"healthcode {words} ... --capture me.jpg f1.jpg f2.jpg f3.jpg" in message


def test_the_key_file_device_key_writes_is_what_enroll_submit_takes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hc.db'}"
    asyncio.run(init_instance(url, tmp_path / "secrets.json"))
    instance = ["--database", url, "--secrets-file", str(tmp_path / "secrets.json")]
    written = runner.invoke(app, ["passes", "device-key", str(tmp_path / "phone.key")])
    assert written.exit_code == 0 and "private device key" in written.stderr
    assert stat.S_IMODE((tmp_path / "phone.key").stat().st_mode) == 0o600
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    submit = ["enroll", "submit", "--kind", "cn_resident_id", "--name", "王五", *instance]
    submit += ["--number", resident_id(dt.date(1979, 9, 9)), "--challenge", "no-such-nonce"]
    submit += ["--capture", CAPTURE, *FRAMES]
    # The device key is checked before the challenge: the private key file
    # passes (its public half is taken), a broken key does not.
    refused = hc_json(*submit, "--device-key", str(tmp_path / "phone.key"), expect=1)
    assert refused["error"]["code"] == "challenge_unknown"
    refused = hc_json(*submit, "--device-key", str(garbage), expect=1)
    assert refused["error"]["code"] == "device_key_invalid"


# --- passes: reading input, --watch, times --------------------------------------------------


@pytest.fixture
def issued(tmp_path: Path) -> tuple[list[str], Path, Path]:
    """A region's keys, a holder key and a green pass for it (file)."""
    keys = ["--keys-dir", str(tmp_path / "keys"), "--trust-file", str(tmp_path / "trust.hct")]
    KeyStore(tmp_path / "keys").init("110000", "北京市")
    key = device_key_file(tmp_path)
    out = hc_json(
        "passes",
        "issue",
        "--device-key",
        str(key),
        "--colour",
        "green",
        "--kind",
        "cn_resident_id",
        "--masked-name",
        "张",
        "--masked-number",
        "11**************2X",
        *keys[:2],
    )
    assert out["valid_until"] == "2026-11-27T00:00:00+08:00"  # 24:00 Asia/Shanghai
    pass_file = tmp_path / "pass.txt"
    pass_file.write_text(out["pass"] + "\n")
    return keys, key, pass_file


def test_verify_reads_a_text_file_and_show_reads_stdin(
    tmp_path: Path, issued: tuple[list[str], Path, Path]
) -> None:
    keys, key, pass_file = issued
    shown = hc("passes", "present", str(pass_file), "--device-key", str(key)).stdout.strip()
    assert shown.startswith("HCP1:")
    shown_file = tmp_path / "shown.txt"
    shown_file.write_text(shown + "\n")  # `passes present ... > shown.txt`
    verdict = hc("verify", str(shown_file), *keys)
    lines = verdict.stdout.splitlines()
    assert lines[0] == "✔ 通行 ADMIT"
    assert SHANGHAI_TIME.search(verdict.stdout) and "+00:00" not in verdict.stdout
    replayed = hc("verify", str(shown_file), *keys, expect=1)
    assert "refused [presentation_replayed]: This live code was already used." in replayed.stderr

    claims = json.loads(hc("passes", "show", "-", stdin=pass_file.read_text()).stdout)
    assert (claims["masked_number"], claims["verified"]) == ("11**************2X", False)
    assert claims["valid_until"].endswith("+08:00")
    assert json.loads(hc("passes", "show", str(pass_file)).stdout) == claims


def test_present_watch_prints_a_renewed_terminal_qr(
    issued: tuple[list[str], Path, Path], clock: Any
) -> None:
    _, key, pass_file = issued
    watch = ["passes", "present", str(pass_file), "--device-key", str(key), "--watch"]
    out = hc(*watch, "--count", "2", "--interval", "0").stdout
    codes = [line for line in out.splitlines() if line.startswith("HCP1:")]
    assert len(codes) == 2 and codes[0] != codes[1]
    assert "▀" in out or "█" in out  # the QR, drawn with half blocks
    assert "pass valid until / 通行码有效期至 2026-11-27 00:00:00 +08:00" in out
    clock.move_to(dt.datetime(2026, 11, 27, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    expired = hc(*watch, "--count", "1", expect=1)
    assert "[pass_expired]" in expired.stderr and "HCP1:" not in expired.stdout


# --- errors said once and clearly -----------------------------------------------------------


def _free_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_no_profile_and_no_server_say_what_to_give(tmp_path: Path, profiles: Path) -> None:
    result = hc("holder", "status", expect=1)
    said_once(result, "profile_missing")
    assert "--server URL" in result.stderr and "holder enroll" in result.stderr
    as_json = hc_json("holder", "status", expect=1)
    assert as_json["error"]["details"] == {"missing": "server", "profile": "default"}
    no_key = tmp_path / "no.key"
    result = hc(
        "holder", "status", "--server", "http://127.0.0.1:9", "--key", str(no_key), expect=1
    )
    said_once(result, "holder_key_invalid")
    assert str(no_key) in flat(result.stderr) and "passes device-key" in result.stderr

    profiles.mkdir()
    (profiles / "default.json").write_text("[1, 2")
    said_once(hc("holder", "status", expect=1), "profile_invalid")
    said_once(hc("holder", "status", "--profile", "../x", expect=1), "profile_invalid")


def test_an_unreachable_server_is_named(tmp_path: Path) -> None:
    url = _free_url()
    key = device_key_file(tmp_path)
    result = hc(
        "holder", "status", "--server", url, "--key", str(key), "--subject", "ab" * 32, expect=69
    )
    said_once(result, "server_unreachable")
    assert url in result.stderr and "ConnectError" not in result.stderr
    online = hc("verify", "HCP1:X", "--online", "--server", url, "--token", "t", expect=69)
    said_once(online, "server_unreachable")


def test_verify_online_says_what_it_needs() -> None:
    said_once(hc("verify", "HCP1:X", "--online", expect=1), "online_unavailable")
    needs_token = hc("verify", "HCP1:X", "--online", "--server", "http://127.0.0.1:9", expect=1)
    said_once(needs_token, "guard_token_missing")
    assert "--token" in needs_token.stderr


def test_assist_check_explains_a_refused_number(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hc.db'}"
    asyncio.run(init_instance(url, tmp_path / "secrets.json"))
    number = resident_id(dt.date(1950, 1, 1))
    wrong = number[:-1] + ("0" if number[-1] != "0" else "1")
    result = hc(
        "assist",
        "check",
        "--operator",
        "desk",
        "--number",
        wrong,
        "--database",
        url,
        "--secrets-file",
        str(tmp_path / "secrets.json"),
        expect=1,
    )
    assert "[document_not_accepted]" in result.stderr
    # The check-digit problem in both languages, not only its code.
    assert "check character" in result.stderr and "校验码" in result.stderr
    assert wrong not in result.stderr


# --- against the service --------------------------------------------------------------------


def agree_with_the_server(server: LiveServer, clock: Any) -> None:
    """Set this test's clock back to the server's when it is ahead: the
    server's clock starts only once its process has started (seconds, on a
    busy machine), and a live code from ahead of it is refused as from the
    future. (Its Date header counts whole seconds: this leaves us at most a
    second behind, well within a live code's 30 s.)"""
    date = httpx.get(f"{server.url}/health/live", timeout=30).headers["date"]
    ahead = dt.datetime.now(dt.UTC) - email.utils.parsedate_to_datetime(date)
    if ahead > dt.timedelta(seconds=1):
        clock.shift(-ahead)


def test_a_profile_carries_the_holder_through_status_pass_watch_and_online_verify(
    live_server: LiveServer, tmp_path: Path, profiles: Path, clock: Any
) -> None:
    agree_with_the_server(live_server, clock)
    holder = add_holder(live_server, "Q2468013")
    key = tmp_path / "phone.key"
    holder.device.save(key)
    hc(
        "holder",
        "profile",
        "save",
        "--server",
        live_server.url + "/",
        "--key",
        str(key),
        "--subject",
        holder.subject_id,
    )
    saved = profiles / "default.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text()) == {
        "server": live_server.url,
        "subject_id": holder.subject_id,
        "device_key": str(key.resolve()),
    }  # no name, no number

    status = hc("holder", "status").stdout
    assert status.startswith("未见异常 / nothing abnormal (green), valid until / 有效期至 ")
    assert SHANGHAI_TIME.search(status)
    assert hc_json("holder", "status")["valid_until"].endswith("+08:00")

    pass_file = tmp_path / "pass.txt"
    fetched = hc("holder", "pass", "--out", str(pass_file)).stdout
    assert f"healthcode passes present {pass_file} --watch" in fetched
    watch = hc("passes", "present", str(pass_file), "--watch", "--count", "1").stdout
    shown = next(line for line in watch.splitlines() if line.startswith("HCP1:"))

    guard = new_token(live_server, "guard", "gate 16")
    admitted = hc("verify", shown, "--online", "--token", guard)  # server: the profile's
    assert admitted.stdout.splitlines()[:2] == ["✔ 通行 ADMIT", "未见异常 nothing abnormal"]
    assert "Q2****13" in admitted.stdout and SHANGHAI_TIME.search(admitted.stdout)
    again = hc("verify", shown, "--online", "--token", guard, "--json", expect=1)
    assert json.loads(again.stdout)["code"] == "presentation_replayed"
    refused = hc("verify", shown, "--online", "--token", guard, expect=1)
    assert "refused [presentation_replayed]: This live code was already used." in refused.stderr

    assert hc("holder", "dependants", "list").stdout == "no dependants / 暂无被代查人\n"
    assert hc_json("holder", "dependants", "list")["dependants"] == []


def test_renewal_and_dependants_reach_the_api_signed(
    live_server: LiveServer, tmp_path: Path
) -> None:
    holder = add_holder(live_server, "Q1357924")
    key = tmp_path / "phone.key"
    holder.device.save(key)
    hc(
        "holder",
        "profile",
        "save",
        "--server",
        live_server.url,
        "--key",
        str(key),
        "--subject",
        holder.subject_id,
    )
    challenge = tmp_path / "challenge.json"
    out = hc("holder", "challenge", "--out", str(challenge)).stdout
    actions = re.search(r"actions / 动作: (.*)", out)
    assert actions and sorted(actions[1].split(", ")) == sorted(OBAMA.actions)
    assert SHANGHAI_TIME.search(out)
    assert json.loads(challenge.read_text())["nonce"] in out
    # An enrollment challenge answered for a renewal or a dependant: the
    # signed request reached the handler, which refuses the challenge.
    for command in (
        ["holder", "renew"],
        [
            "holder",
            "dependants",
            "add",
            "--name",
            "X Y",
            "--number",
            resident_id(dt.date(2015, 1, 1)),
        ],
    ):
        result = hc(
            *command, "--challenge", str(challenge), "--capture", CAPTURE, *FRAMES, expect=1
        )
        said_once(result, "challenge_unknown")


def test_an_unknown_subject_gets_its_own_code(live_server: LiveServer, tmp_path: Path) -> None:
    key = device_key_file(tmp_path)
    common = ["--server", live_server.url, "--key", str(key)]
    for subject in ("0" * 64, "abc", "AB" * 32):
        result = hc("holder", "status", *common, "--subject", subject, expect=1)
        said_once(result, "subject_unknown")
        assert "enroll" in result.stderr
    as_json = hc("holder", "status", *common, "--subject", "0" * 64, "--json", expect=1)
    assert as_json.stderr == ""
    error = json.loads(as_json.stdout)["error"]
    assert (error["code"], error["details"]["status"]) == ("subject_unknown", 401)


def test_enroll_through_the_api_saves_the_profile_and_renews_by_face(
    live_server: LiveServer, tmp_path: Path, profiles: Path
) -> None:
    """The README's walkthrough for a holder: device key, challenge, enroll with
    a photographed data page, then status and a renewal with no ids typed."""
    require_face_models()
    import shutil

    if shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed")
    page = tmp_path / "passport-page.png"
    page.write_bytes(data_page_png("P9081726"))
    key = device_key_file(tmp_path)
    nonce = hc_json("holder", "challenge", "--server", live_server.url)["nonce"]
    enrolled = hc(
        "holder",
        "enroll",
        "--server",
        live_server.url,
        "--key",
        str(key),
        "--challenge",
        nonce,
        "--image",
        str(page),
        "--name",
        "QUARTERMAINE ALLAN JAMES",
        "--capture",
        CAPTURE,
        *FRAMES,
    ).stdout
    assert "QUARTERMAINE P9****26" in enrolled and "P9081726" not in enrolled
    profile = json.loads((profiles / "default.json").read_text())
    assert profile["server"] == live_server.url and profile["device_key"] == str(key.resolve())
    assert f"subject id / 主体编号: {profile['subject_id']}" in enrolled
    assert "P9081726" not in json.dumps(profile) and "QUARTERMAINE" not in json.dumps(profile)

    assert hc_json("holder", "status")["colour"] == "green"
    renewal = tmp_path / "renew.json"
    hc("holder", "challenge", "--purpose", "renew", "--out", str(renewal))
    renewed = hc_json("holder", "renew", "--challenge", str(renewal), "--capture", CAPTURE, *FRAMES)
    assert renewed["subject"]["subject_id"] == profile["subject_id"]
    assert renewed["status"]["valid_until"].endswith("+08:00")

    # A dependant (here the photos of the same face on another passport).
    child_page = tmp_path / "child-page.png"
    child_page.write_bytes(data_page_png("P5566771", given="ELSIE"))
    dependant = tmp_path / "dependant.json"
    hc("holder", "challenge", "--purpose", "dependant", "--out", str(dependant))
    added = hc(
        "holder",
        "dependants",
        "add",
        "--challenge",
        str(dependant),
        "--image",
        str(child_page),
        "--name",
        "QUARTERMAINE ELSIE",
        "--capture",
        CAPTURE,
        *FRAMES,
    ).stdout
    assert added.startswith("1. QUARTERMAINE P5****71 (passport): 未见异常 / nothing abnormal")
    listed = hc_json("holder", "dependants", "list")["dependants"]
    assert [d["subject"]["masked_number"] for d in listed] == ["P5****71"]


def test_profile_show(tmp_path: Path, profiles: Path) -> None:
    assert hc_json("holder", "profile", "show")["exists"] is False
    said_once(hc("holder", "profile", "save", "--subject", "nope", expect=1), "profile_invalid")
    hc("holder", "profile", "save", "--server", "http://h:1", "--profile", "work")
    shown = hc("holder", "profile", "show", "--profile", "work").stdout
    assert "server: http://h:1" in shown and "subject_id: -" in shown
    assert not (profiles / "default.json").exists()
    assert os.environ["HEALTHCODE_PROFILE_DIR"] == str(profiles)
