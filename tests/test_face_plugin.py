"""The face plugin on real images: detection, landmarks, pose, quality gates,
SFace templates and 1:1 decisions, the document portrait, and the CLI.

Needs the pinned models (`healthcode models fetch`): with CI=true a missing
model fails the run; locally the module is skipped, saying which command to run.
"""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.data import DOCUMENTS, FACES
from support.faces import require_face_models
from typer.testing import CliRunner

from healthcode.core.images import image_from_array, read_image_file
from healthcode.core.models import Face, Image
from healthcode.core.plugins import new_plugin_manager
from healthcode.plugins.face.errors import FaceQualityError


@pytest.fixture(scope="module", autouse=True)
def _models() -> None:
    require_face_models()


@pytest.fixture
def face_pm() -> pluggy.PluginManager:
    """The built-in plugins, the face plugin among them."""
    pm = new_plugin_manager(autoload=False)
    assert pm.has_plugin("face"), "the face plugin loads through its entry point"
    return pm


@functools.cache
def _image(name: str) -> Image:
    folder = DOCUMENTS if name.startswith("specimen") else FACES
    return read_image_file(folder / name)


@functools.cache
def _faces(name: str) -> tuple[Face, ...]:
    from healthcode.plugins.face.detect import detect_faces

    return tuple(detect_faces(_image(name)))


@functools.cache
def _embedding(name: str) -> np.ndarray:
    from healthcode.plugins.face.embed import face_embedding

    return face_embedding(_image(name), _faces(name)[0])


def _resize(image: Image, width: int) -> Image:
    import cv2

    height = round(image.height * width / image.width)
    return image_from_array(cv2.resize(image.pixels, (width, height), interpolation=cv2.INTER_AREA))


def _mirror(image: Image) -> Image:
    return image_from_array(image.pixels[:, ::-1])


# --- detection and landmarks ----------------------------------------------------


def test_detect_hook_finds_one_face_with_478_landmarks(face_pm: pluggy.PluginManager) -> None:
    image = _image("obama_1.jpg")
    faces = face_pm.hook.healthcode_detect_faces(image=image)
    assert len(faces) == 1
    face = faces[0]
    assert face.landmarks.shape == (478, 3)
    x, y, w, h = face.box
    assert x >= 0 and x + w <= image.width and y >= 0 and y + h <= image.height
    for key in ("yaw", "pitch", "roll", "blink_left", "blink_right", "jaw_open"):
        assert key in face.measurements


def test_no_face_on_a_face_free_image() -> None:
    from skimage import data

    from healthcode.plugins.face.detect import assess_quality, detect_faces

    coffee = data.coffee()  # type: ignore[no-untyped-call]
    faces = detect_faces(image_from_array(coffee))
    assert faces == []
    assert [p.code for p in assess_quality(faces)] == ["no_face"]


def test_two_people_is_more_than_one_face() -> None:
    from healthcode.plugins.face.detect import single_face

    assert len(_faces("two_people.jpg")) == 2
    with pytest.raises(FaceQualityError) as info:
        single_face(_image("two_people.jpg"))
    assert info.value.code == "more_than_one_face"
    assert "more than one face" in info.value.message_en.lower()


def test_partial_face_is_out_of_frame() -> None:
    from healthcode.plugins.face.detect import single_face

    with pytest.raises(FaceQualityError) as info:
        single_face(_image("obama_partial_face.jpg"))
    assert info.value.code == "face_out_of_frame"


def test_quality_hook_through_the_plugin_manager(face_pm: pluggy.PluginManager) -> None:
    def codes(name: str) -> list[str]:
        image = _image(name)
        faces = face_pm.hook.healthcode_detect_faces(image=image)
        problems = face_pm.hook.healthcode_assess_face_quality(image=image, faces=faces)
        return [p.code for p in problems]

    assert codes("obama_1.jpg") == []
    assert codes("two_people.jpg") == ["more_than_one_face"]
    assert "face_out_of_frame" in codes("obama_partial_face.jpg")
    # Faces without our measurements (another detector's) are not ours to judge.
    foreign = Face(box=(0, 0, 10, 10), score=1.0)
    image = _image("obama_1.jpg")
    assert face_pm.hook.healthcode_assess_face_quality(image=image, faces=[foreign]) is None


