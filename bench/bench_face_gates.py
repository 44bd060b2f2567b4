"""Face quality gates on real photos and realistically degraded copies: the old
sharpness rule and the new one side by side, in one run (issue 15).

Photos: tests/data/faces obama_1-3 and biden_1-2, tests/data/antispoof/real_1
and skimage's astronaut, each at full size and scaled to 720, 480 and 360 px
high (a smaller photo is used as it is). Each is degraded as cameras degrade it:

* realistic: JPEG q=30; a 240p capture upscaled (with and without JPEG q=30);
  motion blur 3, 5, 7 px; defocus (a disc) of radius 1, 2, 3 px; sensor noise
  (sigma 8); a soft indoor phone frame (defocus 1 px, motion 5 px, noise 6,
  JPEG q=70); motion or defocus with noise and JPEG q=50;
* beyond: what a camera gives only when something is wrong (motion 11-21 px,
  defocus 4-9 px, Gaussian sigma 3-5 px, 120p and 80p upscaled, noise 12 with
  JPEG q=30). These locate where matching breaks.

For every image with one face: the old rule (the Laplacian of the face box
resized to 112 px over its contrast, refused below 40: ``old_sharpness`` below,
a copy of the code it replaces), the new rule (``detect.assess_quality`` and
``detect.quality_warnings``), the SFace similarity with another photo of the
same person (obama_*, biden_*; none for real_1 and astronaut) and the highest
similarity with a photo of the other person. The other gates (size, frame,
light) are the same in both rules.

Reported: pass rates per group (real photos, realistic degradations, beyond),
how each rule treats degraded images that still match well (genuine >= 0.55)
and those that barely or no longer match (< 0.50, < 0.40), a sweep of the
refusal threshold over the new measure, the highest impostor similarity per
sharpness band, and the same face at 1080 and 240 px high.

Usage: .venv/bin/python bench/bench_face_gates.py [--json bench/results/face_gates.json]
(needs `healthcode models fetch`; about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from healthcode.core.images import image_from_array, read_image_file
from healthcode.core.models import Face
from healthcode.plugins.face import detect, embed

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
Pixels = npt.NDArray[np.uint8]

OLD_MIN_SHARPNESS = 40.0
"""The refusal threshold of the old rule (detect.py before issue 15)."""
REFERENCE = {
    "obama_1": "obama_2",
    "obama_2": "obama_1",
    "obama_3": "obama_2",
    "biden_1": "biden_2",
    "biden_2": "biden_1",
}
"""The other photo of the same person each photo is matched against."""
SCALES = ("full", "720", "480", "360")
SWEEP = (5.0, 8.0, 10.0, 12.0, 15.0, 20.0, 30.0, 40.0, 60.0, 80.0)


def sources() -> dict[str, Pixels]:
    import skimage.data

    astronaut: Callable[[], Pixels] = skimage.data.astronaut

    photos = {name: read_image_file(DATA / "faces" / f"{name}.jpg").pixels for name in REFERENCE}
    photos["real_1"] = read_image_file(DATA / "antispoof" / "real_1.jpg").pixels
    photos["astronaut"] = np.ascontiguousarray(astronaut())
    return {name: np.asarray(pixels, dtype=np.uint8) for name, pixels in photos.items()}


# --- degradations -----------------------------------------------------------------


def to_height(pixels: Pixels, height: int) -> Pixels:
    h, w = pixels.shape[:2]
    scale = height / h
    size = (max(round(w * scale), 1), height)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(pixels, size, interpolation=interpolation), dtype=np.uint8)


def captured_at(pixels: Pixels, height: int) -> Pixels:
    """A capture of ``height`` lines shown at the original size (upscaled)."""
    h, w = pixels.shape[:2]
    small = to_height(pixels, height)
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


def jpeg(pixels: Pixels, quality: int) -> Pixels:
    ok, data = cv2.imencode(".jpg", pixels[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise RuntimeError("JPEG round trip failed")
    return np.ascontiguousarray(decoded[:, :, ::-1])


def motion(pixels: Pixels, length: int, angle: float) -> Pixels:
    """A straight camera shake of ``length`` pixels at ``angle`` degrees."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    centre = (length / 2 - 0.5, length / 2 - 0.5)
    rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
    line = np.asarray(cv2.warpAffine(kernel, rotation, (length, length)), dtype=np.float32)
    return np.asarray(cv2.filter2D(pixels, -1, line / line.sum()), dtype=np.uint8)


