"""Active liveness: challenge issuing and parsing, the judgement on sequences of
measurements (synthetic and from real photos), nonce single use, the hook and
the CLI.

What real photos can show is limited: pose (yaw from a turned head and its
mirror image) and an open mouth exist in tests/data; closed eyes (blink)
and a nod do not, so those actions are tested on synthetic measurements only.
The flat-picture and still-frame checks are tested here on synthetic landmarks,
and on videos made from real photos in tests/test_liveness_video.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.data import FACES
from support.faces import CHALLENGE_ANSWERED_AT as NOW
from support.faces import CHALLENGE_ISSUED_AT as T0
from support.faces import liveness_challenge, require_face_models
from typer.testing import CliRunner

from healthcode.core.images import image_from_array, read_image_file
from healthcode.core.models import Image, LivenessChallenge
from healthcode.core.plugins import new_plugin_manager
from healthcode.plugins.face import motion
from healthcode.plugins.face.actions import ACTIONS
from healthcode.plugins.face.errors import ChallengeFormatError
from healthcode.plugins.face.liveness import (
    MAX_FRAMES,
    ActionSpan,
    ChallengeLedger,
    FrameObservation,
    action_spans,
    challenge_from_dict,
    challenge_to_dict,
    judge,
    new_challenge,
)

ME = np.eye(128, dtype=np.float32)[0]
SOMEONE_ELSE = np.eye(128, dtype=np.float32)[1]


def _challenge(*actions: str) -> LivenessChallenge:
    return liveness_challenge(*actions, nonce_prefix="n")


def _frame(
    yaw: float = 0.0,
    pitch: float = 0.0,
    blink: float = 0.1,
    jaw: float = 0.05,
    embedding: np.ndarray | None = ME,
    faces: int = 1,
) -> FrameObservation:
    return FrameObservation(
        faces=faces, yaw=yaw, pitch=pitch, blink=blink, jaw_open=jaw, embedding=embedding
    )


NEUTRAL = _frame()
DOING = {
    "blink": _frame(blink=0.8),
    "turn_left": _frame(yaw=25.0),
    "turn_right": _frame(yaw=-25.0),
    "open_mouth": _frame(jaw=0.6),
    "nod": _frame(pitch=-18.0),
}


def _perform(actions: Sequence[str]) -> list[FrameObservation]:
    frames = [NEUTRAL]
    for action in actions:
        frames += [DOING[action], NEUTRAL]
    return frames


# --- challenges -------------------------------------------------------------------


def test_new_challenge_is_random_distinct_and_expires() -> None:
    challenges = [new_challenge(now=T0) for _ in range(40)]
    for challenge in challenges:
        assert len(challenge.actions) == 3
        assert len(set(challenge.actions)) == 3
        assert set(challenge.actions) <= set(ACTIONS)
        assert challenge.expires_at > challenge.issued_at == T0
    assert len({c.nonce for c in challenges}) == 40
    assert len({c.actions for c in challenges}) > 5


def test_challenge_round_trips_through_json() -> None:
    challenge = new_challenge(now=T0, length=2)
    assert challenge_from_dict(json.loads(json.dumps(challenge_to_dict(challenge)))) == challenge


@pytest.mark.parametrize(
    "change",
    [
        {"actions": ["smile"]},
        {"actions": []},
        {"nonce": "short"},
        {"expires_at": "2026-11-26T07:00:00+00:00"},
        {"issued_at": "2026-11-26T08:00:00"},
        {"issued_at": "yesterday"},
    ],
)
def test_bad_challenges_are_refused(change: dict[str, object]) -> None:
    data = challenge_to_dict(_challenge("blink", "nod")) | {"nonce": "a-long-enough-nonce"}
    with pytest.raises(ChallengeFormatError):
        challenge_from_dict(data | change)


def test_liveness_actions_are_registered_once_and_challenges_draw_from_them() -> None:
    from healthcode.core.enrollment.challenges import draw_challenge, liveness_actions
    from healthcode.core.enrollment.errors import DuplicateLivenessActionError
    from healthcode.core.hookspecs import hookimpl
    from healthcode.core.models import LivenessAction

    pm = new_plugin_manager(autoload=False)
    registered = [a for batch in pm.hook.healthcode_liveness_actions() for a in batch or ()]
    assert tuple(a.name for a in registered) == ACTIONS
    assert all(a.instruction_en and a.instruction_zh for a in registered)
    vocabulary = tuple(liveness_actions(pm))
    assert vocabulary == ACTIONS
    drawn = draw_challenge(vocabulary, length=2, ttl=dt.timedelta(seconds=90), now=T0)
    assert len(set(drawn.actions)) == 2 and set(drawn.actions) <= set(ACTIONS)
    assert drawn.expires_at == T0 + dt.timedelta(seconds=90)
    with pytest.raises(ValueError):
        draw_challenge(vocabulary, length=1, ttl=dt.timedelta(seconds=90), now=T0, actions=["x"])
    # Without a registered vocabulary only fixed actions can be issued.
    fixed = draw_challenge((), length=1, ttl=dt.timedelta(seconds=90), now=T0, actions=["x"])
    assert fixed.actions == ("x",)
    with pytest.raises(ValueError):
        draw_challenge((), length=1, ttl=dt.timedelta(seconds=90), now=T0)

    class Blinks:
        @hookimpl
        def healthcode_liveness_actions(self) -> list[LivenessAction]:
            return [LivenessAction("blink", "Blink twice", "眨两次眼")]

    pm.register(Blinks(), name="blinks")
    with pytest.raises(DuplicateLivenessActionError):
        liveness_actions(pm)


# --- judging synthetic sequences ------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_alone_passes(action: str) -> None:
    result = judge(_challenge(action), _perform([action]), now=NOW)
    assert result.passed, result.reasons
    assert result.score == 1.0


def test_actions_in_the_wrong_order_fail() -> None:
    result = judge(
        _challenge("turn_left", "open_mouth"), _perform(["open_mouth", "turn_left"]), now=NOW
    )
    assert not result.passed
    assert "unexpected_action:open_mouth" in result.reasons


def test_a_spontaneous_blink_is_tolerated_but_not_counted() -> None:
    frames = _perform(["blink", "turn_left", "nod"])
    assert judge(_challenge("turn_left", "nod"), frames, now=NOW).passed
    late_blink = judge(_challenge("turn_left", "blink"), _perform(["blink", "turn_left"]), now=NOW)
    assert late_blink.reasons == ("missing_action:blink",)
    assert late_blink.score == 0.5


def test_missing_actions_are_named() -> None:
    result = judge(_challenge("turn_right", "nod", "blink"), _perform(["turn_right"]), now=NOW)
    assert result.reasons == ("missing_action:nod", "missing_action:blink")
    assert result.score == pytest.approx(1 / 3, abs=1e-3)


def test_holding_a_turn_for_several_frames_is_one_action() -> None:
    frames = [NEUTRAL, DOING["turn_left"], _frame(yaw=20), _frame(yaw=28), NEUTRAL]
    assert judge(_challenge("turn_left"), frames, now=NOW).passed


@settings(max_examples=60, deadline=None)
@given(st.permutations(ACTIONS), st.permutations(ACTIONS), st.integers(1, 5))
def test_frames_answer_their_challenge_and_no_other(
    performed: list[str], asked: list[str], length: int
) -> None:
    frames = _perform(performed[:length])
    result = judge(_challenge(*asked[:length]), frames, now=NOW)
    assert result.passed is (tuple(asked[:length]) == tuple(performed[:length]))


def test_expired_and_not_yet_valid_challenges_fail() -> None:
    challenge = _challenge("turn_left")
    frames = _perform(["turn_left"])
    late = judge(challenge, frames, now=challenge.expires_at + dt.timedelta(minutes=1))
    early = judge(challenge, frames, now=challenge.issued_at - dt.timedelta(minutes=1))
    assert "challenge_expired" in late.reasons and late.score == 0.0
    assert "challenge_not_yet_valid" in early.reasons


def test_capture_times_must_be_ordered_and_inside_the_window() -> None:
    challenge = _challenge("turn_left")
    frames = _perform(["turn_left"])
    times = [T0 + dt.timedelta(seconds=s) for s in (1, 3, 2)]
    shuffled = [attrs.evolve(f, captured_at=t) for f, t in zip(frames, times, strict=True)]
    assert "frames_out_of_order" in judge(challenge, shuffled, now=NOW).reasons
    old = [attrs.evolve(f, captured_at=T0 - dt.timedelta(hours=1)) for f in frames]
    assert "frame_outside_challenge_window" in judge(challenge, old, now=NOW).reasons


def test_a_different_person_fails() -> None:
    frames = [NEUTRAL, _frame(yaw=25.0, embedding=SOMEONE_ELSE), NEUTRAL]
    result = judge(_challenge("turn_left"), frames, now=NOW)
    assert "different_person" in result.reasons and result.score == 0.0


def test_face_count_and_neutral_start() -> None:
    two = judge(_challenge("turn_left"), [NEUTRAL, _frame(faces=2), DOING["turn_left"]], now=NOW)
    assert "more_than_one_face" in two.reasons
    none = judge(_challenge("turn_left"), [_frame(faces=0), DOING["turn_left"]], now=NOW)
    assert "no_face" in none.reasons and not none.passed
    turned = judge(_challenge("turn_left"), [_frame(yaw=20.0), _frame(yaw=40.0)], now=NOW)
    assert "not_neutral_at_start" in turned.reasons


def test_frame_count_limits() -> None:
    assert "too_few_frames" in judge(_challenge("blink"), [NEUTRAL], now=NOW).reasons
    many = judge(_challenge("blink"), [NEUTRAL] * (MAX_FRAMES + 1), now=NOW)
    assert "too_many_frames" in many.reasons


def test_ledger_accepts_a_nonce_once() -> None:
    ledger = ChallengeLedger()
    challenge = _challenge("blink")
    assert ledger.consume(challenge, NOW)
    assert not ledger.consume(challenge, NOW)
    # Forgotten after expiry (it can no longer pass anyway).
    assert ledger.consume(challenge, challenge.expires_at + dt.timedelta(minutes=5))
    result = judge(challenge, _perform(["blink"]), now=NOW, fresh_nonce=False)
    assert "challenge_already_used" in result.reasons


# --- flat pictures and still frames (synthetic landmarks) -------------------------

# A stand-in for the landmarker's 478 points: scattered over a face-sized
# ellipse, the outer eye corners 100 px apart.
_RNG = np.random.default_rng(15)
_ANGLES, _RADII = _RNG.uniform(0, 2 * np.pi, 478), np.sqrt(_RNG.uniform(0, 1, 478))
LANDMARKS = np.column_stack(
    [320 + 90 * _RADII * np.cos(_ANGLES), 240 + 120 * _RADII * np.sin(_ANGLES)]
)
LANDMARKS[motion.OUTER_EYE_CORNERS[0]] = (270.0, 210.0)
LANDMARKS[motion.OUTER_EYE_CORNERS[1]] = (370.0, 210.0)
TILT = np.array([[0.9, 0.05, 12.0], [-0.04, 1.0, -7.0], [1e-4, -5e-5, 1.0]])
"""A homography: the whole picture moved as a plane."""


def _with(frame: FrameObservation, landmarks: np.ndarray) -> FrameObservation:
    return attrs.evolve(frame, landmarks=landmarks)


def _moved(region: str, by: float) -> np.ndarray:
    """The landmarks with ``region``'s points pushed about in different
    directions, by ``by`` eye distances: not a plane's motion."""
    moved = LANDMARKS.copy()
    indices = list(motion.REGIONS[region])
    push = np.random.default_rng(len(indices)).normal(size=(len(indices), 2))
    push /= np.linalg.norm(push, axis=1, keepdims=True)
    moved[indices] += 100 * by * push
    return moved