@pytest.mark.parametrize(
    "name", ["obama_1.jpg", "obama_2.jpg", "obama_3.jpg", "biden_1.jpg", "biden_2.jpg"]
)
def test_real_single_portraits_pass_the_gates(name: str) -> None:
    from healthcode.plugins.face.detect import assess_quality

    assert assess_quality(_faces(name)) == ()


def test_small_blurred_and_dark_faces_are_refused() -> None:
    import cv2

    from healthcode.plugins.face.detect import assess_quality, detect_faces

    base = _resize(_image("obama_1.jpg"), 640)
    blurred = image_from_array(cv2.GaussianBlur(base.pixels, (0, 0), 6))
    dark = image_from_array((base.pixels // 4).astype(np.uint8))
    small = _resize(_image("obama_1.jpg"), 220)  # face about 56 px wide
    codes = {
        label: [p.code for p in assess_quality(detect_faces(image))]
        for label, image in (("blurred", blurred), ("dark", dark), ("small", small))
    }
    assert codes["blurred"] == ["image_too_blurred"]
    assert codes["dark"] == ["image_too_dark"]
    assert codes["small"] == ["face_too_small"]


@pytest.mark.parametrize("name", ["obama_2.jpg", "obama_3.jpg", "biden_1.jpg"])
def test_mirrored_photo_gives_the_opposite_yaw(name: str) -> None:
    from healthcode.plugins.face.detect import detect_faces

    yaw = _faces(name)[0].measurements["yaw"]
    mirrored = detect_faces(_mirror(_image(name)))[0].measurements["yaw"]
    assert abs(yaw) > 10
    assert np.sign(mirrored) == -np.sign(yaw)
    assert abs(mirrored + yaw) < 3.0


def test_different_photos_of_one_person_give_different_poses() -> None:
    yaws = {n: _faces(n)[0].measurements["yaw"] for n in ("obama_1.jpg", "obama_2.jpg")}
    assert abs(yaws["obama_1.jpg"]) < 5  # facing the camera
    assert yaws["obama_2.jpg"] < -10  # turned to his right
    assert _faces("obama_2.jpg")[0].measurements["jaw_open"] > 0.35  # talking
    assert _faces("obama_1.jpg")[0].measurements["jaw_open"] < 0.2


# --- templates and 1:1 ----------------------------------------------------------

PEOPLE = ["obama_1.jpg", "obama_2.jpg", "obama_3.jpg", "biden_1.jpg", "biden_2.jpg"]


def test_every_genuine_pair_matches_and_every_impostor_pair_does_not(
    face_pm: pluggy.PluginManager,
) -> None:
    templates = {
        name: face_pm.hook.healthcode_face_template(image=_image(name), face=_faces(name)[0])
        for name in PEOPLE
    }
    from skimage import data

    from healthcode.plugins.face.detect import single_face

    astronaut = image_from_array(data.astronaut())  # type: ignore[no-untyped-call]
    templates["astronaut"] = face_pm.hook.healthcode_face_template(
        image=astronaut, face=single_face(astronaut)
    )
    for a, b in itertools.combinations(templates, 2):
        match = face_pm.hook.healthcode_compare_templates(a=templates[a], b=templates[b])
        same = a.split("_")[0] == b.split("_")[0]
        assert match.is_match is same, (a, b, match.similarity)


def test_template_format_and_foreign_templates(face_pm: pluggy.PluginManager) -> None:
    from healthcode.plugins.face.embed import TEMPLATE_SIZE, from_template

    template = face_pm.hook.healthcode_face_template(
        image=_image("obama_1.jpg"), face=_faces("obama_1.jpg")[0]
    )
    assert isinstance(template, bytes) and len(template) == TEMPLATE_SIZE
    vector = from_template(template)
    assert vector is not None
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)
    assert face_pm.hook.healthcode_compare_templates(a=template, b=b"other" * 10) is None
    assert face_pm.hook.healthcode_compare_templates(a=template, b=template).similarity == (
        pytest.approx(1.0, abs=1e-5)
    )
    nan = template[:4] + np.full(128, np.nan, dtype="<f4").tobytes()
    assert face_pm.hook.healthcode_compare_templates(a=template, b=nan) is None


def test_embedding_equals_opencv_sface_on_the_same_crop() -> None:
    """Our onnxruntime pre-processing is the one OpenCV's FaceRecognizerSF uses."""
    import cv2

    from healthcode.plugins.face.embed import align, cosine, embed
    from healthcode.plugins.face.modelstore import SFACE, require_model

    aligned = align(_image("biden_2.jpg"), _faces("biden_2.jpg")[0])
    assert aligned.shape == (112, 112, 3)
    recognizer = cv2.FaceRecognizerSF.create(str(require_model(SFACE)), "")
    theirs = recognizer.feature(cv2.cvtColor(aligned, cv2.COLOR_RGB2BGR)).reshape(-1)
    assert cosine(embed(aligned), theirs.astype(np.float32)) > 0.999


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(0.2, 5.0),
    angle=st.floats(-3.1, 3.1),
    shift=st.tuples(st.floats(-500, 500), st.floats(-500, 500)),
)
def test_similarity_transform_recovers_a_known_transform(
    scale: float, angle: float, shift: tuple[float, float]
) -> None:
    from healthcode.plugins.face.embed import REFERENCE_POINTS, similarity_transform

    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = REFERENCE_POINTS @ rotation.T + np.array(shift)
    matrix = similarity_transform(source, REFERENCE_POINTS)
    mapped = source @ matrix[:, :2].T + matrix[:, 2]
    assert np.allclose(mapped, REFERENCE_POINTS, atol=1e-6)


