"""Errors of the MRZ reader: a missing or failing engine, and a photo of two documents."""

from __future__ import annotations

from healthcode.core.errors import DocumentError, PluginError


class OcrEngineMissingError(PluginError):
    """The OCR engine (the tesseract binary) is not installed."""

    code = "ocr_engine_missing"
    default_en = (
        "The OCR engine `tesseract` was not found. Install it (Debian/Ubuntu: "
        "`apt-get install tesseract-ocr`) or set HEALTHCODE_TESSERACT to its path."
    )
    default_zh = (
        "未找到 OCR 引擎 tesseract。请安装（Debian/Ubuntu：apt-get install tesseract-ocr）"
        "或设置 HEALTHCODE_TESSERACT。"
    )


class OcrEngineError(PluginError):
    """The OCR engine failed (crashed or timed out)."""

    code = "ocr_engine_failed"
    default_en = "The OCR engine failed on this image."
    default_zh = "OCR 引擎处理该图片失败。"


class MultipleDocumentsError(DocumentError):
    """More than one machine-readable zone is legible in the photo."""

    code = "multiple_documents"
    default_en = "The photo shows more than one document; photograph one document at a time."
    default_zh = "照片中有多份证件，请一次只拍摄一份证件。"
