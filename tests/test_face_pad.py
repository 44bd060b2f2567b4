"""Optional passive presentation-attack check: off by default; loading and
pre-processing tested with a tiny real ONNX model these tests write; run on
tests/data/antispoof only when an operator's model is configured."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from support.data import ANTISPOOF

from healthcode.core.images import image_from_array, read_image_file
from healthcode.core.models import Face
from healthcode.plugins.face import pad
from healthcode.plugins.face.errors import PresentationAttackModelError
from healthcode.plugins.face.onnxwire import constant_initializers, tiny_model


def _mean_colour_model(path: Path, size: int = 16) -> Path:
    """Logits = the channel means of the input: makes pre-processing observable."""
    path.write_bytes(
        tiny_model(
            "input",
            [1, 3, size, size],
            "logits",
            [1, 3],
            [("GlobalAveragePool", ["input"], ["pooled"]), ("Flatten", ["pooled"], ["logits"])],
        )
    )
    return path


def _config(path: Path, **settings: str) -> pad.PadConfig:
    env = {pad.PAD_MODEL_ENV: str(path), **settings}
    config = pad.configured_pad(env)
    assert config is not None
    return config


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pad.PAD_MODEL_ENV, raising=False)
    assert pad.configured_pad() is None
    face = Face(box=(0, 0, 4, 4), score=1.0)
    assert pad.presentation_attack_score(image_from_array(np.zeros((8, 8, 3))), face) is None


def test_bad_settings_and_missing_model(tmp_path: Path) -> None:
    with pytest.raises(PresentationAttackModelError):
        pad.configured_pad({pad.PAD_MODEL_ENV: "m.onnx", pad.PAD_INPUT_ENV: "yuv"})
    with pytest.raises(PresentationAttackModelError):
        pad.configured_pad({pad.PAD_MODEL_ENV: "m.onnx", pad.PAD_SCALE_ENV: "big"})
    with pytest.raises(PresentationAttackModelError):
        pad.PadModel(_config(tmp_path / "absent.onnx"))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not onnx")
    with pytest.raises(PresentationAttackModelError):
        pad.PadModel(_config(garbage))


def test_model_with_a_dynamic_input_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.onnx"
    path.write_bytes(
        tiny_model("x", [1, 3, "h", "w"], "y", [1, 3, 1, 1], [("GlobalAveragePool", ["x"], ["y"])])
    )
    with pytest.raises(PresentationAttackModelError):
        pad.PadModel(_config(path))


def test_crop_is_square_scaled_and_inside_the_image(tmp_path: Path) -> None:
    model = pad.PadModel(_config(_mean_colour_model(tmp_path / "m.onnx"), HEALTHCODE_PAD_SCALE="2"))
    pixels = np.zeros((100, 200, 3), np.uint8)
    pixels[:, 150:] = (0, 0, 255)  # blue on the right
    image = image_from_array(pixels)
    # A 20x20 face at the right edge: the 40x40 crop is shifted left to stay inside.
    crop = model.crop(image, Face(box=(175.0, 40.0, 20.0, 20.0), score=1.0))
    assert crop.shape == (16, 16, 3)
    assert crop[:, -1, 2].min() == 255 and crop[:, 0, 2].max() == 255  # 160..200: all blue


def test_bgr_order_and_live_index_with_a_real_onnx_run(tmp_path: Path) -> None:
    path = _mean_colour_model(tmp_path / "m.onnx")
    red = image_from_array(np.tile(np.array([250, 10, 10], np.uint8), (64, 64, 1)))
    face = Face(box=(16.0, 16.0, 32.0, 32.0), score=1.0)
    model = pad.PadModel(_config(path, HEALTHCODE_PAD_LIVE_INDEX="2"))
    logits = model.run(model.preprocess(model.crop(red, face)))
    assert logits == pytest.approx([10.0, 10.0, 250.0])  # BGR, 0..255
    assert model.attack_score(red, face) == pytest.approx(0.0, abs=1e-6)  # "live" = red here
    rgb01 = pad.PadModel(_config(path, HEALTHCODE_PAD_INPUT="rgb01", HEALTHCODE_PAD_LIVE_INDEX="2"))
    logits = rgb01.run(rgb01.preprocess(rgb01.crop(red, face)))
    assert logits == pytest.approx([250 / 255, 10 / 255, 10 / 255], abs=1e-6)
    assert 0.0 < rgb01.attack_score(red, face) < 1.0


def test_hook_uses_the_configured_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import healthcode.plugins.face as face_plugin

    monkeypatch.setenv(pad.PAD_MODEL_ENV, str(_mean_colour_model(tmp_path / "m.onnx")))
    image = image_from_array(np.full((32, 32, 3), 100, np.uint8))
    score = face_plugin.healthcode_presentation_attack_score(
        image=image, face=Face(box=(8.0, 8.0, 16.0, 16.0), score=1.0)
    )
    assert score == pytest.approx(2 / 3)  # equal logits: P(live) = 1/3


def test_constant_initializers_keeps_a_model_without_them_intact(tmp_path: Path) -> None:
    model = _mean_colour_model(tmp_path / "m.onnx").read_bytes()
    assert constant_initializers(model) == model


@pytest.mark.skipif(
    not os.environ.get(pad.PAD_MODEL_ENV), reason=f"no operator PAD model ({pad.PAD_MODEL_ENV})"
)
def test_configured_real_model_on_antispoof_images() -> None:
    from healthcode.plugins.face.detect import single_face

    scores: dict[str, float] = {}
    for name in ("real_1.jpg", "spoof_1.jpg", "spoof_2.jpg"):
        image = read_image_file(ANTISPOOF / name)
        score = pad.presentation_attack_score(image, single_face(image))
        assert score is not None
        scores[name] = score
    assert scores["real_1.jpg"] < 0.5
    assert scores["spoof_1.jpg"] > 0.5 and scores["spoof_2.jpg"] > 0.5
