"""Optional passive presentation-attack detection (PAD) with an operator's ONNX model.

Off by default. An operator who has a model (for example an 80x80 MiniFASNet
exported to ONNX) sets ``HEALTHCODE_PAD_MODEL`` to its path; the hook
``healthcode_presentation_attack_score`` then returns the probability that a
face is an attack (photo, screen, mask). No model is shipped or downloaded.

Pre-processing follows the MiniFASNet family, and is configurable because
exports differ:

* crop: a square centred on the face box, ``HEALTHCODE_PAD_SCALE`` (default 2.7)
  times the larger box side, shifted to stay inside the image, resized to the
  model's input size (read from the model);
* pixels: ``HEALTHCODE_PAD_INPUT`` = ``bgr255`` (default: BGR, 0..255, no
  mean) or ``rgb01`` (RGB, 0..1);
* output: logits or probabilities over classes; ``HEALTHCODE_PAD_LIVE_INDEX``
  (default 1) is the live class. Score = 1 - P(live).
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from attrs import frozen

from healthcode.core.models import Face, Image
from healthcode.plugins.face.errors import PresentationAttackModelError

PAD_MODEL_ENV = "HEALTHCODE_PAD_MODEL"
PAD_SCALE_ENV = "HEALTHCODE_PAD_SCALE"
PAD_INPUT_ENV = "HEALTHCODE_PAD_INPUT"
PAD_LIVE_INDEX_ENV = "HEALTHCODE_PAD_LIVE_INDEX"

PixelFormat = Literal["bgr255", "rgb01"]


@frozen
class PadConfig:
    path: Path
    scale: float = 2.7
    pixel_format: PixelFormat = "bgr255"
    live_index: int = 1


def configured_pad(environ: dict[str, str] | None = None) -> PadConfig | None:
    """The operator's PAD configuration, or ``None`` when none is set (the default)."""
    env = os.environ if environ is None else environ
    path = env.get(PAD_MODEL_ENV, "").strip()
    if not path:
        return None
    try:
        scale = float(env.get(PAD_SCALE_ENV, "2.7"))
        live_index = int(env.get(PAD_LIVE_INDEX_ENV, "1"))
    except ValueError as exc:
        raise PresentationAttackModelError(details={"reason": "bad_setting"}) from exc
    pixel_format = env.get(PAD_INPUT_ENV, "bgr255").strip()
    if pixel_format not in ("bgr255", "rgb01") or not 1.0 <= scale <= 8.0 or live_index < 0:
        raise PresentationAttackModelError(details={"reason": "bad_setting"})
    return PadConfig(Path(path), scale, pixel_format, live_index)  # type: ignore[arg-type]


class PadModel:
    """A loaded PAD model with its pre-processing."""

    def __init__(self, config: PadConfig) -> None:
        import onnxruntime as ort

        self.config = config
        if not config.path.is_file():
            raise PresentationAttackModelError(
                f"The presentation-attack model {config.path} does not exist.",
                f"活体（防攻击）模型 {config.path} 不存在。",
                details={"path": str(config.path)},
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(config.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise PresentationAttackModelError(
                f"The presentation-attack model cannot be loaded: {type(exc).__name__}.",
                "活体（防攻击）模型无法加载。",
                details={"path": str(config.path)},
            ) from exc
        inputs = self._session.get_inputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if len(shape) != 4 or shape[1] != 3 or not all(isinstance(s, int) for s in shape[2:]):
            raise PresentationAttackModelError(
                "The presentation-attack model must take one (N, 3, H, W) input of fixed size.",
                "活体（防攻击）模型须有一个固定尺寸的 (N, 3, H, W) 输入。",
                details={"input_shape": [str(s) for s in shape]},
            )
        self.input_name: str = inputs[0].name
        self.height, self.width = int(shape[2]), int(shape[3])
        self._lock = threading.Lock()

    def crop(self, image: Image, face: Face) -> npt.NDArray[np.uint8]:
        """The square around the face, scaled and kept inside the image, resized."""
        import cv2

        pixels = np.asarray(image.pixels)
        height, width = pixels.shape[:2]
        x, y, w, h = face.box
        side = min(max(w, h) * self.config.scale, float(min(width, height)))
        cx, cy = x + w / 2, y + h / 2
        left = min(max(cx - side / 2, 0.0), width - side)
        top = min(max(cy - side / 2, 0.0), height - side)
        l0, t0 = round(left), round(top)
        s = max(round(side), 1)
        crop = pixels[t0 : t0 + s, l0 : l0 + s]
        return np.asarray(
            cv2.resize(crop, (self.width, self.height), interpolation=cv2.INTER_LINEAR),
            dtype=np.uint8,
        )

    def preprocess(self, crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        if self.config.pixel_format == "bgr255":
            array = crop[:, :, ::-1].astype(np.float32)
        else:
            array = crop.astype(np.float32) / 255.0
        return np.ascontiguousarray(array.transpose(2, 0, 1)[None])

    def run(self, blob: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        with self._lock:
            outputs = self._session.run(None, {self.input_name: blob})
        return np.asarray(outputs[0], dtype=np.float64).reshape(-1)

    def attack_score(self, image: Image, face: Face) -> float:
        values = self.run(self.preprocess(self.crop(image, face)))
        if self.config.live_index >= values.size:
            raise PresentationAttackModelError(
                "The presentation-attack model has fewer classes than the live index.",
                "活体（防攻击）模型的类别数少于配置的真人类别索引。",
                details={"classes": int(values.size), "live_index": self.config.live_index},
            )
        return 1.0 - float(_as_probabilities(values)[self.config.live_index])


def _as_probabilities(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if np.all(values >= 0) and abs(float(values.sum()) - 1.0) < 1e-3:
        return values
    shifted = np.exp(values - values.max())
    return np.asarray(shifted / shifted.sum(), dtype=np.float64)


@functools.cache
def _load(config: PadConfig) -> PadModel:
    return PadModel(config)


def presentation_attack_score(image: Image, face: Face) -> float | None:
    """Attack probability from the configured model; ``None`` when none is configured."""
    config = configured_pad()
    if config is None:
        return None
    return _load(config).attack_score(image, face)