def test_spans_run_from_onset_to_peak() -> None:
    frames = [NEUTRAL, _frame(yaw=15), _frame(yaw=25), _frame(yaw=20), NEUTRAL, _frame(jaw=0.5)]
    assert action_spans(frames) == [ActionSpan("turn_left", 1, 2), ActionSpan("open_mouth", 5, 5)]


@pytest.mark.parametrize("action", ACTIONS)
def test_an_action_a_flat_picture_shows_does_not_count(action: str) -> None:
    region = {"blink": "eyes", "open_mouth": "mouth"}.get(action, "face")
    base = _with(NEUTRAL, LANDMARKS)
    flat = _with(DOING[action], motion.apply_homography(TILT, LANDMARKS))
    result = judge(_challenge(action), [base, flat, base], now=NOW)
    assert result.reasons == (f"planar_motion:{action}", f"missing_action:{action}")
    assert result.score == 0.0
    # The same measurements where the action's region moved on its own pass.
    real = _with(DOING[action], _moved(region, 0.1))
    assert judge(_challenge(action), [base, real, base], now=NOW).passed


def test_a_flat_onset_is_ignored_when_the_action_is_also_done() -> None:
    """The flat-picture check refuses actions, not people: a measurement that
    flickered without the face moving (here a blink and a turn) neither fails
    nor answers the challenge."""
    base = _with(NEUTRAL, LANDMARKS)
    flicker = _with(_frame(yaw=14.0, blink=0.6), LANDMARKS + np.array([6.0, -4.0]))  # slid a little
    turn = _with(DOING["turn_left"], _moved("face", 0.1))
    result = judge(_challenge("turn_left"), [base, flicker, base, turn, base], now=NOW)
    assert result.passed, result.reasons
    refused = judge(_challenge("turn_left"), [base, flicker, base], now=NOW)
    assert refused.reasons == ("planar_motion:turn_left", "missing_action:turn_left")


