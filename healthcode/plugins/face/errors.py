"""Errors of the face plugin, each with a stable code and zh/en messages.

They subclass core's hierarchy, so the CLI and the API map them like any other
``HealthcodeError``. Details never hold pixels or embeddings.
"""

from __future__ import annotations

from healthcode.core.errors import HealthcodeError, InputError, PluginError


class ModelMissingError(PluginError):
    """A model file is absent or does not match its pinned checksum."""

    code = "model_missing"
    default_en = "A face model is missing. Run `healthcode models fetch`."
    default_zh = "缺少人脸模型文件。请运行 `healthcode models fetch`。"


class ModelFetchError(PluginError):
    code = "model_fetch_failed"
    default_en = "A model could not be fetched."
    default_zh = "无法获取模型文件。"


class FaceQualityError(InputError):
    """The image cannot be used for a face check; ``details["problems"]`` lists why."""

    code = "face_quality"
    default_en = "The photo cannot be used for a face check."
    default_zh = "该照片无法用于人脸核验。"


class PresentationAttackModelError(PluginError):
    code = "pad_model_invalid"
    default_en = "The configured presentation-attack model cannot be used."
    default_zh = "所配置的活体（防攻击）模型无法使用。"


class ChallengeFormatError(InputError):
    code = "invalid_challenge"
    default_en = "The liveness challenge could not be read."
    default_zh = "无法读取活体检测挑战。"


__all__ = [
    "ChallengeFormatError",
    "FaceQualityError",
    "HealthcodeError",
    "ModelFetchError",
    "ModelMissingError",
    "PresentationAttackModelError",
]
