# ruff: noqa: B023 - each timed lambda runs inside its own loop iteration
"""Face benchmark: similarity distributions, false accepts/rejects, per-stage latency.

Ours: mediapipe FaceLandmarker -> five-point alignment -> SFace (OpenCV's DNN
module; the onnxruntime path it replaced is timed beside it).
Peer, in the same run on the same images: OpenCV FaceDetectorYN (YuNet) ->
FaceRecognizerSF.alignCrop -> FaceRecognizerSF.feature (the same SFace weights).

Every stage is timed in wall-clock and in process CPU time (all threads): the
machine is shared, and CPU time is the steadier of the two under other load.
``ratios`` divides ours by the peer's, medians of the same run; the load
average is recorded next to them.

Images: tests/data/faces, skimage's astronaut, and the images inside the
insightface 2.1 wheel (``pip download --no-deps`` into a temporary folder;
skipped with --no-insightface). t1.jpg is a group photo whose faces are too
small for mediapipe's short-range detector: each face is cut out (YuNet box,
doubled) and the crop goes through both pipelines.

Usage: .venv/bin/python bench/bench_faces.py [--repeat 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image as PILImage

from healthcode.core.images import decode_image, image_from_array, read_image_file
from healthcode.core.models import Image
from healthcode.plugins.face import detect, embed
from healthcode.plugins.face.memo import memo
from healthcode.plugins.face.modelstore import LANDMARKER, SFACE, YUNET, require_model

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def insightface_images(folder: Path) -> dict[str, Path]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "insightface==2.1",
            "--dest",
            str(folder),
        ],
        check=True,
    )
    wheel = next(folder.glob("insightface-2.1-*.whl"))
    found = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in ("Tom_Hanks_54745.png", "t1.jpg"):
            member = f"insightface/data/images/{name}"
            target = folder / name
            target.write_bytes(archive.read(member))
            found[name] = target
    return found


class Peer:
    """OpenCV's YuNet + SFace pipeline."""

    def __init__(self) -> None:
        self.detector = cv2.FaceDetectorYN.create(str(require_model(YUNET)), "", (320, 320), 0.7)
        self.recognizer = cv2.FaceRecognizerSF.create(str(require_model(SFACE)), "")

    def detect(self, bgr: np.ndarray) -> np.ndarray:
        self.detector.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = self.detector.detect(bgr)
        return np.zeros((0, 15)) if faces is None else faces

    def embed(self, bgr: np.ndarray, face: np.ndarray) -> np.ndarray:
        vector = self.recognizer.feature(self.recognizer.alignCrop(bgr, face)).reshape(-1)
        return vector / np.linalg.norm(vector)


def collect(use_insightface: bool, tmp: Path, peer: Peer) -> dict[str, Image]:
    """name -> image with exactly one face; the person is the name's prefix."""
    from skimage import data

    images: dict[str, Image] = {}
    for path in sorted((DATA / "faces").glob("*.jpg")):
        if path.stem not in ("two_people", "obama_partial_face"):
            images[path.stem] = read_image_file(path)
    images["astronaut"] = image_from_array(data.astronaut())
    if use_insightface:
        extra = insightface_images(tmp)
        images["hanks"] = read_image_file(extra["Tom_Hanks_54745.png"])
        group = read_image_file(extra["t1.jpg"])
        bgr = cv2.cvtColor(group.pixels, cv2.COLOR_RGB2BGR)
        for index, face in enumerate(peer.detect(bgr)):
            x, y, w, h = face[:4]
            cx, cy, side = x + w / 2, y + h / 2, max(w, h) * 2.0
            left, top = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
            right = int(min(cx + side / 2, group.width))
            bottom = int(min(cy + side / 2, group.height))
            crop = group.pixels[top:bottom, left:right]
            images[f"t1face{index}"] = image_from_array(
                cv2.resize(crop, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
            )
    return images


def person(name: str) -> str:
    return name.split("_")[0]


def similarities(embeddings: dict[str, np.ndarray]) -> tuple[list[tuple], list[tuple]]:
    genuine, impostor = [], []
    for a, b in itertools.combinations(sorted(embeddings), 2):
        value = float(np.dot(embeddings[a], embeddings[b]))
        (genuine if person(a) == person(b) else impostor).append((value, a, b))
    return genuine, impostor


CPU_SAMPLES: dict[int, list[float]] = {}
"""Process CPU time of each ``timed`` call's samples, by id of the wall list."""


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    result = fn()  # warm
    samples, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        cpu.append((time.process_time() - start_cpu) * 1000)
        samples.append((time.perf_counter() - start) * 1000)
    CPU_SAMPLES[id(samples)] = cpu
    return samples, result


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2)}