def test_a_flat_picture_rotated_in_the_image_plane_is_no_nod() -> None:
    turn = np.radians(40.0)
    rotation = np.array(
        [[np.cos(turn), -np.sin(turn), 0.0], [np.sin(turn), np.cos(turn), 0.0], [0.0, 0.0, 1.0]]
    )
    # Rotated, with its own distortion on top: still the picture turned, not a head.
    rotated = motion.apply_homography(rotation, _moved("face", 0.05))
    frames = [_with(NEUTRAL, LANDMARKS), _with(DOING["nod"], rotated), _with(NEUTRAL, LANDMARKS)]
    assert "planar_motion:nod" in judge(_challenge("nod"), frames, now=NOW).reasons


def test_frames_that_all_repeat_one_picture_are_static() -> None:
    still = [_with(NEUTRAL, LANDMARKS)] * 6
    result = judge(_challenge("blink", "nod"), still, now=NOW)
    assert result.reasons == ("static_frames", "missing_action:blink", "missing_action:nod")
    # Even where the measurements flicker across a threshold, nothing moved.
    flicker = [*still[:3], _with(DOING["blink"], LANDMARKS), *still[:2]]
    result = judge(_challenge("blink"), flicker, now=NOW)
    assert not result.passed and "static_frames" in result.reasons
    # Frames measured without landmarks are not judged still.
    assert "static_frames" not in judge(_challenge("blink"), [NEUTRAL] * 3, now=NOW).reasons


