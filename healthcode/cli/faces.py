"""``healthcode faces``: detect, compare, liveness, document portrait.

The face stack (numpy, mediapipe, onnxruntime) is imported inside the commands,
so that other sub-apps start fast. Outputs never contain pixels or embeddings.

Exit codes: 0 when the check passes (a face found, a match, liveness passed),
1 when it does not or the input is refused, 3 when a model is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthcode.cli.errors import EXIT_INVALID, EXIT_OK, fail
from healthcode.core.errors import HealthcodeError

if TYPE_CHECKING:
    import pluggy

    from healthcode.core.models import Face, Image

app = typer.Typer(help="Faces: detection, 1:1 comparison, active liveness.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ImageArgument = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Image file.")
]


def _plugin_manager() -> pluggy.PluginManager:
    from healthcode.core.plugins import get_plugin_manager

    return get_plugin_manager()


def _read(path: Path) -> Image:
    from healthcode.core.images import read_image_file

    return read_image_file(path)


def _face_payload(face: Face) -> dict[str, Any]:
    return {
        "box": [round(v, 1) for v in face.box],
        "score": round(face.score, 3),
        "measurements": {k: round(v, 3) for k, v in face.measurements.items()},
    }


def _emit(payload: dict[str, Any], as_json: bool, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        typer.echo(human)


@app.command("detect")
def detect_command(image: ImageArgument, json_output: JsonOption = False) -> None:
    """Find faces; report pose, eye/mouth measures and quality problems."""
    from healthcode.plugins.face.detect import assess_quality

    try:
        picture = _read(image)
        pm = _plugin_manager()
        faces = list(pm.hook.healthcode_detect_faces(image=picture) or [])
        problems = assess_quality(faces)
        attack = (
            pm.hook.healthcode_presentation_attack_score(image=picture, face=faces[0])
            if len(faces) == 1
            else None
        )
    except HealthcodeError as error:
        fail(error, as_json=json_output)
    payload = {
        "ok": True,
        "usable": not problems,
        "width": picture.width,
        "height": picture.height,
        "faces": [_face_payload(f) for f in faces],
        "problems": [p.as_dict() for p in problems],
        "presentation_attack_score": attack,
    }
    lines = [f"{len(faces)} face(s) in {picture.width}x{picture.height}"]
    for index, face in enumerate(faces):
        m = face.measurements
        lines.append(
            f"  face {index}: box={tuple(round(v) for v in face.box)} "
            f"yaw={m['yaw']:.1f} pitch={m['pitch']:.1f} "
            f"blink={(m['blink_left'] + m['blink_right']) / 2:.2f} jaw_open={m['jaw_open']:.2f}"
        )
    lines += [f"  problem [{p.code}]: {p.message_en} / {p.message_zh}" for p in problems]
    if attack is not None:
        lines.append(f"  presentation-attack score: {attack:.3f}")
    _emit(payload, json_output, "\n".join(lines))
    raise typer.Exit(EXIT_OK if faces and not problems else EXIT_INVALID)


@app.command("compare")
def compare_command(
    first: ImageArgument, second: ImageArgument, json_output: JsonOption = False
) -> None:
    """1:1 comparison of the single face in each image (exit 0 on a match)."""
    from healthcode.plugins.face.detect import single_face

    try:
        pm = _plugin_manager()
        templates = []
        for path in (first, second):
            picture = _read(path)
            face = single_face(picture)
            templates.append(pm.hook.healthcode_face_template(image=picture, face=face))
        match = pm.hook.healthcode_compare_templates(a=templates[0], b=templates[1])
    except HealthcodeError as error:
        fail(error, as_json=json_output)
    payload = {
        "ok": True,
        "match": match.is_match,
        "similarity": round(match.similarity, 4),
        "threshold": match.threshold,
    }
    verdict = "same person" if match.is_match else "different people"
    _emit(
        payload,
        json_output,
        f"{verdict}: similarity {match.similarity:.3f} (threshold {match.threshold})",
    )
    raise typer.Exit(EXIT_OK if match.is_match else EXIT_INVALID)


@app.command("challenge")
def challenge_command(
    length: Annotated[int, typer.Option(min=1, max=5, help="Number of actions.")] = 3,
    ttl: Annotated[int, typer.Option(min=5, max=600, help="Seconds until it expires.")] = 60,
) -> None:
    """Issue a random liveness challenge (JSON, for `faces liveness --challenge`)."""
    import datetime as dt

    from healthcode.plugins.face.liveness import challenge_to_dict, new_challenge

    challenge = new_challenge(length=length, ttl=dt.timedelta(seconds=ttl))
    typer.echo(json.dumps(challenge_to_dict(challenge)))


@app.command("liveness")
def liveness_command(
    challenge_file: Annotated[
        Path,
        typer.Option(
            "--challenge", exists=True, dir_okay=False, help="Challenge JSON (`faces challenge`)."
        ),
    ],
    frames: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, help="Frames, in the order they were taken."),
    ],
    json_output: JsonOption = False,
) -> None:
    """Judge whether FRAMES answer the challenge (exit 0 when passed)."""
    from healthcode.plugins.face.errors import ChallengeFormatError
    from healthcode.plugins.face.liveness import MAX_FRAMES, challenge_from_dict

    try:
        try:
            raw = json.loads(challenge_file.read_text(encoding="utf-8")[:10_000])
        except (ValueError, RecursionError) as exc:  # undecodable, malformed, too deep
            raise ChallengeFormatError(details={"reason": "not_json"}) from exc
        challenge = challenge_from_dict(raw)
        if len(frames) > MAX_FRAMES:
            raise ChallengeFormatError(
                f"At most {MAX_FRAMES} frames are accepted.",
                f"最多接受 {MAX_FRAMES} 帧。",
                code="too_many_frames",
                details={"frames": len(frames), "max_frames": MAX_FRAMES},
            )
        pictures = [_read(path) for path in frames]
        result = _plugin_manager().hook.healthcode_check_liveness(
            challenge=challenge, frames=pictures
        )
    except HealthcodeError as error:
        fail(error, as_json=json_output)
    payload = {
        "ok": True,
        "passed": result.passed,
        "score": result.score,
        "reasons": list(result.reasons),
        "actions": list(challenge.actions),
    }
    human = f"{'passed' if result.passed else 'failed'} (score {result.score})"
    if result.reasons:
        human += ": " + ", ".join(result.reasons)
    _emit(payload, json_output, human)
    raise typer.Exit(EXIT_OK if result.passed else EXIT_INVALID)


@app.command("portrait")
def portrait_command(
    document: ImageArgument, capture: ImageArgument, json_output: JsonOption = False
) -> None:
    """Compare the portrait on a document page with a live capture (exit 0 on a match)."""
    from healthcode.plugins.face.portrait import compare_portrait_with_capture

    try:
        match, warnings = compare_portrait_with_capture(_read(document), _read(capture))
    except HealthcodeError as error:
        fail(error, as_json=json_output)
    payload = {
        "ok": True,
        "match": match.is_match,
        "similarity": round(match.similarity, 4),
        "threshold": match.threshold,
        "portrait_warnings": [w.as_dict() for w in warnings],
    }
    verdict = "same person" if match.is_match else "different people"
    _emit(payload, json_output, f"{verdict}: similarity {match.similarity:.3f}")
    raise typer.Exit(EXIT_OK if match.is_match else EXIT_INVALID)
