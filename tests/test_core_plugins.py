"""The plugin manager: loading, autoload switch, check_pending, registration records,
and the meta-tests that keep every hook documented and tested."""

from __future__ import annotations

import ast
import datetime as dt
import functools
import importlib.metadata
import inspect
import re
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest
from support.source import syntax_tree

import healthcode
from healthcode.core import hookspecs, plugins
from healthcode.core.documents import check_document, document_types, make_submission
from healthcode.core.errors import (
    DuplicateDocumentKindError,
    PluginError,
    UnknownDocumentKindError,
    UnsupportedInputError,
)
from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import (
    Colour,
    Document,
    DocumentType,
    Face,
    FaceMatch,
    Image,
    Issuer,
    LivenessChallenge,
    LivenessResult,
    MaskedDocument,
    Problem,
    StatusContribution,
    Subject,
)
from healthcode.core.status import StatusEntries

HOOK_NAMES = sorted(
    name
    for name, obj in vars(hookspecs).items()
    if name.startswith("healthcode_") and callable(obj)
)
BUILTINS = {"id_card", "passport", "hkmo_permit", "face"}


class XxCardPlugin:
    """A throwaway third-party plugin: 'XX' + 4 digits."""

    @hookimpl
    def healthcode_document_types(self) -> list[DocumentType]:
        return [DocumentType("xx_card", "XX card", "XX 卡", frozenset({"number"}))]

    @hookimpl
    def healthcode_parse_document(self, submission):  # type: ignore[no-untyped-def]
        number = submission.number
        if submission.kind not in (None, "xx_card") or not number:
            return None
        if not (number.startswith("XX") and len(number) == 6):
            return None
        return Document(kind="xx_card", number=number)

    @hookimpl
    def healthcode_validate_document(self, document: Document, today: dt.date) -> list[Problem]:
        if document.kind == "xx_card" and document.number.endswith("0"):
            return [Problem("xx_zero", "ends in zero", "以零结尾")]
        return []


@pytest.fixture
def fake_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[list[importlib.metadata.EntryPoint]]:
    """Add third-party entry points (no distribution: like a foreign package)."""
    extra: list[importlib.metadata.EntryPoint] = []
    real = plugins._entry_points

    def entry_points() -> list[importlib.metadata.EntryPoint]:
        return [*real(), *extra]

    monkeypatch.setattr(plugins, "_entry_points", entry_points)
    yield extra
    for ep in extra:
        sys.modules.pop(ep.value, None)


def _module_plugin(name: str, source: str) -> str:
    module = types.ModuleType(name)
    exec(source, module.__dict__)
    sys.modules[name] = module
    return name


def test_builtin_plugins_load_through_entry_points(pm: pluggy.PluginManager) -> None:
    names = {name for name, _ in pm.list_name_plugin()}
    assert names >= BUILTINS
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="healthcode")}
    assert set(eps) >= BUILTINS, "built-ins must be declared as entry points"


def test_get_plugin_manager_is_cached() -> None:
    assert plugins.get_plugin_manager() is plugins.get_plugin_manager()