def with_cpu(wall: list[float], cpu: list[float]) -> dict[str, float]:
    return {**summary(wall), "cpu_median_ms": round(statistics.median(cpu), 2)}


def ratios(stages: dict[str, dict[str, float]]) -> dict[str, float]:
    """Ours over the peer (below 1: ours is faster), wall and CPU medians."""
    pairs = {
        "pipeline (ours.total / peer.total)": ("ours.total", "peer.total"),
        "embedding (ours.embed / peer.embed)": ("ours.embed", "peer.embed"),
        "embedding (ours / onnxruntime path)": (
            "ours.embed",
            "ours.embed via onnxruntime (before)",
        ),
        "detect+landmarks (ours / YuNet)": (
            "ours.detect+landmarks (FaceLandmarker)",
            "peer.detect+5 landmarks (YuNet)",
        ),
    }
    out = {}
    for label, (a, b) in pairs.items():
        out[label] = round(stages[a]["median_ms"] / stages[b]["median_ms"], 3)
        out[label + " [cpu]"] = round(stages[a]["cpu_median_ms"] / stages[b]["cpu_median_ms"], 3)
    return out


def to_640_jpeg(image: Image) -> bytes:
    pil = PILImage.fromarray(image.pixels)
    pil.thumbnail((640, 640), PILImage.Resampling.LANCZOS)
    if max(pil.size) < 640:
        scale = 640 / max(pil.size)
        pil = pil.resize((round(pil.width * scale), round(pil.height * scale)))
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def blazeface_detector() -> Any:
    from mediapipe.tasks.python import BaseOptions, vision

    with zipfile.ZipFile(require_model(LANDMARKER)) as bundle:
        tflite = bundle.read("face_detector.tflite")
    options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_buffer=tflite))
    return vision.FaceDetector.create_from_options(options)


def latency(images: dict[str, Image], peer: Peer, repeat: int) -> dict[str, Any]:
    """Per-stage times; the plugin's memo is off so that each repeat does the work."""
    size = memo.size
    memo.size = 0
    try:
        return _latency(images, peer, repeat)
    finally:
        memo.size = size


