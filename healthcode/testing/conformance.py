"""The plugin kit's conformance suite: one call proves that a plugin keeps the
rules every built-in plugin keeps.

A plugin's own tests call, for its kind of plugin::

    from healthcode.testing.conformance import check_document_plugin
    from healthcode.core.models import DocumentSubmission

    def test_conformance():
        check_document_plugin(my_card.plugin, samples=[DocumentSubmission(number="XX123456")])

and likewise ``check_status_source(plugin)``, ``check_face_engine(plugin)``
and ``check_ocr_engine(plugin)``. Each registers the plugin alone on a fresh
plugin manager, calls its hooks with chosen and generated input (hypothesis,
a test dependency), and raises ``ConformanceError`` (an ``AssertionError``,
so pytest shows it as a test failure) naming the rule that was broken. It
returns a ``ConformanceReport``: the rules checked, those skipped and why,
and the throughput measured.

The rules, by kind of plugin (``RULES``), are written up in the README's
plugin author's guide.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import pluggy

from healthcode.core import hookspecs
from healthcode.core.errors import HealthcodeError, PluginError

__all__ = [
    "RULES",
    "ConformanceError",
    "ConformanceReport",
    "check_document_plugin",
    "check_face_engine",
    "check_ocr_engine",
    "check_plugin",
    "check_status_source",
    "plugin_manager_for",
]

RULES: Mapping[str, tuple[str, ...]] = {
    "document": (
        "hook_names",
        "document_types",
        "samples_parse",
        "declared_inputs",
        "other_kinds_get_none",
        "hostile_input",
        "bilingual_messages",
        "no_personal_data",
        "masking",
        "normalisation_idempotent",
        "validate",
    ),
    "status-source": ("hook_names", "contribution_shape", "deterministic", "no_personal_data"),
    "face": (
        "hook_names",
        "liveness_actions",
        "blank_image",
        "blank_frames_never_live",
        "foreign_templates",
        "face_photo",
    ),
    "ocr": ("hook_names", "blank_image", "reading_shape", "document_photo"),
}
"""Every rule the suite checks, by kind of plugin: stable names, shown in failures."""


def generate_only_phases() -> list[Any]:
    """Hypothesis phases the suite runs: no shrinking, so that a broken rule
    fails at once; the failure names the rule, hypothesis shows the input."""
    from hypothesis import Phase

    return [Phase.explicit, Phase.reuse, Phase.generate]


_CODE = re.compile(r"[a-z][a-z0-9_]*")
_HAN = re.compile(r"[\u4e00-\u9fff]")


class ConformanceError(PluginError, AssertionError):
    """A plugin broke one of the kit's rules; ``details["rule"]`` names it.

    An ``AssertionError`` too, so that pytest reports it as a failed test."""

    code = "plugin_not_conformant"
    default_en = "The plugin breaks a rule of the plugin kit's conformance suite."
    default_zh = "插件不符合插件规范测试的规则。"

    def __init__(self, rule: str, message_en: str) -> None:
        super().__init__(
            f"[{rule}] {message_en}",
            f"插件不符合规则 {rule}：{message_en}",
            details={"rule": rule},
        )
        self.rule = rule


@attrs.frozen
class ConformanceReport:
    """What one run of the suite checked and measured."""

    plugin: str
    kind: str
    """``document``, ``status-source``, ``face`` or ``ocr``."""
    passed: tuple[str, ...]
    """The rules checked and kept."""
    skipped: Mapping[str, str] = attrs.field(factory=dict)
    """Rules not checked, with why (e.g. no sample of that input was given)."""
    throughput: Mapping[str, float] = attrs.field(factory=dict)
    """Calls per second of the hooks timed (e.g. ``parse_document``)."""
    examples: int = 0
    """How many generated inputs the hooks were called with."""

    def summary(self) -> str:
        rates = ", ".join(f"{name} {rate:,.0f}/s" for name, rate in self.throughput.items())
        skipped = f"; skipped: {', '.join(self.skipped)}" if self.skipped else ""
        return (
            f"{self.plugin} ({self.kind}): {len(self.passed)} rules kept, "
            f"{self.examples} generated inputs{skipped}"
            + (f"; throughput: {rates}" if rates else "")
        )


def plugin_name(plugin: object) -> str:
    return str(getattr(plugin, "__name__", None) or type(plugin).__name__)


def plugin_manager_for(plugin: object, name: str | None = None) -> pluggy.PluginManager:
    """A fresh manager holding only ``plugin``: the rule ``hook_names`` (every
    hook it implements is a ``healthcode_`` hook with the spec's arguments)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(plugin, name=name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConformanceError(
            "hook_names", f"a hook is misspelt or takes arguments its spec lacks: {exc}"
        ) from exc
    return pm


