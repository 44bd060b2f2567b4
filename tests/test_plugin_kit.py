"""The plugin kit: ``healthcode plugins new`` and the conformance suite.

A generated distribution's own tests pass as written, for each kind of
plugin, and fail naming the rule as soon as a hook breaks it; deliberately
broken plugins of every kind fail the suite with the rule they break.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from typer.testing import CliRunner

import healthcode
from healthcode.cli.main import app
from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import (
    Colour,
    DocumentSubmission,
    FaceMatch,
    Image,
    LivenessChallenge,
    LivenessResult,
    MachineZoneCandidate,
    MachineZoneReading,
    StatusContribution,
    Subject,
)
from healthcode.testing.conformance import (
    RULES,
    ConformanceError,
    check_document_plugin,
    check_face_engine,
    check_ocr_engine,
    check_plugin,
    check_status_source,
)
from healthcode.testing.plugin_template import PLUGIN_KINDS

runner = CliRunner()


def new_plugin(tmp_path: Path, name: str, kind: str) -> Path:
    result = runner.invoke(
        app, ["plugins", "new", name, "--kind", kind, "--dir", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    module = name.replace("-", "_")
    assert out["module"] == module and out["kind"] == kind
    assert sorted(out["files"]) == sorted(
        [
            "pyproject.toml",
            "README.md",
            f"{module}/__init__.py",
            f"{module}/plugin.py",
            f"tests/test_{module}.py",
        ]
    )
    return tmp_path / name


@pytest.fixture
def importable(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Module names to forget after the test; the test puts its folders on sys.path."""
    names: list[str] = []
    yield names
    for name in list(sys.modules):
        if any(name == n or name.startswith(n + ".") for n in names):
            del sys.modules[name]


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --- plugins new --------------------------------------------------------------------


@pytest.mark.parametrize("kind", PLUGIN_KINDS)
def test_generated_tests_pass_as_written(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch, importable: list[str]
) -> None:
    name = f"kit-{kind}-example"
    root = new_plugin(tmp_path, name, kind)
    module = name.replace("-", "_")
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    assert "[project.entry-points.healthcode]" in pyproject
    assert f'{module} = "{module}.plugin"' in pyproject
    # It needs the release that made it (its hooks and rules), not an older one.
    release = ".".join(healthcode.__version__.split(".")[:2])
    assert f'dependencies = ["healthcode>={release}"]' in pyproject
    assert "healthcode_" in (root / "README.md").read_text(encoding="utf-8")
    plugin_source = (root / module / "plugin.py").read_text(encoding="utf-8")
    compile(plugin_source, "plugin.py", "exec")
    monkeypatch.syspath_prepend(str(root))
    importable.extend([module, f"test_{module}"])
    tests = load(root / "tests" / f"test_{module}.py", f"test_{module}")
    test_functions = [getattr(tests, n) for n in dir(tests) if n.startswith("test_")]
    assert test_functions
    for test in test_functions:
        test()


def test_every_hook_of_the_kind_is_stubbed_with_a_docstring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, importable: list[str]
) -> None:
    from healthcode.testing.plugin_template import HOOKS_BY_KIND

    monkeypatch.syspath_prepend(str(tmp_path))
    for kind, hooks in HOOKS_BY_KIND.items():
        module = f"kit_{kind.replace('-', '_')}_hooks"
        new_plugin(tmp_path / "dists", module, kind)
        importable.append(module)
        plugin = load(tmp_path / "dists" / module / module / "plugin.py", module)
        for hook in hooks:
            function = getattr(plugin, hook)
            assert function.__doc__ and "Return" in function.__doc__, hook


