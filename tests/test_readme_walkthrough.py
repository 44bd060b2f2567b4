"""The README's demo walkthrough, run exactly as written.

The shell blocks between ``<!-- demo-walkthrough:start -->`` and
``<!-- demo-walkthrough:end -->`` run in bash from the checkout, as a
newcomer runs them: ``healthcode serve --demo`` in the background, then
``healthcode demo`` with two photos, then the guard's offline and online
verifications. Only the port changes (a free one instead of 8000), and the
process has a home of its own, so nothing of the user's state is touched.

Every ``healthcode`` process of the walkthrough runs on the test's clock
(10:00 on 2026-11-26 in Shanghai, ticking): a ``sitecustomize`` on
``PYTHONPATH`` shifts each one's clock by the same offset from the machine's,
with time-machine (as ``tests/clocked_uvicorn.py`` does for the live server).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.data import ROOT
from support.faces import require_face_models
from support.processes import free_port
from time_machine import escape_hatch

README = ROOT / "README.md"
START, END = "<!-- demo-walkthrough:start -->", "<!-- demo-walkthrough:end -->"
TIMEOUT_S = 300

SITECUSTOMIZE = """\
import os

_start = os.environ.get("HEALTHCODE_TEST_CLOCK_OFFSET")
if _start is not None:
    import time

    import time_machine

    time_machine.travel(time.time() + float(_start), tick=True).start()
    time.time()  # the clock ticks from its first reading, not from travel's start
"""


def walkthrough_script() -> str:
    """The shell blocks of the README's demo section, joined in order."""
    text = README.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, "the demo section's markers"
    section = text[text.index(START) : text.index(END)]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "the demo section has no sh block"
    return "\n".join(blocks)


def test_the_demo_section_is_a_script_of_healthcode_commands() -> None:
    script = walkthrough_script()
    assert "serve --demo --port 8000" in script
    assert "127.0.0.1:8000" in script
    assert re.search(r"\$hc demo --server \$S", script)
    assert "$hc verify -" in script
    assert "/guard/verifications" in script


def _environment(tmp_path: Path) -> dict[str, str]:
    """A home of its own; the face models where the user fetched them; the test clock."""
    from healthcode.plugins.face.modelstore import MODEL_DIR_ENV, model_dir

    home = tmp_path / "home"
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHCODE_")}
    env |= {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "TMPDIR": str(tmp_path),
        MODEL_DIR_ENV: str(model_dir()),
        "HEALTHCODE_DISABLE_PLUGIN_AUTOLOAD": "1",
        # This test's clock (time-machine's) against the machine's.
        "HEALTHCODE_TEST_CLOCK_OFFSET": repr(time.time() - escape_hatch.time.time()),
        "PYTHONPATH": os.pathsep.join(
            [str(tmp_path / "site"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    return env


def test_the_readme_demo_walkthrough_admits_the_demo_holder(tmp_path: Path) -> None:
    require_face_models()
    port = free_port()
    script = walkthrough_script().replace("8000", str(port))
    (tmp_path / "walkthrough.sh").write_text(script, encoding="utf-8")
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", str(tmp_path / "walkthrough.sh")],
        cwd=ROOT,
        env=_environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the background server is in the same group
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the walkthrough took over {TIMEOUT_S} s\n{stdout}\n{stderr[-3000:]}")
    finally:
        # The server, should the script have stopped before its `kill`.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    assert process.returncode == 0, f"{stdout}\n{stderr[-3000:]}"
    # The demo: the holder is enrolled, green, with a guard token, a pass and a live code.
    assert "enrolled / 已登记: DEMO " in stdout
    assert "(green)" in stdout
    # On the test's clock (10:00 on 2026-11-26 in Shanghai): valid until that day ends.
    assert "valid until 2026-11-27 00:00 Asia/Shanghai" in stdout
    assert re.search(r"^  HC1:", stdout, flags=re.MULTILINE)
    assert re.search(r"^  HCP1:", stdout, flags=re.MULTILINE)
    # The guard, offline: the decision first.
    assert "✔ 通行 ADMIT" in stdout
    # The guard, online, with the token the demo created.
    assert '"admit":true' in stdout.replace(" ", "")
    assert '"colour":"green"' in stdout.replace(" ", "")
    # Nothing personal on the demo's pass: the masked name is the synthetic surname.
    assert '"masked_name":"DEMO"' in stdout.replace(" ", "")
