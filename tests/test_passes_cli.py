"""The keys / trust / passes / verify commands, end to end through Typer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from healthcode.cli import keys, passes, trust, verify

NOW = "2026-11-26T02:00:00+00:00"
LATER = "2026-11-26T02:00:05+00:00"

app = typer.Typer()
app.add_typer(keys.app, name="keys")
app.add_typer(trust.app, name="trust")
app.add_typer(passes.app, name="passes")
app.command("verify")(verify.verify_command)
runner = CliRunner()


def _run(*args: str) -> tuple[int, Any]:
    result = runner.invoke(app, list(args))
    out = result.stdout.strip()
    try:
        return result.exit_code, json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        return result.exit_code, out


def test_two_regions_through_the_cli(tmp_path: Path) -> None:
    bj = ["--keys-dir", str(tmp_path / "bj"), "--trust-file", str(tmp_path / "bj.hct")]
    tj_keys = ["--keys-dir", str(tmp_path / "tj")]
    assert (
        _run(
            "keys",
            "init",
            "--region",
            "110000",
            "--name",
            "北京市",
            *bj[:2],
            "--now",
            NOW,
            "--json",
        )[0]
        == 0
    )
    code, out = _run(
        "keys",
        "init",
        "--region",
        "120000",
        "--name",
        "天津市",
        "--alg",
        "EdDSA",
        *tj_keys,
        "--now",
        NOW,
        "--json",
    )
    assert code == 0 and isinstance(out, dict) and out["alg"] == "EdDSA"
    device = tmp_path / "phone.pem"
    assert _run("passes", "device-key", str(device))[0] == 0
    code, out = _run(
        "passes",
        "issue",
        "--device-key",
        str(device),
        "--colour",
        "yellow",
        "--kind",
        "cn_resident_id",
        "--masked-name",
        "张",
        "--masked-number",
        "12**************34",
        *tj_keys,
        "--now",
        NOW,
        "--json",
    )
    assert code == 0 and isinstance(out, dict)
    code, shown = _run(
        "passes", "present", str(out["pass"]), "--device-key", str(device), "--now", NOW
    )
    assert code == 0 and isinstance(shown, str) and shown.startswith("HCP1:")

    code, verdict = _run("verify", shown, *bj, "--now", LATER, "--json")
    assert code == 1 and isinstance(verdict, dict) and verdict["code"] == "unknown_issuer"

    export = tmp_path / "tj.hck"
    assert _run("keys", "export", "-o", str(export), *tj_keys, "--now", NOW)[0] == 0
    assert _run("trust", "add", str(export), *bj, "--now", NOW, "--json")[0] == 0
    code, verdict = _run("verify", shown, *bj, "--now", LATER, "--json")
    # Genuine and current, but yellow: do not admit (exit 4), never "admit".
    assert code == 4 and isinstance(verdict, dict)
    assert (verdict["ok"], verdict["admit"], verdict["decision_zh"]) == (True, False, "禁止通行")
    assert (verdict["colour"], verdict["issuer"], verdict["masked_name"]) == (
        "yellow",
        "120000",
        "张",
    )

    code, listed = _run("trust", "list", *bj, "--now", LATER, "--json")
    assert isinstance(listed, dict) and {k["region"] for k in listed["keys"]} == {
        "110000",
        "120000",
    }

    # QR round trip: render a PNG, verify the image (the same code again: a
    # replay, unless this device's seen-list is off).
    png = tmp_path / "code.png"
    assert _run("passes", "qr", shown, "-o", str(png))[0] == 0
    code, verdict = _run("verify", str(png), *bj, "--now", LATER, "--json")
    assert code == 1 and isinstance(verdict, dict)
    assert verdict["code"] == "presentation_replayed"
    code, verdict = _run("verify", str(png), *bj, "--now", LATER, "--json", "--no-seen-list")
    assert code == 4, verdict
    # For a person: the decision comes first, in words.
    human = runner.invoke(app, ["verify", shown, *bj, "--now", LATER, "--no-seen-list"])
    assert human.exit_code == 4
    assert human.output.splitlines()[0] == "✘ 禁止通行 DO NOT ADMIT"

    assert _run("trust", "remove", "120000", *bj, "--now", LATER, "--json")[0] == 0
    code, verdict = _run("verify", shown, *bj, "--now", LATER, "--json")
    assert code == 1 and isinstance(verdict, dict) and verdict["code"] == "unknown_issuer"

    # Keys: rotate, list.
    assert _run("keys", "rotate", *bj, "--now", LATER, "--json")[0] == 0
    code, keys = _run("keys", "list", *bj[:2], "--json")
    assert isinstance(keys, dict) and [k["active"] for k in keys["keys"]] == [True, False]


def test_verify_garbage_gives_a_code_not_a_traceback(tmp_path: Path) -> None:
    bj = ["--keys-dir", str(tmp_path / "bj"), "--trust-file", str(tmp_path / "bj.hct")]
    _run("keys", "init", "--region", "110000", "--name", "北京市", *bj[:2])
    for junk in ("HCP1:%%%", "HC1:ABC", "hello"):
        result = runner.invoke(app, ["verify", junk, *bj, "--json"])
        assert result.exit_code == 1
        assert json.loads(result.stdout)["ok"] is False
        assert result.exception is None or isinstance(result.exception, SystemExit)
