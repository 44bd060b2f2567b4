"""The admin CLI's document and plugin commands, through Typer's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthcode.cli.main import app

runner = CliRunner()

TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
TODAY = ["--today", "2026-11-26"]


def run_json(*args: str, stdin: str | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = runner.invoke(app, [*args, "--json"], input=stdin)
    return result.exit_code, json.loads(result.stdout)


def test_valid_resident_id_exits_0_with_masked_output() -> None:
    code, out = run_json("documents", "check", "--number", "11010519491231002X", *TODAY)
    assert code == 0
    assert out["valid"] is True
    assert out["kind"] == "cn_resident_id"
    assert out["masked_number"] == "11**************2X"
    assert "11010519491231002X" not in json.dumps(out)


def test_wrong_check_character_exits_1_with_a_coded_problem() -> None:
    code, out = run_json("documents", "check", "--number", "110105194912310021", *TODAY)
    assert code == 1
    assert out["valid"] is False
    codes = {p["code"] for p in out["problems"] if p["severity"] == "error"}
    assert codes and all(p["message_zh"] and p["message_en"] for p in out["problems"])


def test_mrz_from_stdin_is_detected() -> None:
    code, out = run_json("documents", "check", *TODAY, stdin=TD3 + "\n")
    assert out["kind"] == "passport"
    assert out["masked_name"] == "ERIKSSON"
    assert out["masked_number"] == "L8*****C3"
    # The specimen expired in 2012: reported, but still well-formed.
    assert code == 0
    assert "document_expired" in {p["code"] for p in out["problems"]}


def test_number_from_stdin() -> None:
    code, out = run_json("documents", "check", *TODAY, stdin="440524188001010014\n")
    assert code == 0
    assert out["kind"] == "cn_resident_id"


def test_lower_case_mrz_is_read_with_a_warning() -> None:
    code, out = run_json("documents", "check", "--mrz", TD3.lower(), *TODAY)
    assert code == 0
    assert "mrz_lowercase" in {p["code"] for p in out["problems"]}


@pytest.mark.parametrize(
    ("args", "error_code"),
    [
        (["--number", ""], "empty_input"),
        (["--number", "9" * 500], "input_too_long"),
        (["--number", "11010519491231002X!"], "invalid_characters"),
        (["--number", "ABC"], "unknown_document_kind"),
    ],
)
def test_bad_input_exits_1_with_a_stable_code(args: list[str], error_code: str) -> None:
    code, out = run_json("documents", "check", *args)
    assert code == 1
    assert out["ok"] is False
    assert out["error"]["code"] == error_code
    assert out["error"]["message_zh"]


def test_full_width_input_is_normalised() -> None:
    code, out = run_json(
        "documents", "check", "--number", "１１０１０５１９４９１２３１００２Ｘ", *TODAY
    )
    assert code == 0 and out["kind"] == "cn_resident_id"


def test_usage_errors_exit_2() -> None:
    both = runner.invoke(app, ["documents", "check", "--number", "1", "--mrz", "P<"])
    assert both.exit_code == 2
    unknown_kind = runner.invoke(app, ["documents", "check", "--kind", "nope", "--number", "1"])
    assert unknown_kind.exit_code == 2
    assert "documents kinds" in unknown_kind.stderr
    bad_option = runner.invoke(app, ["documents", "check", "--frobnicate"])
    assert bad_option.exit_code == 2


def test_human_output_is_bilingual_and_masked() -> None:
    result = runner.invoke(app, ["documents", "check", "--number", "11010519491231002X", *TODAY])
    assert result.exit_code == 0
    assert "居民身份证" in result.stdout
    assert "11**************2X" in result.stdout
    assert "11010519491231002X" not in result.stdout


def test_kinds_lists_every_builtin_kind() -> None:
    result = runner.invoke(app, ["documents", "kinds", "--json"])
    assert result.exit_code == 0
    kinds = {k["kind"] for k in json.loads(result.stdout)}
    assert {
        "cn_resident_id",
        "passport",
        "hk_mo_home_return_permit",
        "tw_compatriot_permit",
        "hmt_residence_permit",
        "hk_mo_exit_entry_permit",
    } <= kinds


def test_plugins_list_shows_hooks() -> None:
    result = runner.invoke(app, ["plugins", "list", "--json"])
    assert result.exit_code == 0
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    for name in ("id_card", "passport", "hkmo_permit"):
        assert "healthcode_parse_document" in plugins[name]["hooks"]
        assert plugins[name]["version"]


def test_document_commands_do_not_import_the_image_stacks() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from healthcode.cli.main import app\n"
        "r = CliRunner().invoke(app, ['documents', 'check', '--number', '11010519491231002X'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = {'mediapipe', 'onnxruntime', 'cv2', 'numpy', 'PIL', 'skimage', 'passporteye'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_wrong_check_character_without_kind_names_the_kind_it_looks_like() -> None:
    # 17 digits and a letter: a resident ID whose check character is wrong,
    # not "no known kind".
    code, out = run_json("documents", "check", "--number", "11010519491231002Y", *TODAY)
    assert code == 1
    error = out["error"]
    assert error["code"] == "malformed_number"
    assert error["details"]["looks_like"] == "cn_resident_id"
    assert error["message_en"].startswith("This looks like a Resident Identity Card number")
    assert "居民身份证" in error["message_zh"]
    assert "11010519491231002Y" not in json.dumps(out)
    # Named, the kind says the same thing without the guess.
    code, named = run_json(
        "documents", "check", "--kind", "cn_resident_id", "--number", "11010519491231002Y"
    )
    assert named["error"]["code"] == "malformed_number"
    assert "looks_like" not in named["error"]["details"]


def test_a_number_shaped_like_several_kinds_names_them() -> None:
    code, out = run_json("documents", "check", "--number", "11010519491231002", *TODAY)
    assert code == 1
    assert out["error"]["code"] == "unknown_document_kind"
    assert "cn_resident_id" in out["error"]["details"]["looks_like"]
    assert "Resident Identity Card" in out["error"]["message_en"]
    # Nothing like any kind: as before.
    code, out = run_json("documents", "check", "--number", "ABC")
    assert out["error"]["code"] == "unknown_document_kind"
    assert "looks_like" not in out["error"]["details"]


# --- documents check --file ----------------------------------------------------------

TD3_ONE_LINE = TD3.replace("\n", "|")


def run_file(*args: str, stdin: str | bytes | None = None) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    result = runner.invoke(app, ["documents", "check", *args, *TODAY], input=stdin)
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()]


def test_file_prints_one_json_line_per_record_in_order(tmp_path: Path) -> None:
    records = tmp_path / "records.txt"
    records.write_text(
        "11010519491231002X\n\n110105194912310021\r\nABC\n"
        f"{TD3_ONE_LINE}\n  440524188001010014  \n",
        encoding="utf-8",
    )
    code, lines = run_file("--file", str(records))
    assert code == 1  # one record is not valid
    assert [line["record"] for line in lines] == [1, 3, 4, 5, 6]
    valid, wrong, unknown, passport, old = lines
    assert valid == {
        "record": 1,
        "ok": True,
        "kind": "cn_resident_id",
        "valid": True,
        "masked_number": "11**************2X",
        "problems": [],
    }
    assert wrong["valid"] is False and wrong["ok"] is True
    assert {p["code"] for p in wrong["problems"]} == {"check_digit_mismatch"}
    assert all(p["message_en"] and p["message_zh"] for p in wrong["problems"])
    assert unknown["ok"] is False and unknown["valid"] is False and unknown["kind"] is None
    assert unknown["error"]["code"] == "unknown_document_kind" and unknown["error"]["message_zh"]
    assert passport["kind"] == "passport" and passport["masked_number"] == "L8*****C3"
    assert "document_expired" in {p["code"] for p in passport["problems"]}
    assert old["kind"] == "cn_resident_id" and old["valid"] is True
    output = json.dumps(lines)
    for secret in ("11010519491231002X", "L898902C3", "ERIKSSON<<ANNA", "440524188001010014"):
        assert secret not in output


def test_file_records_match_the_single_check(tmp_path: Path) -> None:
    inputs = ["11010519491231002X", "11010519491231002Y", TD3_ONE_LINE, "KAZ110090123105"]
    records = tmp_path / "records.txt"
    records.write_text("\n".join(inputs) + "\n", encoding="utf-8")
    _, lines = run_file("--file", str(records))
    for text, line in zip(inputs, lines, strict=True):
        option = "--mrz" if "<" in text else "--number"
        _, single = run_json("documents", "check", option, text, *TODAY)
        if single["ok"]:
            for key in ("kind", "valid", "masked_number", "problems"):
                assert line[key] == single[key]
        else:
            assert line["error"] == single["error"]


def test_file_from_stdin_with_a_named_kind() -> None:
    code, lines = run_file("--file", "-", "--kind", "passport", stdin=f"{TD3_ONE_LINE}\n")
    assert code == 0
    assert [(line["record"], line["kind"]) for line in lines] == [(1, "passport")]
    code, lines = run_file("--kind", "cn_resident_id", "--file", "-", stdin="P<UTO\n")
    assert code == 1 and lines[0]["ok"] is False
    assert lines[0]["error"]["code"] == "unsupported_input"


def test_all_valid_records_exit_0_and_an_empty_file_prints_nothing(tmp_path: Path) -> None:
    code, lines = run_file("--file", "-", stdin="11010519491231002X\n440524188001010014")
    assert code == 0 and [line["valid"] for line in lines] == [True, True]
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    assert run_file("--file", str(empty)) == (0, [])


def test_bad_bytes_and_overlong_lines_are_refused_per_record() -> None:
    stdin = b"\xef\xbb\xbf11010519491231002X\n1101\xff0519491231002X\n" + b"9" * 100_000 + b"\n"
    code, lines = run_file("--file", "-", stdin=stdin + b"11010519491231002X\n")
    assert code == 1
    assert [line["record"] for line in lines] == [1, 2, 3, 4]
    assert lines[0]["valid"] is True  # the byte-order mark is not part of the record
    assert lines[1]["error"]["code"] == "invalid_characters"
    assert lines[2]["error"]["code"] == "input_too_long"
    assert lines[3]["valid"] is True


def test_an_unreadable_file_is_a_clear_usage_error(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["documents", "check", "--file", str(tmp_path / "nope.txt")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr and "nope.txt" in missing.stderr
    assert "无法读取" in missing.stderr
    folder = runner.invoke(app, ["documents", "check", "--file", str(tmp_path)])
    assert folder.exit_code == 2 and "cannot read" in folder.stderr
    both = runner.invoke(app, ["documents", "check", "--file", "-", "--number", "1"])
    assert both.exit_code == 2 and "--file" in both.stderr


def test_file_help_documents_the_record_format() -> None:
    result = runner.invoke(app, ["documents", "check", "--help"])
    assert result.exit_code == 0
    assert "--file" in result.stdout and "joined by |" in " ".join(result.stdout.split())
