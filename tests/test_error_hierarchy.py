"""Every error class in healthcode derives from one root,
``healthcode.core.errors.HealthcodeError``, with its own stable machine code
and a message in English and in Chinese; codes once published stay.

The classes are found by importing every module of the package (migrations
aside) and collecting the exception classes each one defines.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re

import pytest
from support.data import TESTS

import healthcode
from healthcode.core.errors import HealthcodeError

NOT_FOR_PEOPLE = {
    # Signals the test harness that no PostgreSQL server answers; conftest
    # turns it into a skip (or a failure under CI). Nobody else meets it.
    "healthcode.core.storage.testing.PostgresUnavailable",
}
PUBLISHED_CODES = TESTS / "support" / "error_codes.txt"
"""Codes scripts and API clients may rely on: one a line, sorted. Add new
codes here; never remove or rename one."""
_CODE = re.compile(r"[a-z][a-z0-9_]*")
_HAN = re.compile(r"[\u4e00-\u9fff]")


@functools.cache
def _error_classes() -> dict[str, type[BaseException]]:
    """``module.Class`` -> class, for every exception class healthcode defines."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(healthcode.__path__, "healthcode."):
        if ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{name}"] = obj
    return found


def _healthcode_errors() -> dict[str, type[HealthcodeError]]:
    return {name: cls for name, cls in _error_classes().items() if issubclass(cls, HealthcodeError)}


def test_every_error_derives_from_healthcode_error() -> None:
    assert len(_healthcode_errors()) > 50, "the walk found too few errors to be complete"
    outside = sorted(
        name
        for name, cls in _error_classes().items()
        if not issubclass(cls, HealthcodeError) and name not in NOT_FOR_PEOPLE
    )
    assert outside == [], "derive these from healthcode.core.errors.HealthcodeError"


@pytest.mark.parametrize("name", sorted(NOT_FOR_PEOPLE))
def test_the_exceptions_to_the_rule_still_exist(name: str) -> None:
    assert name in _error_classes(), f"{name} is gone: take it out of NOT_FOR_PEOPLE"


def test_every_error_has_its_own_code_and_both_messages() -> None:
    problems = []
    for name, cls in sorted(_healthcode_errors().items()):
        own = vars(cls)
        if "code" not in own or not _CODE.fullmatch(cls.code):
            problems.append(f"{name}: declare its own snake_case `code`")
        if "default_en" not in own or not cls.default_en.strip():
            problems.append(f"{name}: declare `default_en`, what a person reads")
        if "default_zh" not in own or not _HAN.search(cls.default_zh):
            problems.append(f"{name}: declare `default_zh` in Chinese")
    assert problems == []


def test_codes_are_unique() -> None:
    owners: dict[str, list[str]] = {}
    for name, cls in _healthcode_errors().items():
        owners.setdefault(cls.code, []).append(name)
    shared = {code: names for code, names in owners.items() if len(names) > 1}
    assert shared == {}, "one code per error class, so that a client can tell them apart"


def test_published_codes_stay() -> None:
    published = PUBLISHED_CODES.read_text(encoding="utf-8").split()
    assert published == sorted(set(published)), f"keep {PUBLISHED_CODES.name} sorted, no repeats"
    current = {cls.code for cls in _healthcode_errors().values()}
    gone = sorted(set(published) - current)
    assert gone == [], "published codes no error has any more (clients rely on them)"
    new = sorted(current - set(published))
    assert new == [], f"new codes: add them to tests/support/{PUBLISHED_CODES.name}"


def test_messages_name_the_code_and_both_languages() -> None:
    error = HealthcodeError(details={"length": 3})
    assert str(error) == f"[healthcode_error] {error.message_en} / {error.message_zh}"
    assert error.as_dict() == {
        "code": "healthcode_error",
        "message_en": "Something went wrong.",
        "message_zh": "出现错误。",
        "details": {"length": 3},
    }
