"""``healthcode demo``: the synthetic holder's page and frames, the demo flag in
``GET /health/live``, and the whole command against a real demo instance
(uvicorn in a thread of this process, so that it shares the test's clock) and
against the live server, which is not a demo instance.

Photos: obama_1 looks at the camera (the baseline, the capture and the
portrait); obama_2 is turned to his right with the mouth open, so it answers
(turn_right, open_mouth) in either order, its mirror (turn_left, open_mouth),
and nothing answers (turn_left, turn_right). biden_1 turns too little (9.6
degrees against biden_2) to answer turn_left, so the Biden pair answers no
two-action demo challenge.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import random
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pluggy
import pytest
import time_machine
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.backends import LiveServer
from support.data import CLOCK_START, FACES
from support.faces import require_face_models
from support.processes import free_port
from typer.testing import CliRunner

from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.cli.errors import EXIT_INVALID, EXIT_UNAVAILABLE
from healthcode.cli.main import app as cli
from healthcode.core.documents import make_submission, parse_document, validate_document
from healthcode.core.enrollment.challenges import DEMO_ACTIONS, draw_challenge
from healthcode.core.enrollment.document import read_document
from healthcode.core.enrollment.errors import DemoDocumentError
from healthcode.core.images import image_from_array, read_image_file
from healthcode.core.models import Face
from healthcode.core.passes import KeyStore
from healthcode.core.storage.database import init_instance
from healthcode.testing.demo_holder import (
    DEMO_DECLARED_NAME,
    DEMO_MARKER,
    DEMO_STATE,
    Pose,
    baseline,
    demo_fields,
    plan_frames,
    poses,
    what_photos_show,
)
from healthcode.testing.mrz import format_mrz
from healthcode.testing.synthetic_documents import render_page

OBAMA = (FACES / "obama_1.jpg", FACES / "obama_2.jpg")
BIDEN = (FACES / "biden_2.jpg", FACES / "biden_1.jpg")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _settings(home: Path, *, demo: bool) -> Settings:
    url = f"sqlite:///{home / 'hc.db'}"
    asyncio.run(init_instance(url, home / "secrets.json"))
    KeyStore(home / "keys").init("110000", "北京市")
    return Settings(
        database_url=url,
        secrets_file=home / "secrets.json",
        keys_dir=home / "keys",
        trust_file=home / "trust.hct",
        run_purge=False,
        demo=demo,
    )


# --- the demo flag ---------------------------------------------------------------------


@pytest.fixture
def demo_settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path, demo=True)


@pytest.mark.anyio
async def test_a_demo_instance_says_so_and_draws_actions_stills_can_show(
    demo_settings: Settings,
) -> None:
    async with AsyncTestClient(create_app(demo_settings)) as demo:
        live = (await demo.get("/health/live")).json()
        assert (live["status"], live["demo"]) == ("ok", True)
        for _ in range(10):
            response = await demo.post("/enrollments/challenges", json={})
            actions = response.json()["actions"]
            assert len(actions) == 2 and set(actions) <= set(DEMO_ACTIONS), actions


# --- the document ----------------------------------------------------------------------


def test_the_demo_passport_is_valid_today_and_marked(
    pm: pluggy.PluginManager, today: dt.date
) -> None:
    fields = demo_fields(random.Random(7), today=today)
    submission, _ = make_submission(mrz=format_mrz(fields))
    document = parse_document(submission, pm)
    assert (document.kind, document.surname, document.issuing_state) == (
        "passport",
        "DEMO",
        DEMO_STATE,
    )
    assert document.expiry_date is not None and document.expiry_date > today
    assert document.extra["optional_data"] == DEMO_MARKER
    problems = validate_document(document, today, pm)
    assert not [p.code for p in problems if p.severity == "error"]
    # Not a specimen: that is refused as such.
    assert "specimen_document" not in [p.code for p in problems]


def test_the_page_prints_the_portrait_it_is_given() -> None:
    from PIL import Image as PILImage

    red = PILImage.new("RGB", (300, 400), (200, 10, 10))
    labels = [("Surname / Nom", "DEMO")]
    page, (x, y, w, h) = render_page(
        None, "TD3", random.Random(1), portrait=red, labels=labels, title="DEMO"
    )
    inside = np.asarray(page)[y + 5 : y + h - 5, x + 5 : x + w - 5]
    assert (inside == (200, 10, 10)).all()
    drawn, _ = render_page(None, "TD3", random.Random(1))
    assert not (np.asarray(drawn)[y + 5 : y + h - 5, x + 5 : x + w - 5] == (200, 10, 10)).all()


# --- the frames (measurements as the face plugin reports them) ---------------------------------


def _pose(label: str, *, yaw: float = 0.0, jaw: float = 0.05, mirrored: bool = False) -> Pose:
    measurements = {
        "yaw": yaw,
        "pitch": 2.0,
        "blink_left": 0.2,
        "blink_right": 0.2,
        "jaw_open": jaw,
    }
    face = Face(box=(10.0, 10.0, 50.0, 60.0), score=1.0, measurements=measurements)
    return Pose(label, image_from_array(np.zeros((8, 8, 3), np.uint8)), face, mirrored)


NEUTRAL = _pose("neutral", yaw=1.0)
TURNED_OPEN = _pose("turned, mouth open", yaw=-14.6, jaw=0.43)
TURNED_OPEN_MIRROR = _pose("turned, mouth open (mirrored)", yaw=14.8, jaw=0.40, mirrored=True)
TURNED = _pose("turned", yaw=-15.0)
TURNED_MIRROR = _pose("turned (mirrored)", yaw=15.0, mirrored=True)


def _labels(frames: Sequence[Pose] | None) -> list[str] | None:
    return None if frames is None else [p.label for p in frames]


def test_the_baseline_is_the_most_neutral_unmirrored_photo() -> None:
    slightly_turned = _pose("slightly turned", yaw=6.0)
    neutral_mirror = _pose("neutral (mirrored)", yaw=-0.5, mirrored=True)
    candidates = [TURNED_OPEN, slightly_turned, neutral_mirror, NEUTRAL]
    assert baseline(candidates) is NEUTRAL
    assert baseline([TURNED_OPEN, TURNED_OPEN_MIRROR, neutral_mirror]) is None


def test_a_photo_that_shows_two_actions_answers_them_when_they_come_next() -> None:
    candidates = [NEUTRAL, TURNED_OPEN, TURNED_OPEN_MIRROR]
    for actions in (("turn_right", "open_mouth"), ("open_mouth", "turn_right")):
        assert _labels(plan_frames(actions, candidates, NEUTRAL)) == [
            "neutral",
            "turned, mouth open",
            "neutral",
        ]
    assert _labels(plan_frames(("turn_left", "open_mouth"), candidates, NEUTRAL)) == [
        "neutral",
        "turned, mouth open (mirrored)",
        "neutral",
    ]
    # Its open mouth would be an unexpected action between two turns.
    assert plan_frames(("turn_left", "turn_right"), candidates, NEUTRAL) is None
    assert what_photos_show(candidates, NEUTRAL) == ["open_mouth", "turn_left", "turn_right"]


def test_a_turned_photo_and_its_mirror_answer_both_turns_in_order() -> None:
    candidates = [NEUTRAL, TURNED, TURNED_MIRROR]
    assert _labels(plan_frames(("turn_left", "turn_right"), candidates, NEUTRAL)) == [
        "neutral",
        "turned (mirrored)",
        "neutral",
        "turned",
        "neutral",
    ]
    assert plan_frames(("open_mouth", "turn_left"), candidates, NEUTRAL) is None


def test_actions_near_a_threshold_are_not_relied_on() -> None:
    # Against the baseline's yaw of 1 degree: 11.9 may or may not pass the
    # judge's 12, and 12.2 is within the margin too.
    for turn in (11.9, 12.2):
        turned = _pose("t", yaw=1.0 - turn)
        assert plan_frames(("turn_right",), [NEUTRAL, turned], NEUTRAL) is None
    clearly = _pose("t", yaw=1.0 - 12.6)
    assert _labels(plan_frames(("turn_right",), [NEUTRAL, clearly], NEUTRAL)) == [
        "neutral",
        "t",
        "neutral",
    ]
    # A mouth that may count as open spoils a turn.
    turned_mouth_ajar = _pose("ajar", yaw=-15.0, jaw=0.34)
    assert plan_frames(("turn_right",), [NEUTRAL, turned_mouth_ajar], NEUTRAL) is None


# --- the command -----------------------------------------------------------------------


def _faces(paths: Sequence[Path]) -> list[str]:
    return [arg for path in paths for arg in ("--face", str(path))]


def test_an_unreachable_server_is_named_not_a_traceback(tmp_path: Path) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli, ["demo", "--server", server, "--out", str(tmp_path / "out"), *_faces(OBAMA)]
    )
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    assert "error [server_unreachable]" in result.stderr
    assert "无法连接服务器" in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_instance_not_started_with_demo_is_refused(
    live_server: LiveServer, tmp_path: Path
) -> None:
    # An instance started without --demo says so ...
    assert httpx.get(f"{live_server.url}/health/live", timeout=10).json()["demo"] is False
    # ... and the demo refuses it.
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["demo", "--server", live_server.url, "--out", str(out), "--json", *_faces(OBAMA)]
    )
    assert result.exit_code == EXIT_INVALID, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "demo_not_enabled"
    assert "--demo" in error["message_en"] and "演示" in error["message_zh"]
    assert not out.exists()  # nothing made, nothing enrolled


class ThreadedServer:
    """The app under uvicorn in a thread of this process (it shares the test's clock)."""

    def __init__(self, app: Litestar) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo instance did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    """A demo instance (``serve --demo``) with its own database, secrets and key."""
    require_face_models()
    # Set up at the tests' clock, as the live server is: its issuer key must be
    # valid on the day the tests run at.
    with time_machine.travel(CLOCK_START, tick=True):
        settings = _settings(tmp_path_factory.mktemp("demo"), demo=True)
    with ThreadedServer(create_app(settings)) as server:
        yield server.base, settings


def _demo(server: str, out: Path, settings: Settings, faces: Sequence[Path]) -> Any:
    return CliRunner().invoke(
        cli,
        [
            "demo",
            "--server",
            server,
            "--out",
            str(out),
            "--database",
            str(settings.database_url),
            "--secrets-file",
            str(settings.secrets_file),
            "--json",
            *_faces(faces),
        ],
    )


def test_the_demo_enrolls_and_a_guard_admits_its_live_code(
    demo_server: tuple[str, Settings], tmp_path: Path
) -> None:
    server, settings = demo_server
    out = tmp_path / "phone"
    result = _demo(server, out, settings, OBAMA)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["ok"] is True
    assert (shown["kind"], shown["masked_name"]) == ("passport", "DEMO")
    assert shown["masked_number"][2:-2] == "*****"
    assert shown["status"]["colour"] == "green"
    assert shown["valid_until"] == "2026-11-27T00:00:00+08:00"  # the end of the day, in Shanghai
    assert shown["pass"].startswith("HC1:") and shown["live_code"].startswith("HCP1:")
    # The files a phone keeps, the secrets readable by their owner only.
    for name in ("phone.key", "pass.txt", "shown.txt", "data-page.png", "guard.token"):
        assert (out / name).is_file(), name
    for name in ("phone.key", "guard.token"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    assert (out / "guard.token").read_text().strip() == shown["guard_token"]
    assert any("healthcode verify -" in command for command in shown["next"])
    # The guard token is the instance's, and the live code admits.
    verdict = httpx.post(
        f"{server}/guard/verifications",
        json={"presentation": shown["live_code"]},
        headers={"authorization": f"Bearer {shown['guard_token']}"},
        timeout=30,
    ).json()
    assert (verdict["admit"], verdict["colour"], verdict["masked_name"]) == (
        True,
        "green",
        "DEMO",
    ), verdict["code"]


def test_photos_without_a_face_at_the_camera_are_refused(
    demo_server: tuple[str, Settings], tmp_path: Path
) -> None:
    server, settings = demo_server
    result = _demo(server, tmp_path / "out", settings, [FACES / "obama_2.jpg"])
    assert result.exit_code == EXIT_INVALID, result.output
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["details"]["reason"]) == (
        "demo_photos_unusable",
        "no_neutral_photo",
    )


def test_photos_that_answer_no_challenge_say_what_they_show(
    demo_server: tuple[str, Settings], tmp_path: Path
) -> None:
    server, settings = demo_server
    result = _demo(server, tmp_path / "out", settings, BIDEN)
    assert result.exit_code == EXIT_INVALID, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "demo_photos_unusable"
    assert error["details"]["reason"] == "challenge_unanswerable"
    assert error["details"]["shown"] == ["turn_right"]
    assert "open_mouth" in error["message_en"] or "turn" in error["message_en"]


def test_planned_frames_pass_the_face_plugins_judge(pm: pluggy.PluginManager) -> None:
    require_face_models()
    from healthcode.plugins.face.liveness import ChallengeLedger, check_liveness

    def detect(image: Any) -> list[Face]:
        return list(pm.hook.healthcode_detect_faces(image=image))

    candidates = poses(((p.name, read_image_file(p)) for p in OBAMA), detect)
    base = baseline(candidates)
    assert base is not None and base.label == "obama_1.jpg"
    answered = 0
    for actions in itertools.permutations(DEMO_ACTIONS, 2):
        frames = plan_frames(actions, candidates, base)
        if frames is None:
            assert set(actions) == {"turn_left", "turn_right"}  # obama_2's mouth is open
            continue
        now = dt.datetime.now(dt.UTC)
        challenge = draw_challenge(
            DEMO_ACTIONS, length=2, ttl=dt.timedelta(seconds=60), now=now, actions=actions
        )
        result = check_liveness(
            challenge, [f.image for f in frames], now=now, ledger=ChallengeLedger()
        )
        assert result.passed, (actions, result.reasons)
        answered += 1
    assert answered == 4


def test_only_a_demo_instance_enrolls_the_demo_page(
    pm: pluggy.PluginManager, today: dt.date
) -> None:
    fields = demo_fields(random.Random(11), today=today)
    submission, _ = make_submission(mrz=format_mrz(fields))
    with pytest.raises(DemoDocumentError) as refused:
        read_document(pm, submission, DEMO_DECLARED_NAME, today)
    assert refused.value.code == "demo_document"
    assert "--demo" in refused.value.message_en and "演示" in refused.value.message_zh
    document, masked, _ = read_document(pm, submission, DEMO_DECLARED_NAME, today, allow_demo=True)
    assert document.extra["optional_data"] == DEMO_MARKER
    assert masked.masked_name.startswith("DEMO")
