"""The pages' shared module (static/js/common.js) under Node: the language
choice, Asia/Shanghai times (24:00 for the end of a day), and the API helper:
problem documents with their code and zh/en messages, Retry-After on 429/503,
a network failure as ``offline``, a non-JSON error as ``http_<status>``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from healthcode.api.web import STATIC_DIR

NODE = shutil.which("node")
DRIVER = Path(__file__).parent / "js" / "common_driver.mjs"

pytestmark = [
    pytest.mark.slow,  # runs node in a subprocess
    pytest.mark.skipif(NODE is None, reason="node (20 or later) is not installed"),
]


def _run(browser_lang: str = "", search: str = "") -> dict[str, Any]:
    assert NODE is not None
    result = subprocess.run(
        [NODE, str(DRIVER), (STATIC_DIR / "js" / "common.js").as_uri(), browser_lang, search],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_language_is_chinese_by_default_and_follows_the_browser_and_the_switch() -> None:
    assert _run()["lang"] == "zh"
    assert _run("zh-TW")["lang"] == "zh"
    assert _run("en-GB")["lang"] == "en"
    assert _run("fr-FR")["lang"] == "zh"
    assert _run("en-GB", "?lang=zh")["lang"] == "zh"
    assert _run("zh-CN", "?lang=en")["lang"] == "en"


def test_times_are_shown_in_asia_shanghai() -> None:
    out = _run()
    assert out["time"] == "2026-11-26 10:03:04"
    assert out["time_short"] == "10:03"
    assert out["date_late"] == "2026-11-27"  # 17:00 UTC is already the next day
    assert out["until_midnight"] == "2026-11-26 24:00"
    assert out["until_other"] == "2026-11-26 18:30"
    assert out["t_busy_en"] == "The service is busy. Try again in 7 s."
    assert out["t_missing"] == "no.such.key"


def test_the_api_helper_sends_json_with_the_token_and_reads_problems() -> None:
    out = _run()
    assert out["ok"] == {"ok": {"admit": True}}
    assert out["seen"] == {
        "path": "/guard/verifications",
        "method": "POST",
        "auth": "Bearer hc_guard_1.s",
        "body": '{"presentation":"HCP1:x"}',
    }
    assert out["empty_204"] == {"ok": None}

    limited = out["problem_429"]["problem"]
    assert limited["isProblem"] and limited["status"] == 429
    assert limited["code"] == "rate_limited" and limited["retryAfter"] == 12
    assert limited["en"] == "Too many requests. Try again in 12 s."
    assert limited["zh"] == "请求过多。 请 12 秒后重试。"

    busy = out["plain_503"]["problem"]
    assert (busy["code"], busy["retryAfter"]) == ("unavailable", 3)
    assert busy["en"] == "The service is busy. Try again in 3 s."

    offline = out["offline"]["problem"]
    assert offline["code"] == "offline" and offline["status"] == 0
    assert offline["message_zh"] and offline["message_en"]

    broken = out["not_json_500"]["problem"]
    assert broken["code"] == "http_500" and "500" in broken["en"]