def test_bad_names_and_existing_folders_are_refused(tmp_path: Path) -> None:
    for bad in ("Bad Name", "1card", "card-", "a" * 61):
        result = runner.invoke(app, ["plugins", "new", bad, "--dir", str(tmp_path), "--json"])
        assert result.exit_code == 1
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "invalid_plugin_name" and "插件名称" in error["message_zh"]
    new_plugin(tmp_path, "kit-twice", "ocr")
    result = runner.invoke(app, ["plugins", "new", "kit-twice", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "plugin_directory_not_empty" in result.stderr
    assert not list(tmp_path.glob("1card*"))


# --- a generated hook broken: its own tests fail, naming the rule --------------------------

_BREAKAGES = {
    "masking": ("mask_number(document.number)", "document.number"),
    "hostile_input": (
        "    number = submission.number\n",
        "    number = submission.number\n    assert len(number) != 5\n",
    ),
    "other_kinds_get_none": ("submission.kind not in (None, KIND)", "False"),
    "no_personal_data": ('f"A ', 'f"{number}: A '),
    "bilingual_messages": ('message_zh="最后一位与其他数字计算出的校验位不符。"', 'message_zh=""'),
}


@pytest.mark.parametrize("rule", sorted(_BREAKAGES))
def test_a_broken_hook_fails_the_generated_tests_naming_the_rule(
    tmp_path: Path, rule: str, monkeypatch: pytest.MonkeyPatch, importable: list[str]
) -> None:
    module = f"kit_broken_{rule}"
    root = new_plugin(tmp_path, module, "document")
    plugin_file = root / module / "plugin.py"
    old, new = _BREAKAGES[rule]
    source = plugin_file.read_text(encoding="utf-8")
    assert old in source
    plugin_file.write_text(source.replace(old, new, 1), encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    importable.extend([module, f"test_{module}"])
    tests = load(root / "tests" / f"test_{module}.py", f"test_{module}")
    with pytest.raises(ConformanceError) as caught:
        tests.test_conformance()
    assert caught.value.rule == rule
    assert f"[{rule}]" in str(caught.value)


# --- deliberately broken plugins of the other kinds ------------------------------------------


class _Status:
    def __init__(self, answer: object) -> None:
        self.answer = answer

    @hookimpl
    def healthcode_resolve_status(self, subject: Subject, day: dt.date) -> object:
        return self.answer(subject, day) if callable(self.answer) else self.answer


_flip = {"n": 0}


def _alternating(subject: Subject, day: dt.date) -> StatusContribution:
    _flip["n"] += 1
    colour = Colour.RED if _flip["n"] % 2 else Colour.GREEN
    return StatusContribution("flaky", colour, "flips")


def _leaky(subject: Subject, day: dt.date) -> StatusContribution:
    return StatusContribution("leaky", Colour.RED, f"{subject.masked.masked_name} is listed")


def _raises(subject: Subject, day: dt.date) -> StatusContribution:
    raise RuntimeError("registry down")


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        ({"colour": "red"}, "contribution_shape"),
        (StatusContribution("", Colour.RED, "no source"), "contribution_shape"),
        (_raises, "contribution_shape"),
        (_alternating, "deterministic"),
        (_leaky, "no_personal_data"),
    ],
    ids=["dict", "unnamed", "raises", "flaky", "leaky"],
)
def test_broken_status_sources_fail_naming_the_rule(answer: object, rule: str) -> None:
    with pytest.raises(ConformanceError) as caught:
        check_status_source(_Status(answer), max_examples=20)
    assert caught.value.rule == rule


def test_a_silent_status_source_conforms() -> None:
    report = check_plugin(_Status(None), "status-source", max_examples=10)
    assert set(report.passed) == set(RULES["status-source"])


class _MatchesAnything:
    @hookimpl
    def healthcode_compare_templates(self, a: bytes, b: bytes) -> FaceMatch:
        return FaceMatch(similarity=0.9, threshold=0.5, is_match=True)


class _LivenessFooled:
    @hookimpl
    def healthcode_check_liveness(
        self, challenge: LivenessChallenge, frames: Sequence[Image]
    ) -> LivenessResult:
        return LivenessResult(passed=True, score=1.0)


class _SeesGhosts:
    @hookimpl
    def healthcode_detect_faces(self, image: Image) -> list[object]:
        return [SimpleNamespace(box=(0, 0, 10, 10))]


class _BadActions:
    @hookimpl
    def healthcode_liveness_actions(self) -> list[object]:
        from healthcode.core.models import LivenessAction

        return [LivenessAction("blink", "Blink", "")]


class _Misspelt:
    @hookimpl
    def healthcode_detect_face(self, image: Image) -> None:
        return None


@pytest.mark.parametrize(
    ("plugin", "rule"),
    [
        (_MatchesAnything(), "foreign_templates"),
        (_LivenessFooled(), "blank_frames_never_live"),
        (_SeesGhosts(), "blank_image"),
        (_BadActions(), "liveness_actions"),
        (_Misspelt(), "hook_names"),
    ],
    ids=["matches-anything", "liveness-fooled", "ghosts", "actions", "misspelt"],
)
def test_broken_face_engines_fail_naming_the_rule(plugin: object, rule: str) -> None:
    with pytest.raises(ConformanceError) as caught:
        check_face_engine(plugin)
    assert caught.value.rule == rule


class _Reader:
    def __init__(self, reading: MachineZoneReading) -> None:
        self.reading = reading

    @hookimpl
    def healthcode_read_machine_zone(self, image: Image) -> MachineZoneReading:
        return self.reading


_TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"


@pytest.mark.parametrize(
    ("reading", "rule"),
    [
        (MachineZoneReading((MachineZoneCandidate(_TD3),)), "blank_image"),
        (MachineZoneReading((MachineZoneCandidate("p<uto"),)), "reading_shape"),
        (MachineZoneReading((), confidence=1.5), "reading_shape"),
        (MachineZoneReading((), portrait_box=(300, 200, 100, 100)), "reading_shape"),
    ],
    ids=["reads-a-blank-page", "lower-case", "confidence", "portrait-outside"],
)
def test_broken_ocr_engines_fail_naming_the_rule(reading: MachineZoneReading, rule: str) -> None:
    with pytest.raises(ConformanceError) as caught:
        check_ocr_engine(_Reader(reading))
    assert caught.value.rule == rule


def test_an_ocr_engine_that_reads_nothing_conforms() -> None:
    report = check_ocr_engine(_Reader(MachineZoneReading(())))
    assert "document_photo" in report.skipped
    assert set(report.passed) == set(RULES["ocr"]) - {"document_photo"}


class _DeclaresMrzWithoutSamples:
    @hookimpl
    def healthcode_document_types(self) -> list[object]:
        from healthcode.core.models import DocumentType

        return [DocumentType("kit_card", "Kit card", "示例卡", frozenset({"number", "mrz"}))]

    @hookimpl
    def healthcode_parse_document(self, submission: DocumentSubmission) -> None:
        return None


def test_declared_inputs_need_samples_that_parse() -> None:
    with pytest.raises(ConformanceError) as caught:
        check_document_plugin(_DeclaresMrzWithoutSamples())
    assert caught.value.rule == "declared_inputs"
    with pytest.raises(ConformanceError) as caught:
        check_document_plugin(_DeclaresMrzWithoutSamples(), [DocumentSubmission(number="KIT1")])
    assert caught.value.rule == "samples_parse"


def test_the_error_is_an_assertion_with_a_stable_code() -> None:
    error = ConformanceError("masking", "the number is shown")
    assert isinstance(error, AssertionError)
    assert error.code == "plugin_not_conformant" and error.details == {"rule": "masking"}
    assert "插件" in error.message_zh


# --- for real: pip-installed into a throwaway target, listed, its tests run ---------------


def test_generated_distribution_installs_lists_and_tests(tmp_path: Path) -> None:
    root = new_plugin(tmp_path, "kit-installed-card", "document")
    target = tmp_path / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "-e",
            str(root),
            "--target",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k != "HEALTHCODE_DISABLE_PLUGIN_AUTOLOAD"}
    # The editable install's .pth is read only in site directories: the
    # distribution's metadata comes from the target, its code from its folder.
    env["PYTHONPATH"] = os.pathsep.join([str(target), str(root)])
    listed = subprocess.run(
        [sys.executable, "-m", "healthcode.cli.main", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert plugins["kit_installed_card"]["version"] == "0.1.0"
    assert "healthcode_parse_document" in plugins["kit_installed_card"]["hooks"]
    pytest_command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    passed = subprocess.run(
        pytest_command,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert passed.returncode == 0, passed.stdout[-3000:]
    plugin_file = root / "kit_installed_card" / "plugin.py"
    source = plugin_file.read_text(encoding="utf-8")
    plugin_file.write_text(source.replace("mask_number(document.number)", "document.number"))
    failed = subprocess.run(
        pytest_command,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert failed.returncode == 1
    assert "[masking]" in failed.stdout