def test_third_party_plugin_loads_unless_autoload_is_disabled(
    fake_entry_points: list[importlib.metadata.EntryPoint], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _module_plugin(
        "hc_test_thirdparty",
        "from healthcode.core.hookspecs import hookimpl\n"
        "@hookimpl\ndef healthcode_trusted_issuers():\n    return []\n",
    )
    fake_entry_points.append(importlib.metadata.EntryPoint("thirdparty", name, "healthcode"))
    monkeypatch.setenv("HEALTHCODE_DISABLE_PLUGIN_AUTOLOAD", "0")
    assert plugins.new_plugin_manager().has_plugin("thirdparty")
    monkeypatch.setenv("HEALTHCODE_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = plugins.new_plugin_manager()
    assert not pm.has_plugin("thirdparty")
    assert {name for name, _ in pm.list_name_plugin()} >= BUILTINS


def test_misspelt_hook_is_caught_by_check_pending(
    fake_entry_points: list[importlib.metadata.EntryPoint],
) -> None:
    name = _module_plugin(
        "hc_test_typo",
        "from healthcode.core.hookspecs import hookimpl\n"
        "@hookimpl\ndef healthcode_parse_documnet(submission):\n    return None\n",
    )
    fake_entry_points.append(importlib.metadata.EntryPoint("typo", name, "healthcode"))
    with pytest.raises(PluginError) as info:
        plugins.new_plugin_manager(autoload=True)
    assert info.value.code == "plugin_error"
    assert "healthcode_parse_documnet" in info.value.message_en


def test_throwaway_plugin_adds_a_document_kind(pm: pluggy.PluginManager, today: dt.date) -> None:
    plugin = XxCardPlugin()
    pm.register(plugin, name="xx")
    try:
        assert "xx_card" in document_types(pm)
        sub, _ = make_submission(number="xx1230")
        result = check_document(sub, today=today, pm=pm)
        assert result.document.kind == "xx_card"
        assert [p.code for p in result.problems] == ["xx_zero"]
        assert not result.is_valid
        # No mask hook in this plugin: core's generic mask applies.
        assert result.masked == MaskedDocument("xx_card", "", "XX**30")
    finally:
        pm.unregister(plugin)
    assert "xx_card" not in document_types(pm)


def test_duplicate_document_kinds_are_refused(pm: pluggy.PluginManager) -> None:
    pm.register(XxCardPlugin(), name="xx1")
    pm.register(XxCardPlugin(), name="xx2")
    with pytest.raises(DuplicateDocumentKindError) as info:
        document_types(pm)
    assert info.value.details == {"kind": "xx_card"}


def test_registration_hook_must_return_records(pm: pluggy.PluginManager) -> None:
    class Bad:
        @hookimpl
        def healthcode_document_types(self) -> list[str]:
            return ["not a record"]

    pm.register(Bad())
    with pytest.raises(PluginError):
        document_types(pm)


def test_unknown_kind_and_unrecognised_input(pm: pluggy.PluginManager) -> None:
    sub, _ = make_submission(kind="no_such_kind", number="123")
    with pytest.raises(UnknownDocumentKindError) as info:
        check_document(sub, pm=pm)
    assert "no_such_kind" in info.value.details["kind"]
    pm.register(XxCardPlugin(), name="xx")
    sub, _ = make_submission(kind="xx_card", number="YY1234")
    with pytest.raises(UnsupportedInputError):
        check_document(sub, pm=pm)


def test_list_plugins_reports_versions_and_hooks(pm: pluggy.PluginManager) -> None:
    pm.register(XxCardPlugin(), name="xx")
    infos = {info.name: info for info in plugins.list_plugins(pm)}
    assert infos["xx"].hooks == (
        "healthcode_document_types",
        "healthcode_parse_document",
        "healthcode_validate_document",
    )
    assert infos["id_card"].version == importlib.metadata.version("healthcode")
    assert "healthcode_parse_document" in infos["id_card"].hooks


# --- every hook, through a throwaway implementation ---------------------------------


class EveryHookPlugin:
    """Implements the hooks no built-in implements yet, to pin their signatures."""

    @hookimpl
    def healthcode_detect_faces(self, image: Image) -> list[Face]:
        return [Face(box=(0, 0, image.width, image.height), score=1.0)]

    @hookimpl
    def healthcode_face_template(self, image: Image, face: Face) -> bytes:
        return b"t" * image.width

    @hookimpl
    def healthcode_compare_templates(self, a: bytes, b: bytes) -> FaceMatch:
        return FaceMatch(similarity=float(a == b), threshold=0.5, is_match=a == b)

    @hookimpl
    def healthcode_check_liveness(
        self, challenge: LivenessChallenge, frames: list[Image]
    ) -> LivenessResult:
        return LivenessResult(passed=len(frames) >= len(challenge.actions), score=1.0)

    @hookimpl
    def healthcode_presentation_attack_score(self, image: Image, face: Face) -> float:
        return 0.25

    @hookimpl
    def healthcode_reference_face(self, document: Document) -> Image | None:
        return Image(pixels=None, width=1, height=1) if document.kind == "xx_card" else None

    @hookimpl
    def healthcode_resolve_status(
        self, subject: Subject, day: dt.date, entries: StatusEntries
    ) -> StatusContribution:
        return StatusContribution("test_list", Colour.YELLOW, f"listed on {day}")

    @hookimpl
    def healthcode_trusted_issuers(self) -> list[Issuer]:
        return [Issuer(region_code="120000", name="天津市")]


def test_every_hook_can_be_implemented_and_called(pm: pluggy.PluginManager) -> None:
    plugin = EveryHookPlugin()
    pm.register(plugin, name="every")
    try:
        image = Image(pixels=None, width=4, height=3)
        faces = pm.hook.healthcode_detect_faces(image=image)
        assert faces[0].box == (0, 0, 4, 3)
        template = pm.hook.healthcode_face_template(image=image, face=faces[0])
        assert pm.hook.healthcode_compare_templates(a=template, b=template).is_match
        now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
        challenge = LivenessChallenge("n", ("blink",), now, now + dt.timedelta(minutes=1))
        assert pm.hook.healthcode_check_liveness(challenge=challenge, frames=[image]).passed
        assert pm.hook.healthcode_presentation_attack_score(image=image, face=faces[0]) == 0.25
        doc = Document(kind="xx_card", number="XX1234")
        assert pm.hook.healthcode_reference_face(document=doc).width == 1
        masked = MaskedDocument("xx_card", "", "XX**34")
        subject = Subject(subject_id="ab" * 32, masked=masked)
        (contribution,) = [
            c
            for c in pm.hook.healthcode_resolve_status(
                subject=subject, day=dt.date(2026, 11, 26), entries=StatusEntries()
            )
            if c is not None
        ]
        assert contribution.colour is Colour.YELLOW
        issuers = [i for batch in pm.hook.healthcode_trusted_issuers() for i in batch]
        assert [i.region_code for i in issuers] == ["120000"]
    finally:
        pm.unregister(plugin)


def test_document_hooks_called_directly(pm: pluggy.PluginManager, today: dt.date) -> None:
    class Masking(XxCardPlugin):
        @hookimpl(tryfirst=True)
        def healthcode_mask_document(self, document: Document) -> MaskedDocument | None:
            if document.kind != "xx_card":
                return None
            return MaskedDocument("xx_card", "X", "XX##" + document.number[-2:])

    plugin = Masking()
    pm.register(plugin, name="xx")
    types_ = [t for batch in pm.hook.healthcode_document_types() for t in batch]
    assert sum(t.kind == "xx_card" for t in types_) == 1
    sub, _ = make_submission(number="XX4321")
    document = pm.hook.healthcode_parse_document(submission=sub)
    assert document == Document(kind="xx_card", number="XX4321")
    problems = [
        p
        for batch in pm.hook.healthcode_validate_document(document=document, today=today)
        for p in batch or ()
    ]
    assert problems == []
    assert pm.hook.healthcode_mask_document(document=document).masked_number == "XX##21"


def test_colours_order_by_severity_with_bilingual_labels() -> None:
    assert max([Colour.GREEN, Colour.RED, Colour.YELLOW], key=lambda c: c.severity) is Colour.RED
    assert (Colour.RED.label_zh, Colour.RED.label_en) == ("集中观察", "centralized observation")
    assert (Colour.YELLOW.label_zh, Colour.GREEN.label_zh) == ("居家观察", "未见异常")


# --- meta-tests -------------------------------------------------------------------------

README = Path(__file__).parents[1] / "README.md"
TESTS = Path(__file__).parent
_README_ROW = re.compile(r"\|\s*`(healthcode_\w+)\(([^)]*)\)`\s*\|")


@functools.cache
def _readme_hook_rows() -> dict[str, list[str]]:
    """The README hook table's first column: ``healthcode_x(a, b)`` -> ``["a", "b"]``."""
    rows: dict[str, list[str]] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        if match := _README_ROW.match(line):
            rows[match[1]] = [arg.strip() for arg in match[2].split(",") if arg.strip()]
    return rows


def _spec_arguments(hook: str) -> list[str]:
    return list(inspect.signature(getattr(hookspecs, hook)).parameters)


@functools.cache
def _hooks_called_by_tests() -> frozenset[str]:
    """Hook names some test module calls: ``pm.hook.healthcode_x(...)``,
    ``plugin.healthcode_x(...)`` or ``healthcode_x(...)``; naming a hook in a
    string or a list does not count."""
    called: set[str] = set()
    for path in TESTS.glob("test_*.py"):
        for node in ast.walk(syntax_tree(path)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.startswith("healthcode_"):
                called.add(name)
    return frozenset(called)


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_is_documented(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert "Example" in doc, f"{hook} needs an example implementation in its docstring"
    assert "firstresult" in doc or "Called for every plugin" in doc, f"{hook}: say how it is called"
    for argument in _spec_arguments(hook):
        assert f":param {argument}:" in doc, f"{hook}: no `:param {argument}:` line"
    assert re.search(r"Added in \d+\.\d+", doc), f"{hook}: say in which version it was added"
    rows = _readme_hook_rows()
    assert hook in rows, f"{hook} is missing from the README's hook table"
    assert rows[hook] == _spec_arguments(hook), (
        f"the README's hook table shows {hook}({', '.join(rows[hook])}); "
        f"the hookspec takes ({', '.join(_spec_arguments(hook))})"
    )


def _release(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_was_added_in_a_release_this_one_includes(hook: str) -> None:
    # A plugin depends on ``healthcode>=`` the release its hooks were added in:
    # that requirement must admit the release that has them.
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    found = re.search(r"Added in (\d+\.\d+)", doc)
    assert found is not None
    assert _release(found.group(1)) <= _release(healthcode.__version__), (
        f"{hook} says it was added in {found.group(1)}, after this release "
        f"({healthcode.__version__}): raise the version in pyproject.toml and "
        "healthcode/__init__.py"
    )


def test_the_package_version_is_stated_once_and_agrees() -> None:
    pyproject = tomllib.loads((TESTS.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == healthcode.__version__


def test_readme_hook_table_names_only_real_hooks() -> None:
    assert set(_readme_hook_rows()) - set(HOOK_NAMES) == set()


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_has_a_test(hook: str) -> None:
    assert hook in _hooks_called_by_tests(), f"no test calls {hook}"