def defocus(pixels: Pixels, radius: float) -> Pixels:
    """Out of focus: a uniform disc of ``radius`` pixels."""
    size = 2 * int(np.ceil(radius)) + 1
    y, x = np.mgrid[:size, :size] - size // 2
    kernel = ((x * x + y * y) <= radius * radius + 0.5).astype(np.float32)
    return np.asarray(cv2.filter2D(pixels, -1, kernel / kernel.sum()), dtype=np.uint8)


def noise(pixels: Pixels, sigma: float, seed: int = 15) -> Pixels:
    """Sensor noise, per channel (a fixed seed: the run is repeatable)."""
    rng = np.random.default_rng(seed)
    noisy = pixels.astype(np.float64) + rng.normal(0.0, sigma, pixels.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def gaussian(pixels: Pixels, sigma: float) -> Pixels:
    return np.asarray(cv2.GaussianBlur(pixels, (0, 0), sigma), dtype=np.uint8)


Degradation = tuple[str, Callable[[Pixels], Pixels]]

DEGRADATIONS: dict[str, Degradation] = {
    "clean": ("real", lambda p: p),
    "jpeg30": ("realistic", lambda p: jpeg(p, 30)),
    "240p_up": ("realistic", lambda p: captured_at(p, 240)),
    "240p_up_jpeg30": ("realistic", lambda p: jpeg(captured_at(p, 240), 30)),
    "motion3": ("realistic", lambda p: motion(p, 3, 0)),
    "motion5": ("realistic", lambda p: motion(p, 5, 30)),
    "motion7": ("realistic", lambda p: motion(p, 7, 100)),
    "defocus1": ("realistic", lambda p: defocus(p, 1)),
    "defocus2": ("realistic", lambda p: defocus(p, 2)),
    "defocus3": ("realistic", lambda p: defocus(p, 3)),
    "noise8": ("realistic", lambda p: noise(p, 8)),
    "phone_indoor": ("realistic", lambda p: jpeg(noise(motion(defocus(p, 1), 5, 30), 6), 70)),
    "motion5_noise8_jpeg50": ("realistic", lambda p: jpeg(noise(motion(p, 5, 20), 8), 50)),
    "defocus2_noise8_jpeg50": ("realistic", lambda p: jpeg(noise(defocus(p, 2), 8), 50)),
    "motion11": ("beyond", lambda p: motion(p, 11, 20)),
    "motion15": ("beyond", lambda p: motion(p, 15, 60)),
    "motion21": ("beyond", lambda p: motion(p, 21, 20)),
    "defocus4": ("beyond", lambda p: defocus(p, 4)),
    "defocus5": ("beyond", lambda p: defocus(p, 5)),
    "defocus7": ("beyond", lambda p: defocus(p, 7)),
    "defocus9": ("beyond", lambda p: defocus(p, 9)),
    "gauss3": ("beyond", lambda p: gaussian(p, 3)),
    "gauss5": ("beyond", lambda p: gaussian(p, 5)),
    "120p_up": ("beyond", lambda p: captured_at(p, 120)),
    "80p_up": ("beyond", lambda p: captured_at(p, 80)),
    "motion7_noise12_jpeg30": ("beyond", lambda p: jpeg(noise(motion(p, 7, 60), 12), 30)),
    "defocus3_noise12_jpeg30": ("beyond", lambda p: jpeg(noise(defocus(p, 3), 12), 30)),
}


# --- the two rules ----------------------------------------------------------------


def old_sharpness(rgb: Pixels, box: tuple[float, ...]) -> float:
    """The measure the old rule used (detect.py before issue 15, unchanged)."""
    height, width = rgb.shape[:2]
    x, y, w, h = box
    left, top = max(int(x), 0), max(int(y), 0)
    right, bottom = min(int(x + w), width), min(int(y + h), height)
    if right - left < 4 or bottom - top < 4:
        return 0.0
    grey = cv2.cvtColor(rgb[top:bottom, left:right], cv2.COLOR_RGB2GRAY)
    scale = 112.0 / grey.shape[1]
    resized = cv2.resize(
        grey,
        (112, max(round(grey.shape[0] * scale), 4)),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    laplacian = float(cv2.Laplacian(resized, cv2.CV_64F).var())
    contrast = float(resized.astype(np.float64).var())
    return 1000.0 * laplacian / max(contrast, 1.0)


def judged(pixels: Pixels) -> tuple[Face, dict[str, Any]] | None:
    """The one face and both rules' verdicts; None when not exactly one face."""
    faces = detect.detect_faces(image_from_array(pixels))
    if len(faces) != 1:
        return None
    face = faces[0]
    new_codes = [p.code for p in detect.assess_quality(faces)]
    old = old_sharpness(pixels, face.box)
    old_codes = [c for c in new_codes if c != "image_too_blurred"]
    if old < OLD_MIN_SHARPNESS:
        old_codes.append("image_too_blurred")
    verdict = {
        "face_width": round(face.measurements["face_width"]),
        "old_sharpness": round(old, 1),
        "new_sharpness": round(face.measurements["sharpness"], 1),
        "old_codes": old_codes,
        "new_codes": new_codes,
        "new_warnings": [p.code for p in detect.quality_warnings(faces)],
    }
    return face, verdict


def embedding_of(pixels: Pixels, face: Face) -> npt.NDArray[np.float32]:
    return embed.face_embedding(image_from_array(pixels), face)


def measure(photos: dict[str, Pixels]) -> list[dict[str, Any]]:
    references = {}
    for name in sorted(set(REFERENCE.values()) | set(REFERENCE)):
        face = detect.detect_faces(image_from_array(photos[name]))[0]
        references[name] = embedding_of(photos[name], face)
    rows = []
    for name, photo in photos.items():
        others = [r for r in references if r.split("_")[0] != name.split("_")[0]]
        for scale in SCALES:
            base = photo
            if scale != "full" and photo.shape[0] > int(scale):
                base = to_height(photo, int(scale))
            for label, (group, degrade) in DEGRADATIONS.items():
                pixels = np.ascontiguousarray(degrade(base))
                found = judged(pixels)
                row: dict[str, Any] = {
                    "photo": name,
                    "scale": scale,
                    "degradation": label,
                    "group": group,
                    "one_face": found is not None,
                }
                if found is not None:
                    face, verdict = found
                    row |= verdict
                    embedding = embedding_of(pixels, face)
                    row["genuine"] = (
                        round(float(embedding @ references[REFERENCE[name]]), 3)
                        if name in REFERENCE
                        else None
                    )
                    row["impostor_max"] = round(
                        max(float(embedding @ references[o]) for o in others), 3
                    )
                rows.append(row)
    return rows


# --- summaries --------------------------------------------------------------------


def share(hits: int, total: int) -> str:
    return f"{hits}/{total} ({100.0 * hits / total:.0f}%)" if total else "0/0"


def pass_rates(rows: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    table = {}
    for group in ("real", "realistic", "beyond"):
        judged_rows = [r for r in rows if r["group"] == group and r["one_face"]]
        sized = [r for r in judged_rows if "face_too_small" not in r["new_codes"]]
        table[group] = {
            "images": str(len(judged_rows)),
            "old_pass": share(sum(not r["old_codes"] for r in judged_rows), len(judged_rows)),
            "new_pass": share(sum(not r["new_codes"] for r in judged_rows), len(judged_rows)),
            "new_pass_with_image_soft": share(
                sum(not r["new_codes"] and bool(r["new_warnings"]) for r in judged_rows),
                len(judged_rows),
            ),
            "faces_at_least_64px": str(len(sized)),
            "old_blur_refused": share(
                sum("image_too_blurred" in r["old_codes"] for r in sized), len(sized)
            ),
            "new_blur_refused": share(
                sum("image_too_blurred" in r["new_codes"] for r in sized), len(sized)
            ),
        }
    return table


def per_degradation(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    table = {}
    for label, (group, _) in DEGRADATIONS.items():
        found = [r for r in rows if r["degradation"] == label and r["one_face"]]
        sized = [r for r in found if "face_too_small" not in r["new_codes"]]
        genuine = [r["genuine"] for r in sized if r["genuine"] is not None]
        table[label] = {
            "group": group,
            "images": len(sized),
            "old_sharpness": [
                min(r["old_sharpness"] for r in sized),
                max(r["old_sharpness"] for r in sized),
            ],
            "new_sharpness": [
                min(r["new_sharpness"] for r in sized),
                max(r["new_sharpness"] for r in sized),
            ],
            "genuine": [min(genuine), max(genuine)] if genuine else None,
            "old_refused": sum("image_too_blurred" in r["old_codes"] for r in sized),
            "new_refused": sum("image_too_blurred" in r["new_codes"] for r in sized),
            "new_image_soft": sum("image_soft" in r["new_warnings"] for r in sized),
        }
    return table


def reliability(rows: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Degraded images with a genuine pair and a face over the size gate: which
    each rule lets through and which it refuses for blur, by how well they match."""
    usable = [
        r
        for r in rows
        if r["one_face"] and r["genuine"] is not None and "face_too_small" not in r["new_codes"]
    ]
    bands: dict[str, Callable[[float], bool]] = {
        "genuine < 0.40 (a false reject)": lambda g: g < 0.40,
        "genuine < 0.50 (little margin)": lambda g: g < 0.50,
        "genuine >= 0.55 (matches well)": lambda g: g >= 0.55,
    }
    table = {}
    for band, inside in bands.items():
        chosen = [r for r in usable if inside(r["genuine"])]
        table[band] = {
            "images": str(len(chosen)),
            "old_refused_for_blur": share(
                sum("image_too_blurred" in r["old_codes"] for r in chosen), len(chosen)
            ),
            "new_refused_for_blur": share(
                sum("image_too_blurred" in r["new_codes"] for r in chosen), len(chosen)
            ),
        }
    return table


def roc_auc(scores_good: Iterable[float], scores_bad: Iterable[float]) -> float:
    good, bad = list(scores_good), list(scores_bad)
    wins = sum((g > b) + 0.5 * (g == b) for g in good for b in bad)
    return round(wins / (len(good) * len(bad)), 3) if good and bad else float("nan")


def sweep(rows: list[dict[str, Any]]) -> dict[str, Any]:
    usable = [r for r in rows if r["one_face"] and "face_too_small" not in r["new_codes"]]
    paired = [r for r in usable if r["genuine"] is not None]
    realistic = [r for r in usable if r["group"] in ("real", "realistic")]
    table = {}
    for threshold in SWEEP:
        refused = [r for r in paired if r["new_sharpness"] < threshold]
        kept = [r for r in paired if r["new_sharpness"] >= threshold]
        table[str(threshold)] = {
            "kept_genuine_below_0.40": sum(r["genuine"] < 0.40 for r in kept),
            "kept_genuine_below_0.50": sum(r["genuine"] < 0.50 for r in kept),
            "refused_genuine_0.55_up": sum(r["genuine"] >= 0.55 for r in refused),
            "refused_realistic": sum(r["new_sharpness"] < threshold for r in realistic),
        }
    good = [r for r in paired if r["genuine"] >= 0.55]
    bad = [r for r in paired if r["genuine"] < 0.45]
    return {
        "images_with_a_genuine_pair": len(paired),
        "of_which_below_0.40": sum(r["genuine"] < 0.40 for r in paired),
        "of_which_below_0.50": sum(r["genuine"] < 0.50 for r in paired),
        "of_which_0.55_up": len(good),
        "realistic_images": len(realistic),
        "thresholds": table,
        "roc_auc_matches_well_vs_below_0.45": {
            "new_sharpness": roc_auc(
                (r["new_sharpness"] for r in good), (r["new_sharpness"] for r in bad)
            ),
            "old_sharpness": roc_auc(
                (r["old_sharpness"] for r in good), (r["old_sharpness"] for r in bad)
            ),
        },
    }


def impostors(rows: list[dict[str, Any]]) -> dict[str, Any]:
    usable = [r for r in rows if r["one_face"] and "face_too_small" not in r["new_codes"]]
    bands = (
        (0.0, detect.MIN_SHARPNESS),
        (detect.MIN_SHARPNESS, detect.STUDIO_SHARPNESS),
        (detect.STUDIO_SHARPNESS, 1e9),
    )
    table = {}
    for low, high in bands:
        inside = [r["impostor_max"] for r in usable if low <= r["new_sharpness"] < high]
        table[f"{low:g}..{high:g}"] = {
            "images": len(inside),
            "impostor_max": max(inside) if inside else None,
            "impostor_median": round(statistics.median(inside), 3) if inside else None,
        }
    return table


def resolutions(photos: dict[str, Pixels]) -> dict[str, Any]:
    """The same head-and-shoulders crop at 1080 and at 240 px high: both
    measures, and the match of the two with each other and with the reference."""
    table = {}
    references = {}
    for name in set(REFERENCE.values()):
        face = detect.detect_faces(image_from_array(photos[name]))[0]
        references[name] = embedding_of(photos[name], face)
    for name, photo in photos.items():
        face = detect.detect_faces(image_from_array(photo))[0]
        x, y, w, h = face.box
        side = 1.6 * max(w, h)
        cx, cy = x + w / 2, y + h / 2
        top, left = max(int(cy - side / 2), 0), max(int(cx - side / 2), 0)
        crop = photo[top : int(cy + side / 2), left : int(cx + side / 2)]
        entry: dict[str, Any] = {"crop": [int(crop.shape[1]), int(crop.shape[0])]}
        embeddings = {}
        for height in (1080, 240):
            pixels = to_height(np.ascontiguousarray(crop), height)
            found = judged(pixels)
            if found is None:
                entry[str(height)] = None
                continue
            found_face, verdict = found
            embeddings[height] = embedding_of(pixels, found_face)
            entry[str(height)] = verdict | {
                "genuine": round(float(embeddings[height] @ references[REFERENCE[name]]), 3)
                if name in REFERENCE
                else None
            }
        if len(embeddings) == 2:
            entry["same_photo_1080_vs_240"] = round(float(embeddings[1080] @ embeddings[240]), 3)
        table[name] = entry
    return table


# --- output -----------------------------------------------------------------------


def md_table(header: list[str], body: list[list[Any]]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in body]


def span(values: list[float], digits: int = 0) -> str:
    return f"{values[0]:.{digits}f}-{values[1]:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    header = ["group", "images", "old rule passes", "new rule passes", "of which image_soft"]
    header.append("blur refusals old / new (faces >= 64 px)")
    body = [
        [
            group,
            r["images"],
            r["old_pass"],
            r["new_pass"],
            r["new_pass_with_image_soft"],
            f"{r['old_blur_refused']} / {r['new_blur_refused']}",
        ]
        for group, r in report["pass_rates"].items()
    ]
    lines = [*md_table(header, body), ""]
    header = ["genuine similarity", "images", "old refuses for blur", "new refuses for blur"]
    body = [
        [band, r["images"], r["old_refused_for_blur"], r["new_refused_for_blur"]]
        for band, r in report["reliability"].items()
    ]
    lines += [*md_table(header, body), ""]
    header = ["degradation", "group", "n", "old sharpness", "new sharpness", "genuine"]
    header += ["old refused", "new refused", "new image_soft"]
    body = [
        [
            label,
            r["group"],
            r["images"],
            span(r["old_sharpness"]),
            span(r["new_sharpness"]),
            "-" if r["genuine"] is None else span(r["genuine"], 2),
            r["old_refused"],
            r["new_refused"],
            r["new_image_soft"],
        ]
        for label, r in report["per_degradation"].items()
    ]
    lines += [*md_table(header, body), ""]
    header = ["refuse below", "kept, genuine < 0.40", "kept, genuine < 0.50"]
    header += ["refused, genuine >= 0.55", "realistic refused"]
    body = [
        [
            threshold,
            r["kept_genuine_below_0.40"],
            r["kept_genuine_below_0.50"],
            r["refused_genuine_0.55_up"],
            r["refused_realistic"],
        ]
        for threshold, r in report["sweep"]["thresholds"].items()
    ]
    lines += [*md_table(header, body), ""]
    header = ["photo", "1080 px: old / new sharpness", "240 px: old / new sharpness"]
    header += ["1080 vs 240 similarity", "genuine 1080 / 240"]
    body = []
    for name, r in report["resolutions"].items():
        high, low = r.get("1080"), r.get("240")
        if not high or not low:
            body.append([name, high, low, "-", "-"])
            continue
        genuine = "-" if high["genuine"] is None else f"{high['genuine']} / {low['genuine']}"
        body.append(
            [
                name,
                f"{high['old_sharpness']:.0f} / {high['new_sharpness']:.0f}",
                f"{low['old_sharpness']:.0f} / {low['new_sharpness']:.0f}",
                r.get("same_photo_1080_vs_240", "-"),
                genuine,
            ]
        )
    return "\n".join(lines + md_table(header, body))


ROW_COLUMNS = (
    "photo",
    "scale",
    "degradation",
    "group",
    "face_width",
    "old_sharpness",
    "new_sharpness",
    "old_codes",
    "new_codes",
    "new_warnings",
    "genuine",
    "impostor_max",
)


def as_json(report: dict[str, Any]) -> str:
    """The report, indented, with one line per image (columns in ``row_columns``)."""
    summary = {k: v for k, v in report.items() if k != "rows"}
    summary["row_columns"] = list(ROW_COLUMNS)
    rows = ",\n".join(
        "  " + json.dumps([row.get(c) for c in ROW_COLUMNS], separators=(",", ":"))
        for row in report["rows"]
    )
    head = json.dumps(summary, indent=1)
    return head[: -len("\n}")] + ',\n "rows": [\n' + rows + "\n ]\n}\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    photos = sources()
    rows = measure(photos)
    report = {
        "rules": {
            "old": {
                "measure": "Laplacian of the face box at 112 px / contrast",
                "refuse_below": OLD_MIN_SHARPNESS,
            },
            "new": {
                "measure": "weakest-direction detail of the eye-aligned inner face / contrast",
                "eye_distance_px": detect.SHARPNESS_EYE_DISTANCE,
                "refuse_below": detect.MIN_SHARPNESS,
                "warn_below": detect.STUDIO_SHARPNESS,
            },
        },
        "scales": list(SCALES),
        "pass_rates": pass_rates(rows),
        "reliability": reliability(rows),
        "per_degradation": per_degradation(rows),
        "sweep": sweep(rows),
        "impostor_by_new_sharpness": impostors(rows),
        "resolutions": resolutions(photos),
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
        "seconds": 0.0,
        "rows": rows,
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(markdown(report))
    print(
        json.dumps(
            {k: v for k, v in report.items() if k not in ("rows", "per_degradation")}, indent=2
        )
    )
    if args.json:
        args.json.write_text(as_json(report))


if __name__ == "__main__":
    main()