def test_template_hook_declines_faces_without_landmarks(face_pm: pluggy.PluginManager) -> None:
    face = Face(box=(0, 0, 10, 10), score=1.0)
    assert face_pm.hook.healthcode_face_template(image=_image("obama_1.jpg"), face=face) is None


# --- document portrait ----------------------------------------------------------


def test_portrait_is_found_on_the_passport_page() -> None:
    from healthcode.plugins.face.portrait import find_portrait

    page = _image("specimen_passport_td3.png")
    portrait = find_portrait(page)
    left, _top, width, height = portrait.box_on_page
    assert left + width < page.width / 2  # the TD3 portrait sits on the left
    assert portrait.image.pixels.shape == (height, width, 3)
    assert portrait.face.landmarks[:, 0].min() >= 0


def test_portrait_matches_the_same_holder_and_not_a_stranger() -> None:
    from healthcode.plugins.face.portrait import compare_portrait_with_capture

    # The PNG and the JPEG are two renderings of the same data page: the same
    # holder. A capture of someone else must not match.
    page = _image("specimen_passport_td3.png")
    same, _ = compare_portrait_with_capture(page, _image("specimen_passport_td3.jpg"))
    other, _ = compare_portrait_with_capture(page, _image("obama_1.jpg"))
    assert same.is_match
    assert not other.is_match