# --- real measurements ------------------------------------------------------------


@functools.cache
def _photo(name: str, mirrored: bool = False) -> Image:
    image = read_image_file(FACES / name)
    return image_from_array(image.pixels[:, ::-1]) if mirrored else image


@functools.cache
def _observed(name: str, mirrored: bool = False) -> FrameObservation:
    from healthcode.plugins.face.liveness import observe

    return observe(_photo(name, mirrored))


def test_real_turn_right_with_open_mouth() -> None:
    require_face_models()
    neutral, turned = _observed("obama_1.jpg"), _observed("obama_2.jpg")
    frames = [neutral, turned, neutral]
    assert judge(_challenge("turn_right", "open_mouth"), frames, now=NOW).passed
    wrong = judge(_challenge("turn_left", "open_mouth"), frames, now=NOW)
    assert not wrong.passed
    assert "missing_action:turn_left" in wrong.reasons


def test_real_mirror_turns_the_other_way() -> None:
    require_face_models()
    neutral, mirrored = _observed("obama_1.jpg"), _observed("obama_2.jpg", mirrored=True)
    assert judge(_challenge("turn_left"), [neutral, mirrored], now=NOW).reasons == (
        "unexpected_action:open_mouth",
    )
    assert judge(_challenge("turn_left", "open_mouth"), [neutral, mirrored], now=NOW).passed


