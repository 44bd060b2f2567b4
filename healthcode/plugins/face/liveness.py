"""Active liveness: a random challenge ("blink, turn your head") and its judgement.

The server issues a :class:`~healthcode.core.models.LivenessChallenge`: two or
three distinct actions drawn at random from those this plugin registers
(``healthcode.plugins.face.actions``: ``blink``, ``turn_left``,
``turn_right``, ``open_mouth`` and ``nod``; 60 possible orders of three), a
random nonce, and an expiry; core draws them
(``healthcode.core.enrollment.challenges.draw_challenge``). The client films
the person and sends frames.

Judging is split in two so that the logic is testable without video:

* :func:`observe` turns one frame into a :class:`FrameObservation` (face count,
  yaw, pitch, eye and mouth blendshapes, the embedding), from real detections;
* :func:`judge` decides on a sequence of observations, a pure function.

What ``judge`` checks:

1. the challenge is not expired (and, when frames carry capture times, every
   frame lies inside the challenge window, in order);
2. every frame shows exactly one face, and the first frame is neutral (facing
   the camera, eyes open, mouth closed): it is the baseline;
3. each frontal-enough frame shows the same person as the first frame
   (embedding similarity at least ``IDENTITY_THRESHOLD``);
4. the *onsets* of actions, measured against the baseline with hysteresis,
   contain the challenge's actions in the challenge's order; an onset of any
   other action except a blink (people blink on their own) means the frames
   answer some other challenge, and fails. Onsets in the same frame may be
   taken in either order;
5. each action was done by a face, not by a flat picture moved in front of the
   camera (:mod:`healthcode.plugins.face.motion`): at the frame where the action
   peaked, the landmarks of its region (the whole face for a turn or a nod, the
   eyes for a blink, the mouth for an open mouth) are not those of the first
   frame mapped by one homography. A photo slid, rotated, zoomed or tilted
   makes the landmarker report turns, nods and open mouths that are not
   there; such an action is neither done nor unexpected, and an action of the
   challenge seen only that way is named (``planar_motion:<action>``, before
   its ``missing_action:<action>``);
6. something moved at all: frames that all repeat one still picture fail
   (``static_frames``), whatever the landmarker made of them.

The checks of 5 and 6 need the landmarks, which :func:`observe` always gives;
observations made without them (synthetic measurements) skip these checks.

Single use of a nonce is enforced by :class:`ChallengeLedger` (in memory, per
process; a deployment with several workers keeps used nonces in its database).

Direction: ``turn_left`` is the person turning to *their own* left, which in an
unmirrored camera frame moves the nose towards the right of the image (yaw > 0).
``nod`` accepts a pitch change either way: the sign convention for looking down
could not be confirmed on real frames (see bench/README.md, "Faces").
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
from attrs import frozen

from healthcode.core.enrollment.challenges import draw_challenge
from healthcode.core.models import Image, LivenessChallenge, LivenessResult
from healthcode.plugins.face import motion
from healthcode.plugins.face.actions import ACTIONS
from healthcode.plugins.face.errors import ChallengeFormatError

DEFAULT_LENGTH = 3
DEFAULT_TTL = dt.timedelta(seconds=60)
MIN_FRAMES = 2
MAX_FRAMES = 150
"""Five seconds at 30 fps: bounds the work one request can cause."""
CLOCK_SKEW = dt.timedelta(seconds=5)

# Thresholds: an action starts when the measure crosses ON (relative to the
# first frame for pose) and may start again only after it fell below OFF.
TURN_YAW_ON, TURN_YAW_OFF = 12.0, 6.0
"""Degrees of yaw away from the first frame. Frontal photos here measure
|yaw| <= 5; obama_2 -14.6, its mirror +14.8 (a deliberate but modest turn)."""
NOD_PITCH_ON, NOD_PITCH_OFF = 10.0, 5.0
BLINK_ON, BLINK_OFF = 0.55, 0.40
"""Mean eyeBlink score. Open eyes here: 0.01-0.33."""
MOUTH_ON, MOUTH_OFF = 0.35, 0.20
"""jawOpen. Closed mouths here: 0.00-0.13; obama_2 (talking) 0.43."""
NEUTRAL_MAX_YAW, NEUTRAL_MAX_PITCH = 10.0, 15.0
IDENTITY_MAX_YAW, IDENTITY_MAX_PITCH = 35.0, 25.0
"""Frames turned further than this are not compared (SFace is a frontal model)."""
IDENTITY_THRESHOLD = 0.40
"""Same as the 1:1 match threshold (healthcode.plugins.face.embed.MATCH_THRESHOLD)."""

ACTION_REGIONS: Mapping[str, str] = {
    "turn_left": "face",
    "turn_right": "face",
    "nod": "face",
    "blink": "eyes",
    "open_mouth": "mouth",
}
"""The region of the face (``motion.REGIONS``) whose landmarks an action moves."""

REASON_MESSAGES: Mapping[str, tuple[str, str]] = {
    "planar_motion": (
        "The action asked for ({action}) looked like a picture being moved, not a face: "
        "do it yourself, in front of the camera.",
        "要求的动作（{action}）像是在移动一张照片，而不是真人：请本人在摄像头前完成。",
    ),
    "static_frames": (
        "Nothing moved in the frames: do the actions shown on screen.",
        "画面完全静止：请按屏幕提示完成动作。",
    ),
}
"""English and Chinese text of the reasons added against videos made from photos
(``{action}``: the action's name), for the web client's ``holder.reason.*``
strings and any other place that shows the judge's reasons to a person."""


@frozen
class FrameObservation:
    """What one frame shows, as numbers: no pixels."""

    faces: int
    yaw: float = 0.0
    pitch: float = 0.0
    blink: float = 0.0
    """Mean of eyeBlinkLeft and eyeBlinkRight (0 open .. 1 closed)."""
    jaw_open: float = 0.0
    embedding: Any = attrs.field(default=None, repr=False, eq=False)
    """L2-normalised embedding, or None when not computed (e.g. turned face)."""
    captured_at: dt.datetime | None = None
    landmarks: Any = attrs.field(default=None, repr=False, eq=False)
    """(x, y) of the landmarker's face mesh in pixels (``motion.as_points``), or
    None when not measured: then the flat-picture checks are skipped."""

    @classmethod
    def from_measurements(
        cls,
        measurements: Mapping[str, float],
        *,
        faces: int = 1,
        embedding: Any = None,
        captured_at: dt.datetime | None = None,
        landmarks: Any = None,
    ) -> FrameObservation:
        return cls(
            faces=faces,
            yaw=float(measurements["yaw"]),
            pitch=float(measurements["pitch"]),
            blink=(float(measurements["blink_left"]) + float(measurements["blink_right"])) / 2,
            jaw_open=float(measurements["jaw_open"]),
            embedding=embedding,
            captured_at=captured_at,
            landmarks=motion.as_points(landmarks),
        )


# --- challenges --------------------------------------------------------------------


def new_challenge(
    *,
    now: dt.datetime | None = None,
    length: int = DEFAULT_LENGTH,
    ttl: dt.timedelta = DEFAULT_TTL,
) -> LivenessChallenge:
    """A fresh random challenge of ``length`` distinct actions (drawn as core
    draws those it issues)."""
    return draw_challenge(ACTIONS, length=length, ttl=ttl, now=now or dt.datetime.now(dt.UTC))


def challenge_to_dict(challenge: LivenessChallenge) -> dict[str, Any]:
    return {
        "nonce": challenge.nonce,
        "actions": list(challenge.actions),
        "issued_at": challenge.issued_at.isoformat(),
        "expires_at": challenge.expires_at.isoformat(),
    }


def challenge_from_dict(data: Any, vocabulary: Collection[str] = ACTIONS) -> LivenessChallenge:
    """Parse and check a challenge as ``challenge_to_dict`` writes it, its
    actions drawn from ``vocabulary``."""
    try:
        nonce = data["nonce"]
        actions = tuple(data["actions"])
        issued = dt.datetime.fromisoformat(data["issued_at"])
        expires = dt.datetime.fromisoformat(data["expires_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ChallengeFormatError(details={"reason": type(exc).__name__}) from exc
    problems = []
    if not isinstance(nonce, str) or not 8 <= len(nonce) <= 128:
        problems.append("nonce")
    if not actions or len(actions) > len(vocabulary) or any(a not in vocabulary for a in actions):
        problems.append("actions")
    if issued.tzinfo is None or expires.tzinfo is None or expires <= issued:
        problems.append("times")
    if problems:
        raise ChallengeFormatError(
            f"The liveness challenge is invalid ({', '.join(problems)}).",
            f"活体检测挑战无效（{', '.join(problems)}）。",
            details={"fields": problems},
        )
    return LivenessChallenge(nonce=nonce, actions=actions, issued_at=issued, expires_at=expires)


class ChallengeLedger:
    """Remembers used nonces until their challenge expires: a challenge is answered once."""

    def __init__(self) -> None:
        self._used: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def consume(self, challenge: LivenessChallenge, now: dt.datetime) -> bool:
        """True the first time this nonce is seen (while it is not expired)."""
        with self._lock:
            for nonce in [n for n, until in self._used.items() if until + CLOCK_SKEW < now]:
                del self._used[nonce]
            if challenge.nonce in self._used:
                return False
            self._used[challenge.nonce] = challenge.expires_at
            return True


# --- observing frames --------------------------------------------------------------


def observe(image: Image, *, with_embedding: bool = True) -> FrameObservation:
    """Measure one frame from real detections (and embed a frontal-enough face)."""
    from healthcode.plugins.face.detect import detect_faces
    from healthcode.plugins.face.embed import face_embedding

    faces = detect_faces(image)
    if len(faces) != 1:
        return FrameObservation(faces=len(faces))
    face = faces[0]
    m = face.measurements
    embedding = None
    if (
        with_embedding
        and abs(m["yaw"]) <= IDENTITY_MAX_YAW
        and abs(m["pitch"]) <= IDENTITY_MAX_PITCH
    ):
        embedding = face_embedding(image, face)
    return FrameObservation.from_measurements(
        m, faces=1, embedding=embedding, landmarks=face.landmarks
    )


# --- judging -----------------------------------------------------------------------


@frozen
class ActionSpan:
    """One action, from the frame where it started to the frame where it was strongest."""

    action: str
    onset: int
    peak: int


def action_spans(frames: Sequence[FrameObservation]) -> list[ActionSpan]:
    """Each time an action starts (relative to the first frame), in order of onset."""
    if not frames:
        return []
    base = frames[0]
    going: dict[str, tuple[int, float]] = {}  # action -> its place in spans, peak value
    spans: list[ActionSpan] = []
    for index, frame in enumerate(frames[1:], start=1):
        if frame.faces != 1:
            continue
        yaw = frame.yaw - base.yaw
        pitch = abs(frame.pitch - base.pitch)
        levels = {
            "turn_left": (yaw, TURN_YAW_ON, TURN_YAW_OFF),
            "turn_right": (-yaw, TURN_YAW_ON, TURN_YAW_OFF),
            "nod": (pitch, NOD_PITCH_ON, NOD_PITCH_OFF),
            "blink": (frame.blink, BLINK_ON, BLINK_OFF),
            "open_mouth": (frame.jaw_open, MOUTH_ON, MOUTH_OFF),
        }
        for action, (value, on, off) in levels.items():
            if action not in going and value >= on:
                going[action] = (len(spans), value)
                spans.append(ActionSpan(action, index, index))
            elif action in going and value < off:
                del going[action]
            elif action in going and value > going[action][1]:
                place = going[action][0]
                going[action] = (place, value)
                spans[place] = attrs.evolve(spans[place], peak=index)
    return spans


def action_onsets(frames: Sequence[FrameObservation]) -> list[tuple[int, str]]:
    """(frame index, action) each time an action starts, relative to the first frame."""
    return [(span.onset, span.action) for span in action_spans(frames)]


def flat_actions(frames: Sequence[FrameObservation], spans: Sequence[ActionSpan]) -> set[int]:
    """Positions (in ``spans``) of the actions a flat picture would show: at the
    action's peak, its region moved as the first frame's picture would move."""
    base = frames[0].landmarks if frames else None
    flat = set()
    for position, span in enumerate(spans):
        peak = frames[span.peak].landmarks
        if base is None or peak is None:
            continue  # not measured: nothing to say
        if motion.flat_motion(base, peak, ACTION_REGIONS.get(span.action, "face")):
            flat.add(position)
    return flat


def _static_reasons(frames: Sequence[FrameObservation]) -> list[str]:
    """``static_frames`` when every frame repeats the first one's picture."""
    base = frames[0].landmarks
    others = [f.landmarks for f in frames[1:] if f.faces == 1]
    if base is None or not others or any(points is None for points in others):
        return []
    moved = max(motion.displacement(base, points) for points in others)
    return ["static_frames"] if moved < motion.STATIC_MAX_DISPLACEMENT else []


def match_actions(
    expected: Sequence[str], onsets: Iterable[tuple[int, str]]
) -> tuple[int, list[str]]:
    """How many expected actions were done in order, and the unexpected ones."""
    by_frame: dict[int, list[str]] = {}
    for index, action in onsets:
        by_frame.setdefault(index, []).append(action)
    done = 0
    unexpected: list[str] = []
    for index in sorted(by_frame):
        pending = by_frame[index]
        # Onsets within one frame are simultaneous: take them in challenge order.
        progressed = True
        while progressed and done < len(expected):
            progressed = expected[done] in pending
            if progressed:
                pending.remove(expected[done])
                done += 1
        for action in pending:
            repeated = done > 0 and action == expected[done - 1]
            if action != "blink" and not repeated:
                unexpected.append(action)
    return done, unexpected


_SCORE_VOIDING = (
    "challenge_expired",
    "challenge_already_used",
    "no_face",
    "more_than_one_face",
    "static_frames",
)
"""Reasons that make the score 0, whatever actions were done."""


def _challenge_reasons(
    challenge: LivenessChallenge, now: dt.datetime, fresh_nonce: bool
) -> list[str]:
    reasons = []
    if not fresh_nonce:
        reasons.append("challenge_already_used")
    if now > challenge.expires_at + CLOCK_SKEW:
        reasons.append("challenge_expired")
    if now < challenge.issued_at - CLOCK_SKEW:
        reasons.append("challenge_not_yet_valid")
    return reasons


def _timing_reasons(challenge: LivenessChallenge, frames: Sequence[FrameObservation]) -> list[str]:
    """Frames that carry capture times must be in order and inside the window."""
    times = [f.captured_at for f in frames if f.captured_at is not None]
    reasons = []
    if any(b < a for a, b in itertools.pairwise(times)):
        reasons.append("frames_out_of_order")
    start, end = challenge.issued_at - CLOCK_SKEW, challenge.expires_at + CLOCK_SKEW
    if any(not start <= t <= end for t in times):
        reasons.append("frame_outside_challenge_window")
    return reasons


def _face_count_reasons(frames: Sequence[FrameObservation]) -> list[str]:
    reasons = []
    if any(f.faces == 0 for f in frames):
        reasons.append("no_face")
    if any(f.faces > 1 for f in frames):
        reasons.append("more_than_one_face")
    return reasons


def _is_neutral(frame: FrameObservation) -> bool:
    """Facing the camera, eyes open, mouth closed: a baseline for the actions."""
    return (
        abs(frame.yaw) <= NEUTRAL_MAX_YAW
        and abs(frame.pitch) <= NEUTRAL_MAX_PITCH
        and frame.blink < BLINK_OFF
        and frame.jaw_open < MOUTH_OFF
    )


def _identity_reasons(frames: Sequence[FrameObservation], threshold: float) -> list[str]:
    """Empty when every compared frame shows the person of the first frame."""
    if frames[0].embedding is None:
        return ["identity_not_checked"]
    reference = np.asarray(frames[0].embedding, dtype=np.float32)
    for frame in frames[1:]:
        if (
            frame.faces == 1
            and frame.embedding is not None
            and _cosine(reference, frame.embedding) < threshold
        ):
            return ["different_person"]
    return []


def _failed(reasons: Iterable[str]) -> LivenessResult:
    return LivenessResult(passed=False, score=0.0, reasons=tuple(dict.fromkeys(reasons)))


def judge(
    challenge: LivenessChallenge,
    frames: Sequence[FrameObservation],
    *,
    now: dt.datetime,
    fresh_nonce: bool = True,
    identity_threshold: float = IDENTITY_THRESHOLD,
) -> LivenessResult:
    """Decide whether the observed frames answer ``challenge`` (a pure function)."""
    reasons = _challenge_reasons(challenge, now, fresh_nonce)
    if len(frames) < MIN_FRAMES:
        reasons.append("too_few_frames")
    if len(frames) > MAX_FRAMES:
        return _failed([*reasons, "too_many_frames"])
    reasons += _timing_reasons(challenge, frames) + _face_count_reasons(frames)
    if not frames or frames[0].faces != 1:
        return _failed(reasons)
    if not _is_neutral(frames[0]):
        reasons.append("not_neutral_at_start")
    identity = _identity_reasons(frames, identity_threshold)
    reasons += identity

    reasons += _static_reasons(frames)

    spans = action_spans(frames)
    flat = flat_actions(frames, spans)
    # A flat picture's action is not done, nor is it an unexpected one.
    kept = [(s.onset, s.action) for p, s in enumerate(spans) if p not in flat]
    done, unexpected = match_actions(challenge.actions, kept)
    missing = challenge.actions[done:]
    pictured = {spans[p].action for p in flat}
    planar = [f"planar_motion:{a}" for a in missing if a in pictured]
    reasons += planar
    reasons.extend(f"missing_action:{a}" for a in missing)
    reasons.extend(f"unexpected_action:{a}" for a in dict.fromkeys(unexpected))

    score = done / len(challenge.actions) if challenge.actions else 0.0
    if identity or unexpected or planar or any(r in reasons for r in _SCORE_VOIDING):
        score = 0.0
    unique = tuple(dict.fromkeys(reasons))
    return LivenessResult(passed=not unique, score=round(score, 3), reasons=unique)


def _cosine(a: npt.NDArray[np.float32], b: Any) -> float:
    other = np.asarray(b, dtype=np.float32)
    norm = float(np.linalg.norm(a) * np.linalg.norm(other))
    return float(np.dot(a, other) / norm) if norm > 0 else 0.0


_ledger = ChallengeLedger()


def check_liveness(
    challenge: LivenessChallenge,
    frames: Sequence[Image],
    *,
    now: dt.datetime | None = None,
    ledger: ChallengeLedger | None = None,
) -> LivenessResult:
    """Observe every frame and judge; the challenge's nonce is used up by this call."""
    moment = now or dt.datetime.now(dt.UTC)
    fresh = (ledger or _ledger).consume(challenge, moment)
    if len(frames) > MAX_FRAMES:
        return judge(challenge, [FrameObservation(faces=0)] * (MAX_FRAMES + 1), now=moment)
    observations = [observe(frame) for frame in frames]
    return judge(challenge, observations, now=moment, fresh_nonce=fresh)