def test_portrait_region_hook_cuts_the_reported_box_with_the_margin(
    face_pm: pluggy.PluginManager,
) -> None:
    from healthcode.plugins.face.portrait import PORTRAIT_MARGIN

    page = _image("specimen_passport_td3.png")
    region = face_pm.hook.healthcode_portrait_region(page=page, box=(100, 100, 200, 240))
    grow = round(200 * PORTRAIT_MARGIN), round(240 * PORTRAIT_MARGIN)
    assert (region.width, region.height) == (200 + 2 * grow[0], 240 + 2 * grow[1])
    assert region.pixels.shape == (region.height, region.width, 3)
    # Clipped to the page, and nothing when too small to be a portrait.
    corner = face_pm.hook.healthcode_portrait_region(page=page, box=(0, 0, 100, 100))
    assert (corner.width, corner.height) == (115, 115)
    assert face_pm.hook.healthcode_portrait_region(page=page, box=(5, 5, 8, 8)) is None


# --- CLI ------------------------------------------------------------------------


def _cli(*args: str) -> tuple[int, dict[str, Any]]:
    from healthcode.plugins.face.cli import faces_app as app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, json.loads(result.stdout)


def test_cli_detect_json() -> None:
    code, payload = _cli("detect", str(FACES / "two_people.jpg"), "--json")
    assert code == 1
    assert payload["usable"] is False
    assert len(payload["faces"]) == 2
    assert [p["code"] for p in payload["problems"]] == ["more_than_one_face"]


def test_cli_compare_json() -> None:
    code, payload = _cli(
        "compare", str(FACES / "biden_1.jpg"), str(FACES / "biden_2.jpg"), "--json"
    )
    assert code == 0 and payload["match"] is True
    code, payload = _cli(
        "compare", str(FACES / "biden_1.jpg"), str(FACES / "obama_1.jpg"), "--json"
    )
    assert code == 1 and payload["match"] is False


def test_cli_compare_refuses_a_bad_image(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((FACES / "obama_1.jpg").read_bytes()[:5000])
    code, payload = _cli("compare", str(broken), str(FACES / "obama_1.jpg"), "--json")
    assert code == 1
    assert payload["error"]["code"] == "image_corrupt"


def test_cli_portrait_json() -> None:
    code, payload = _cli(
        "portrait",
        str(DOCUMENTS / "specimen_passport_td3.png"),
        str(FACES / "obama_2.jpg"),
        "--json",
    )
    assert code == 1 and payload["match"] is False


def test_face_commands_are_registered_through_the_hook() -> None:
    import typer

    from healthcode.cli.main import app as main_app

    pm = new_plugin_manager(autoload=False)
    app = typer.Typer()
    pm.hook.healthcode_register_commands(app=app)
    names = {group.name for group in app.registered_groups}
    assert names >= {"faces", "models"}
    # The healthcode CLI mounts them the same way.
    result = CliRunner().invoke(
        main_app,
        ["faces", "compare", str(FACES / "biden_1.jpg"), str(FACES / "obama_1.jpg"), "--json"],
    )
    assert result.exit_code == 1 and json.loads(result.stdout)["match"] is False
    assert CliRunner().invoke(main_app, ["models", "--help"]).exit_code == 0


def test_cli_commands_use_a_replacement_face_plugin(tmp_path: Path) -> None:
    """With the built-in plugin's hooks answered by another plugin first, the
    commands use the other plugin's answers."""
    from healthcode.core.hookspecs import hookimpl
    from healthcode.core.models import FaceMatch
    from healthcode.core.plugins import get_plugin_manager
    from healthcode.plugins.face.cli import faces_app

    class Agreeable:
        @hookimpl(tryfirst=True)
        def healthcode_compare_templates(self, a: bytes, b: bytes) -> FaceMatch:
            return FaceMatch(similarity=0.99, threshold=0.5, is_match=True)

    pm = get_plugin_manager()
    plugin = Agreeable()
    pm.register(plugin, name="agreeable")
    try:
        result = CliRunner().invoke(
            faces_app,
            ["compare", str(FACES / "biden_1.jpg"), str(FACES / "obama_1.jpg"), "--json"],
        )
    finally:
        pm.unregister(plugin)
    assert result.exit_code == 0 and json.loads(result.stdout)["similarity"] == 0.99