def test_real_frames_of_another_person_fail() -> None:
    require_face_models()
    frames = [_observed("obama_1.jpg"), _observed("biden_2.jpg"), _observed("obama_2.jpg")]
    result = judge(_challenge("turn_right"), frames, now=NOW)
    assert "different_person" in result.reasons


def test_real_frame_with_two_people_fails() -> None:
    require_face_models()
    frames = [_observed("obama_1.jpg"), _observed("two_people.jpg"), _observed("obama_2.jpg")]
    assert _observed("two_people.jpg").faces == 2
    assert (
        "more_than_one_face"
        in judge(_challenge("turn_right", "open_mouth"), frames, now=NOW).reasons
    )


@pytest.fixture
def face_pm() -> pluggy.PluginManager:
    pm = new_plugin_manager(autoload=False)
    assert pm.has_plugin("face"), "the face plugin loads through its entry point"
    return pm


def test_liveness_hook_on_real_frames_uses_the_nonce_once(face_pm: pluggy.PluginManager) -> None:
    require_face_models()
    challenge = LivenessChallenge(
        nonce="hook-test-nonce-1",
        actions=("turn_right", "open_mouth"),
        issued_at=dt.datetime.now(dt.UTC),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60),
    )
    frames = [_photo("obama_1.jpg"), _photo("obama_2.jpg"), _photo("obama_1.jpg")]
    first = face_pm.hook.healthcode_check_liveness(challenge=challenge, frames=frames)
    assert first.passed, first.reasons
    again = face_pm.hook.healthcode_check_liveness(challenge=challenge, frames=frames)
    assert again.reasons == ("challenge_already_used",)


def test_cli_liveness(tmp_path: Path) -> None:
    require_face_models()
    from healthcode.plugins.face.cli import faces_app as app

    challenge = new_challenge(length=1)
    challenge = LivenessChallenge(
        nonce=challenge.nonce,
        actions=("turn_left",),
        issued_at=challenge.issued_at,
        expires_at=challenge.expires_at,
    )
    path = tmp_path / "challenge.json"
    path.write_text(json.dumps(challenge_to_dict(challenge)))
    frames = [str(FACES / "obama_1.jpg"), str(FACES / "obama_2.jpg")]
    result = CliRunner().invoke(app, ["liveness", "--challenge", str(path), *frames, "--json"])
    payload = json.loads(result.stdout)
    assert result.exit_code == 1
    assert payload["passed"] is False
    assert "missing_action:turn_left" in payload["reasons"]

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(app, ["liveness", "--challenge", str(bad), *frames, "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "invalid_challenge"


def test_cli_challenge_issues_valid_json() -> None:
    from healthcode.plugins.face.cli import faces_app as app

    result = CliRunner().invoke(app, ["challenge", "--length", "2"])
    assert result.exit_code == 0
    assert len(challenge_from_dict(json.loads(result.stdout)).actions) == 2


@pytest.mark.parametrize(
    "text", ["[" * 5000, '{"nonce": "n", "actions": [' + "9" * 5000 + "]}", "\udcff"]
)
def test_cli_liveness_refuses_a_hostile_challenge_file(tmp_path: Path, text: str) -> None:
    """Deep nesting and numbers past Python's digit limit are refused like any
    other broken challenge file, not with a traceback."""
    from healthcode.plugins.face.cli import faces_app as app

    bad = tmp_path / "hostile.json"
    bad.write_text(text, encoding="utf-8", errors="surrogateescape")
    frame = str(FACES / "obama_1.jpg")
    result = CliRunner().invoke(app, ["liveness", "--challenge", str(bad), frame, "--json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"]["code"] == "invalid_challenge"
