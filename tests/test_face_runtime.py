"""The face plugin's runtime: embeddings through OpenCV's DNN module equal those
of onnxruntime, each frame's landmarks and embeddings are computed once, and the
native libraries' start-up lines stay off stderr (issue 15).

Needs the pinned models (`healthcode models fetch`).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from support.data import FACES
from support.faces import require_face_models

from healthcode.core.images import image_from_array, read_image_file
from healthcode.core.models import Image

NOISE_MARKERS = (
    "Logging before InitGoogle",
    "XNNPACK delegate",
    "face_landmarker_graph.cc",
    "inference_feedback_manager.cc",
    "W0000",
    "I0000",
)


@pytest.fixture(scope="module", autouse=True)
def _models() -> None:
    require_face_models()


def fresh(name: str) -> Image:
    """A photo decoded anew: an image no earlier test has looked at."""
    return read_image_file(FACES / name)


# --- embeddings: OpenCV's DNN and onnxruntime agree --------------------------------------


def test_opencv_and_onnxruntime_give_the_same_embeddings_on_every_real_face() -> None:
    from healthcode.plugins.face.detect import detect_faces
    from healthcode.plugins.face.embed import align, embed

    compared = []
    for path in sorted(FACES.glob("*.jpg")):
        image = read_image_file(path)
        for face in detect_faces(image):
            aligned = align(image, face)
            ours = embed(aligned, "opencv")
            reference = embed(aligned, "onnxruntime")
            compared.append((path.stem, float(np.dot(ours, reference))))
    assert len(compared) >= 7  # every photo, both faces of two_people
    assert all(cosine > 0.999 for _, cosine in compared), compared
    # and they are not trivially equal vectors of some constant
    first, second = (
        embed(align(fresh(n), detect_faces(fresh(n))[0])) for n in ("obama_1.jpg", "biden_1.jpg")
    )
    assert float(np.dot(first, second)) < 0.4


def test_the_runtime_setting() -> None:
    from healthcode.plugins.face.embed import configured_runtime

    assert configured_runtime({}) == "opencv"
    assert configured_runtime({"HEALTHCODE_FACE_RUNTIME": "onnxruntime"}) == "onnxruntime"
    assert configured_runtime({"HEALTHCODE_FACE_RUNTIME": " OpenCV "}) == "opencv"


# --- the memo: landmarks once per frame, an embedding once per face ----------------------


def test_a_frame_is_detected_and_embedded_once() -> None:
    from healthcode.plugins.face.detect import detect_faces
    from healthcode.plugins.face.embed import face_embedding
    from healthcode.plugins.face.memo import memo

    image = fresh("obama_1.jpg")
    misses, hits = memo.misses, memo.hits
    first = detect_faces(image)
    again = detect_faces(image)
    assert (memo.misses - misses, memo.hits - hits) == (1, 1)
    assert [a is b for a, b in zip(first, again, strict=True)] == [True]
    vector = face_embedding(image, first[0])
    assert face_embedding(image, again[0]) is vector
    assert not vector.flags.writeable

    # The same pixels in another array are another image: looked at anew, same result.
    copy = image_from_array(np.array(image.pixels))
    other = detect_faces(copy)
    assert other[0] is not first[0]
    assert np.allclose(other[0].landmarks, first[0].landmarks)
    assert float(np.dot(face_embedding(copy, other[0]), vector)) > 0.9999


def test_an_edited_or_freed_image_is_not_answered_from_the_memo() -> None:
    from healthcode.plugins.face.detect import detect_faces
    from healthcode.plugins.face.memo import memo

    pixels = np.array(fresh("obama_1.jpg").pixels)
    image = Image(pixels=pixels, width=pixels.shape[1], height=pixels.shape[0])
    assert len(detect_faces(image)) == 1
    pixels[:] = 0  # edited in place (Image is meant to be immutable, but pixels can be written)
    misses = memo.misses
    assert detect_faces(image) == []
    assert memo.misses == misses + 1

    gc.collect()  # images of earlier tests leave the memo now, not below
    size = len(memo)
    del image, pixels
    gc.collect()
    assert len(memo) == size - 1


def test_the_memo_is_bounded() -> None:
    from healthcode.plugins.face.memo import FaceMemo

    small = FaceMemo(size=2)
    images = [
        Image(pixels=np.full((8, 8, 3), value, np.uint8), width=8, height=8) for value in (1, 2, 3)
    ]
    for image in images:
        small.remember_faces(image, [])
    assert len(small) == 2
    assert small.faces(images[0]) is None
    assert small.faces(images[2]) == []


# --- quiet native logs ---------------------------------------------------------------------


def test_noise_lines_are_dropped_and_everything_else_passes() -> None:
    from healthcode.plugins.face.quiet import filter_lines

    text = (
        b"WARNING: Logging before InitGoogle() is written to STDERR\n"
        b"W0000 00:00:1796102571.802232   10600 face_landmarker_graph.cc:181] Sets xnnpack.\n"
        b"I0000 00:00:1796102571.802232   10600 gl_context.cc:357] GL version\n"
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
        b"[ WARN:0@10.118] global net_impl_backend.cpp:388 setPreferableTarget\n"
        b"E0000 00:00:1796102571.9   10600 graph.cc:1] a real error\n"
        b"ERROR: something broke\n"
        b"Traceback (most recent call last):\n"
    )
    assert filter_lines(text) == (
        b"E0000 00:00:1796102571.9   10600 graph.cc:1] a real error\n"
        b"ERROR: something broke\n"
        b"Traceback (most recent call last):\n"
    )


def test_the_filter_passes_other_output_written_meanwhile(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from healthcode.plugins.face.quiet import quiet_native_logs

    with quiet_native_logs():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"kept: a line of our own\n")
        writer = threading.Thread(target=os.write, args=(2, b"kept: from another thread\n"))
        writer.start()
        writer.join()
    os.write(2, b"after\n")
    # (Written to fd 2 only: capfd collects Python's sys.stderr through another
    # file object, whose writes may interleave with fd 2's mid-line.)
    lines = capfd.readouterr().err.splitlines()
    assert lines == ["kept: a line of our own", "kept: from another thread", "after"]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "healthcode.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_faces_compare_prints_no_native_log_lines() -> None:
    """Every faces command loads the landmarker through the same filtered load."""
    one, other = str(FACES / "obama_1.jpg"), str(FACES / "obama_3.jpg")
    quiet = _cli("faces", "compare", one, other, "--json")
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["match"] is True
    assert not [m for m in NOISE_MARKERS if m in quiet.stderr], quiet.stderr
    assert "Traceback" not in quiet.stderr
    # What is filtered is there to filter: the setting shows the lines again.
    loud = _cli("faces", "compare", one, other, "--json", env={"HEALTHCODE_FACE_NATIVE_LOGS": "1"})
    assert "XNNPACK" in loud.stderr or "W0000" in loud.stderr


def test_the_onnxruntime_runtime_still_serves_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from healthcode.plugins.face.cli import faces_app

    monkeypatch.setenv("HEALTHCODE_FACE_RUNTIME", "onnxruntime")
    result = CliRunner().invoke(
        faces_app, ["compare", str(FACES / "obama_1.jpg"), str(FACES / "obama_3.jpg"), "--json"]
    )
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["similarity"] == pytest.approx(0.77, abs=0.02)
