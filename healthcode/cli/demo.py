"""``healthcode demo``: try enrollment end to end on an instance started with ``--demo``.

    healthcode serve --demo &
    healthcode demo --server http://127.0.0.1:8000 \\
        --face tests/data/faces/obama_1.jpg --face tests/data/faces/obama_2.jpg

It plays a holder's phone and an operator at once: renders a synthetic
passport data page (surname DEMO, issued by ``XXX``, marked
``HEALTHCODEDEMO``; ``healthcode.testing.demo_holder``) with the face of the
first photo that looks at the camera, asks the server for a liveness
challenge, answers it with the photos (and their mirror images: a face turned
to one side, mirrored, is turned to the other), enrolls over the HTTP API with
a new device key, fetches the holder's pass, creates a guard token on the
instance's database (the same one ``healthcode paths`` shows), and prints the
token, the pass and a live code with its QR. The device key, the pass and the
data page stay in ``--out`` for the next commands.

A server that does not say ``"demo": true`` in ``GET /health/live`` is refused
(``demo_not_enabled``): the demo never enrolls on an instance that serves people.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthcode.cli.client import answer, localised, report, unreachable
from healthcode.cli.options import (
    DatabaseOption,
    JsonOption,
    SecretsOption,
    ServerOption,
    run_async,
    with_database,
)
from healthcode.core.errors import HealthcodeError, InputError

if TYPE_CHECKING:
    import httpx

    from healthcode.core.models import Image
    from healthcode.core.passes import HolderDevice
    from healthcode.testing.demo_holder import Pose

TIMEOUT_S = 120.0
"""Enrollment decodes and checks every frame: allow a slow first request."""
MAX_DRAWS = 12
"""Challenges asked for before giving up on photos that answer none of them."""
GUARD_LABEL = "demo guard"


class DemoNotEnabledError(HealthcodeError):
    code = "demo_not_enabled"
    default_en = (
        "This server was not started with `healthcode serve --demo`; the demo enrolls "
        "only on a demo instance, never on one that serves people."
    )
    default_zh = (
        "该服务未以 `healthcode serve --demo` 启动；演示只在演示实例上登记，绝不用于正式服务。"
    )


class DemoPhotosUnusableError(InputError):
    code = "demo_photos_unusable"
    default_en = "The photos cannot answer the demo's liveness challenge."
    default_zh = "所给照片无法完成演示的活体检测动作。"


class DemoFontMissingError(HealthcodeError):
    code = "demo_font_missing"
    default_en = (
        "The OCR-B font, which prints the demo page's machine-readable zone, was not found; "
        "install it with `apt-get install fonts-ocr-b`."
    )
    default_zh = (
        "未找到用于打印演示证件机读区的 OCR-B 字体；请用 `apt-get install fonts-ocr-b` 安装。"
    )


FaceOption = Annotated[
    list[Path],
    typer.Option(
        "--face",
        help="A photo of one face. Give one looking at the camera and one turned to a side "
        "or with the mouth open (mirror images are made for you). Repeat the option.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
OutOption = Annotated[
    Path,
    typer.Option(
        "--out", help="Folder for the demo holder's device key, pass, live code and data page."
    ),
]


def demo_command(
    server: ServerOption,
    face: FaceOption,
    out: OutOption = Path("healthcode-demo"),
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enroll a synthetic DEMO holder with your face photos on a demo instance
    (`healthcode serve --demo`), then print a guard token, the holder's pass
    and a live code with its QR, and the guard's next command."""
    import httpx

    base = server.rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
            _require_demo_server(client)
            result = _run_demo(client, face, out, as_json=as_json)
        result["guard_token"] = _guard_token(out, database, secrets_file, as_json=as_json)
    except (httpx.TransportError, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        report(unreachable(base, type(exc).__name__), as_json=as_json)
    except HealthcodeError as exc:
        report(exc, as_json=as_json)
    result["next"] = _next_commands(base, out)
    if as_json:
        # Times at +08:00, as a person in Shanghai reads them.
        print(json.dumps(localised({"ok": True, **result}), ensure_ascii=False))
    else:
        _print_result(result)


def _require_demo_server(client: httpx.Client) -> None:
    body = answer(client.get("/health/live"))
    if body.get("demo") is not True:
        raise DemoNotEnabledError(details={"server": str(client.base_url)})


def _run_demo(
    client: httpx.Client, faces: list[Path], out: Path, *, as_json: bool
) -> dict[str, Any]:
    """Page, device key, challenge, enrollment and pass; the files go to ``out``."""
    from healthcode.core.passes import HolderDevice

    candidates, base = _photos(faces)
    page = _data_page(base)
    out.mkdir(parents=True, exist_ok=True)
    (out / "data-page.png").write_bytes(page)
    device = HolderDevice.generate("ES256")
    _progress("asking for a challenge and enrolling (the server checks every frame)", as_json)
    nonce, frames = _challenge_and_frames(client, candidates, base)
    enrolled = _enroll(client, device, nonce, frames, base, page)
    subject = enrolled["subject"]
    issued = answer(_signed(client, device, subject["subject_id"], "/me/passes"))
    device.save(out / "phone.key")
    (out / "pass.txt").write_text(issued["text"] + "\n", encoding="ascii")
    live_code = device.present(issued["text"])
    (out / "shown.txt").write_text(live_code + "\n", encoding="ascii")
    return {
        "subject_id": subject["subject_id"],
        "kind": subject["kind"],
        "masked_name": subject["masked_name"],
        "masked_number": subject["masked_number"],
        "status": enrolled["status"],
        "frames": [pose.label for pose in frames],
        "pass": issued["text"],
        "valid_until": issued["valid_until"],
        "live_code": live_code,
        "files": {
            "device_key": str(out / "phone.key"),
            "pass": str(out / "pass.txt"),
            "live_code": str(out / "shown.txt"),
            "data_page": str(out / "data-page.png"),
        },
    }


def _progress(message: str, as_json: bool) -> None:
    if not as_json:
        print(f"healthcode demo: {message} ...", file=sys.stderr, flush=True)


def _photos(faces: list[Path]) -> tuple[list[Pose], Pose]:
    """Every usable pose of the photos, and the neutral one (portrait, capture, baseline)."""
    from healthcode.core.enrollment.errors import FaceCheckUnavailableError
    from healthcode.core.images import read_image_file
    from healthcode.core.plugins import get_plugin_manager
    from healthcode.testing.demo_holder import baseline, poses

    pm = get_plugin_manager()

    def detect(image: Image) -> list[Any]:
        found = pm.hook.healthcode_detect_faces(image=image)
        if found is None:
            raise FaceCheckUnavailableError(details={"hook": "healthcode_detect_faces"})
        return list(found)

    candidates = poses(((path.name, read_image_file(path)) for path in faces), detect)
    base = baseline(candidates)
    if base is None:
        raise DemoPhotosUnusableError(
            "None of the photos shows one face looking straight at the camera, eyes open and "
            "mouth closed; add such a photo with another --face.",
            "没有一张照片是单人正脸、睁眼、闭嘴；请再用 --face 加一张这样的照片。",
            details={"reason": "no_neutral_photo", "photos": len(faces)},
        )
    return candidates, base


def _data_page(base: Pose) -> bytes:
    """The demo passport page (PNG) with the neutral photo's face as its portrait."""
    from healthcode.core.clock import today_shanghai
    from healthcode.testing.demo_holder import demo_fields, demo_page

    rng = random.SystemRandom()
    try:
        _, png = demo_page(demo_fields(rng, today=today_shanghai()), base.image, base.face, rng)
    except FileNotFoundError:
        raise DemoFontMissingError() from None
    return png


def _challenge_and_frames(
    client: httpx.Client, candidates: list[Pose], base: Pose
) -> tuple[str, list[Pose]]:
    """A challenge these photos can answer, and the frames that answer it. Stills
    cannot answer every draw (a photo with the mouth open turns its head too),
    so another challenge is asked for; unanswered ones simply expire."""
    from healthcode.testing.demo_holder import plan_frames, what_photos_show

    drawn: list[list[str]] = []
    for _ in range(MAX_DRAWS):
        challenge = answer(client.post("/enrollments/challenges", json={}))
        actions = [str(a) for a in challenge["actions"]]
        frames = plan_frames(actions, candidates, base)
        if frames is not None:
            return str(challenge["nonce"]), frames
        drawn.append(actions)
    shown = what_photos_show(candidates, base)
    raise DemoPhotosUnusableError(
        "The photos cannot answer the challenges this server draws "
        f"({', '.join(sorted({a for actions in drawn for a in actions}))}); they show "
        f"{', '.join(shown) or 'no action'}. Add a photo turned to one side (mouth closed), "
        "or one with the mouth open.",
        f"所给照片无法完成服务器要求的动作；照片中的动作：{'、'.join(shown) or '无'}。"
        "请再加一张侧转头（闭嘴）或张嘴的照片。",
        details={"reason": "challenge_unanswerable", "shown": shown, "draws": len(drawn)},
    )


def _enroll(
    client: httpx.Client,
    device: HolderDevice,
    nonce: str,
    frames: list[Pose],
    base: Pose,
    page: bytes,
) -> dict[str, Any]:
    """``POST /enrollments``: the page photo, the frames, the capture, the device key."""
    from healthcode.testing.demo_holder import DEMO_DECLARED_NAME, jpeg

    files: list[tuple[str, tuple[str, bytes, str]]] = [
        ("frames", (f"frame-{i}.jpg", jpeg(pose.image), "image/jpeg"))
        for i, pose in enumerate(frames, start=1)
    ]
    files.append(("capture", ("capture.jpg", jpeg(base.image), "image/jpeg")))
    files.append(("document_image", ("data-page.png", page, "image/png")))
    data = {
        "challenge_nonce": nonce,
        "declared_name": DEMO_DECLARED_NAME,
        "device_public_key": base64.b64encode(device.public_key_der).decode(),
    }
    enrolled: dict[str, Any] = answer(client.post("/enrollments", data=data, files=files))
    return enrolled


def _signed(client: httpx.Client, device: HolderDevice, subject_id: str, path: str) -> Any:
    from healthcode.core.auth import sign_request

    header = sign_request(device.private_key, subject_id, "POST", path)
    return client.post(path, headers={"authorization": header})


def _guard_token(
    out: Path, database: str | None, secrets_file: Path | None, *, as_json: bool
) -> str:
    """A guard token on this machine's instance database, also saved (0600) in ``out``."""
    from healthcode.core.auth import create_token

    token: str = run_async(
        with_database(
            database, secrets_file, lambda db, _s: create_token(db, "guard", GUARD_LABEL)
        ),
        as_json=as_json,
    )
    path = out / "guard.token"
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    path.write_text(token + "\n", encoding="ascii")
    return token


def _next_commands(base: str, out: Path) -> list[str]:
    """What a guard does next: a fresh live code checked offline on this
    machine's trust list, or online with the guard token."""
    key, pass_file, shown = out / "phone.key", out / "pass.txt", out / "shown.txt"
    present = f"healthcode passes present - --device-key {key} < {pass_file}"
    return [
        f"{present} | healthcode verify -",
        f"{present} > {shown}",
        f'curl -s -H "Authorization: Bearer $(cat {out / "guard.token"})" '
        f"-H 'Content-Type: application/json' "
        f'-d "{{\\"presentation\\": \\"$(cat {shown})\\"}}" {base}/guard/verifications',
    ]


def _shanghai(text: str) -> str:
    from healthcode.core.clock import SHANGHAI

    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M Asia/Shanghai")


def _print_result(result: dict[str, Any]) -> None:
    from healthcode.core.passes.qr import qr_terminal

    status = result["status"]
    files = result["files"]
    lines = [
        f"enrolled / 已登记: {result['masked_name']} {result['masked_number']} ({result['kind']})",
        f"status / 状态: {status['label_zh']} {status['label_en']} ({status['colour']}), "
        f"valid until {_shanghai(status['valid_until'])}",
        f"subject id: {result['subject_id']}",
        f"files: {files['device_key']} (device key), {files['pass']}, {files['live_code']}, "
        f"{files['data_page']}",
        "",
        "guard token (shown once; also saved 0600 beside the pass) / 门岗令牌:",
        f"  {result['guard_token']}",
        "",
        f"the holder's pass / 通行证 (valid until {_shanghai(result['valid_until'])}):",
        f"  {result['pass']}",
        "",
        "a live code / 动态码 (valid 30 s; the phone shows a new one every few seconds):",
        f"  {result['live_code']}",
    ]
    print("\n".join(lines))
    print(qr_terminal(result["live_code"]))
    print("next, as a guard / 下一步（门岗核验）:")
    for command in result["next"]:
        print(f"  {command}")