def implements(pm: pluggy.PluginManager, hook: str) -> bool:
    caller = getattr(pm.hook, hook, None)
    return caller is not None and bool(caller.get_hookimpls())


def check_bilingual(rule: str, what: str, code: str, message_en: str, message_zh: str) -> None:
    """Rule ``bilingual_messages``: a stable snake_case code, an English and a Chinese text."""
    if not _CODE.fullmatch(code or ""):
        raise ConformanceError(rule, f"{what} has no stable snake_case code ({code!r})")
    if not message_en or not message_en.strip():
        raise ConformanceError(rule, f"{what} {code!r} has no English message")
    if not _HAN.search(message_zh or ""):
        raise ConformanceError(rule, f"{what} {code!r} has no Chinese message")


def check_error(rule: str, error: HealthcodeError) -> None:
    check_bilingual(rule, type(error).__name__, error.code, error.message_en, error.message_zh)


def check_secret_free(texts: Mapping[str, str], secrets: Iterator[str] | list[str]) -> None:
    """Rule ``no_personal_data``: no secret (a number, a name) in any text."""
    for secret in secrets:
        for where, text in texts.items():
            if secret and secret in text:
                raise ConformanceError(
                    "no_personal_data",
                    f"a document number or name ({len(secret)} characters) appears in {where}",
                )


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # a malformed record is the plugin's bug, not a leak
            self.lines.append(str(record.msg))


@contextlib.contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log line emitted (at any level) while the block runs."""
    root = logging.getLogger()
    handler = _Records()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def throughput(call: Callable[[], object], *, budget_s: float = 0.05) -> float:
    """Calls per second of ``call``, measured for about ``budget_s`` (monotonic clock)."""
    calls = 0
    started = time.perf_counter()
    elapsed = 0.0
    while elapsed < budget_s or calls < 3:
        call()
        calls += 1
        elapsed = time.perf_counter() - started
    return calls / elapsed if elapsed > 0 else float("inf")


def check_plugin(plugin: object, kind: str, **options: Any) -> ConformanceReport:
    """Run the suite for ``kind`` (``document``, ``status-source``, ``face``, ``ocr``)."""
    from healthcode.testing import conformance_documents, conformance_engines

    checks: dict[str, Callable[..., ConformanceReport]] = {
        "document": conformance_documents.check_document_plugin,
        "status-source": conformance_engines.check_status_source,
        "face": conformance_engines.check_face_engine,
        "ocr": conformance_engines.check_ocr_engine,
    }
    if kind not in checks:
        raise ValueError(f"kind must be one of {', '.join(checks)}")
    return checks[kind](plugin, **options)


def check_document_plugin(plugin: object, samples: Any = (), **options: Any) -> ConformanceReport:
    """Document plugins: see ``conformance_documents.check_document_plugin``."""
    from healthcode.testing.conformance_documents import check_document_plugin as check

    return check(plugin, samples, **options)


def check_status_source(plugin: object, **options: Any) -> ConformanceReport:
    """Status sources: see ``conformance_engines.check_status_source``."""
    from healthcode.testing.conformance_engines import check_status_source as check

    return check(plugin, **options)


def check_face_engine(plugin: object, **options: Any) -> ConformanceReport:
    """Face engines: see ``conformance_engines.check_face_engine``."""
    from healthcode.testing.conformance_engines import check_face_engine as check

    return check(plugin, **options)


def check_ocr_engine(plugin: object, **options: Any) -> ConformanceReport:
    """OCR engines: see ``conformance_engines.check_ocr_engine``."""
    from healthcode.testing.conformance_engines import check_ocr_engine as check

    return check(plugin, **options)