def _latency(images: dict[str, Image], peer: Peer, repeat: int) -> dict[str, Any]:
    import mediapipe as mp

    stages: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    blaze = blazeface_detector()
    for name in ("obama_1", "biden_2", "astronaut", "real_1"):
        if name == "real_1":
            source = read_image_file(DATA / "antispoof" / "real_1.jpg")
        else:
            source = images[name]
        jpeg = to_640_jpeg(source)

        def add(key: str, samples: list[float]) -> None:
            stages.setdefault(key, []).extend(samples)
            cpu.setdefault(key, []).extend(CPU_SAMPLES.pop(id(samples)))

        samples, image = timed(lambda: decode_image(jpeg), repeat)
        add("ours.decode", samples)
        mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=image.pixels)
        samples, _ = timed(lambda: blaze.detect(mp_image), repeat)
        add("ours.detect_only (BlazeFace, for reference)", samples)
        samples, faces = timed(lambda: detect.detect_faces(image), repeat)
        add("ours.detect+landmarks (FaceLandmarker)", samples)
        face = faces[0]
        samples, aligned = timed(lambda: embed.align(image, face), repeat)
        add("ours.align", samples)
        samples, _ = timed(lambda: embed.embed(aligned), repeat)
        add("ours.embed", samples)
        samples, _ = timed(lambda: embed.embed(aligned, "onnxruntime"), repeat)
        add("ours.embed via onnxruntime (before)", samples)

        def ours_total() -> Any:
            picture = decode_image(jpeg)
            found = detect.detect_faces(picture)
            return embed.embed(embed.align(picture, found[0]))

        samples, _ = timed(ours_total, repeat)
        add("ours.total", samples)

        array = np.frombuffer(jpeg, np.uint8)
        samples, bgr = timed(lambda: cv2.imdecode(array, cv2.IMREAD_COLOR), repeat)
        add("peer.decode", samples)
        samples, found = timed(lambda: peer.detect(bgr), repeat)
        add("peer.detect+5 landmarks (YuNet)", samples)
        samples, crop = timed(lambda: peer.recognizer.alignCrop(bgr, found[0]), repeat)
        add("peer.align", samples)
        samples, _ = timed(lambda: peer.recognizer.feature(crop), repeat)
        add("peer.embed", samples)

        def peer_total() -> Any:
            picture = cv2.imdecode(array, cv2.IMREAD_COLOR)
            boxes = peer.detect(picture)
            return peer.recognizer.feature(peer.recognizer.alignCrop(picture, boxes[0]))

        samples, _ = timed(peer_total, repeat)
        add("peer.total", samples)
    blaze.close()
    return {key: with_cpu(values, cpu[key]) for key, values in stages.items()}


def agreement(images: dict[str, Image]) -> float:
    """Lowest cosine between the OpenCV and onnxruntime embeddings of the same crops."""
    values = []
    for image in images.values():
        for face in detect.detect_faces(image):
            aligned = embed.align(image, face)
            values.append(float(np.dot(embed.embed(aligned), embed.embed(aligned, "onnxruntime"))))
    return round(min(values), 6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--no-insightface", action="store_true")
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).with_name("results") / "faces.json"
    )
    args = parser.parse_args()

    peer = Peer()
    with tempfile.TemporaryDirectory() as tmp:
        images = collect(not args.no_insightface, Path(tmp), peer)
    ours, theirs = {}, {}
    gates: dict[str, list[str]] = {}
    for name, image in images.items():
        faces = detect.detect_faces(image)
        problems = [p.code for p in detect.assess_quality(faces)]
        if problems:
            gates[name] = problems
        if not faces:
            continue
        ours[name] = embed.face_embedding(image, faces[0])
        bgr = cv2.cvtColor(image.pixels, cv2.COLOR_RGB2BGR)
        boxes = peer.detect(bgr)
        if len(boxes):
            theirs[name] = peer.embed(bgr, boxes[0])
    report: dict[str, Any] = {
        "images": sorted(images),
        "threshold": embed.MATCH_THRESHOLD,
        "peer_threshold": 0.363,
        "quality_gate_findings": gates,
        "not_found": {
            "ours": sorted(set(images) - set(ours)),
            "peer": sorted(set(images) - set(theirs)),
        },
    }
    for label, embeddings, threshold in (
        ("ours", ours, embed.MATCH_THRESHOLD),
        ("peer", theirs, 0.363),
    ):
        genuine, impostor = similarities(embeddings)
        report[label] = {
            "genuine": [(round(v, 3), a, b) for v, a, b in sorted(genuine)],
            "impostor_top5": [(round(v, 3), a, b) for v, a, b in sorted(impostor)[-5:]],
            "impostor_pairs": len(impostor),
            "impostor_min": round(min(v for v, _, _ in impostor), 3),
            "impostor_max": round(max(v for v, _, _ in impostor), 3),
            "genuine_min": round(min(v for v, _, _ in genuine), 3),
            "false_rejects": sum(v < threshold for v, _, _ in genuine),
            "false_accepts": sum(v >= threshold for v, _, _ in impostor),
        }
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    report["latency_640px"] = latency(images, peer, args.repeat)
    report["ratios"] = ratios(report["latency_640px"])
    report["load_average"] = {
        "before": load_before,
        "after": Path("/proc/loadavg").read_text().split()[:3],
    }
    report["embedding_agreement_min_cosine"] = agreement(images)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
