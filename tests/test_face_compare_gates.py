"""``faces compare`` of two stored photos (issue 15): darkness is a warning on a
match and refuses only a non-match, where it is the likely cause; a face less
sharp than a studio photo is a warning (``image_soft``) whatever the outcome;
no face, several faces, a cut or too small face, and a face too blurred to match
reliably always refuse.

Needs the pinned models (`healthcode models fetch`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from support.data import FACES
from support.faces import require_face_models
from typer.testing import CliRunner

from healthcode.core.images import read_image_file


@pytest.fixture(scope="module", autouse=True)
def _models() -> None:
    require_face_models()


def _cli(*args: str) -> tuple[int, dict[str, Any]]:
    from healthcode.plugins.face.cli import faces_app

    result = CliRunner().invoke(faces_app, ["compare", *args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def _saved(tmp_path: Path, name: str, pixels: np.ndarray) -> str:
    path = tmp_path / f"{name}.png"
    PILImage.fromarray(pixels).save(path)
    return str(path)


def test_a_soft_or_dark_stored_photo_that_matches_is_a_match_with_warnings(
    tmp_path: Path,
) -> None:
    biden = read_image_file(FACES / "biden_1.jpg").pixels
    soft = _saved(tmp_path, "soft", cv2.GaussianBlur(biden, (0, 0), 3))
    dark = _saved(tmp_path, "dark", (biden * 0.25).astype(np.uint8))

    code, payload = _cli(soft, str(FACES / "biden_2.jpg"))
    assert code == 0 and payload["match"] is True
    assert [(w["image"], w["code"]) for w in payload["warnings"]] == [("first", "image_soft")]
    code, payload = _cli(str(FACES / "biden_2.jpg"), dark)
    assert code == 0 and payload["match"] is True
    assert [(w["image"], w["code"]) for w in payload["warnings"]] == [("second", "image_too_dark")]
    assert payload["warnings"][0]["message_zh"]

    # Sharp, well-lit photos: no warnings.
    code, payload = _cli(str(FACES / "biden_1.jpg"), str(FACES / "biden_2.jpg"))
    assert code == 0 and payload["warnings"] == []


def test_a_soft_photo_that_does_not_match_is_a_non_match_with_its_warning(
    tmp_path: Path,
) -> None:
    biden = read_image_file(FACES / "biden_1.jpg").pixels
    soft = _saved(tmp_path, "soft", cv2.GaussianBlur(biden, (0, 0), 3))
    code, payload = _cli(soft, str(FACES / "obama_3.jpg"))
    assert code != 0 and payload["ok"] is True and payload["match"] is False
    assert [w["code"] for w in payload["warnings"]] == ["image_soft"]


def test_a_dark_photo_that_does_not_match_is_refused_for_its_quality(tmp_path: Path) -> None:
    biden = read_image_file(FACES / "biden_1.jpg").pixels
    dark = _saved(tmp_path, "dark", (biden * 0.25).astype(np.uint8))
    code, payload = _cli(dark, str(FACES / "obama_3.jpg"))
    assert code != 0 and payload["ok"] is False
    assert payload["error"]["code"] == "image_too_dark"


def test_a_photo_too_blurred_to_match_is_refused_whatever_the_match(tmp_path: Path) -> None:
    biden = read_image_file(FACES / "biden_1.jpg").pixels
    blurred = _saved(tmp_path, "blurred", cv2.GaussianBlur(biden, (0, 0), 10))
    for other in ("biden_2.jpg", "obama_3.jpg"):
        code, payload = _cli(blurred, str(FACES / other))
        assert code != 0 and payload["ok"] is False
        assert payload["error"]["code"] == "image_too_blurred"


def test_hard_gates_refuse_whatever_the_match() -> None:
    code, payload = _cli(str(FACES / "two_people.jpg"), str(FACES / "obama_1.jpg"))
    assert code != 0 and payload["error"]["code"] == "more_than_one_face"
    code, payload = _cli(str(FACES / "obama_partial_face.jpg"), str(FACES / "obama_1.jpg"))
    assert code != 0 and payload["ok"] is False
    assert payload["error"]["code"] in ("face_out_of_frame", "no_face", "face_too_small")
