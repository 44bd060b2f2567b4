"""The daily cut-off (healthcode.core.clock) and check-character algorithms."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthcode.core.checkdigits import (
    _gb11643_check_char_reference,
    gb11643_check_char,
    icao_check_digit,
    icao_check_ok,
)
from healthcode.core.clock import next_cutoff, today_shanghai
from healthcode.core.mrz import check_digit_problem, resolve_birth_date, resolve_expiry_date


def test_cutoff_is_midnight_shanghai_in_utc() -> None:
    # 23:59 in Shanghai on 26 Nov is 15:59 UTC; the cut-off is 16:00 UTC.
    now = dt.datetime(2026, 11, 26, 15, 59, tzinfo=dt.UTC)
    assert next_cutoff(now) == dt.datetime(2026, 11, 26, 16, 0, tzinfo=dt.UTC)
    assert today_shanghai(now) == dt.date(2026, 11, 26)


def test_just_after_midnight_shanghai_is_the_next_day() -> None:
    now = dt.datetime(2026, 11, 26, 16, 0, 1, tzinfo=dt.UTC)  # 00:00:01 on 27 Nov
    assert today_shanghai(now) == dt.date(2026, 11, 27)
    assert next_cutoff(now) == dt.datetime(2026, 11, 27, 16, 0, tzinfo=dt.UTC)


def test_cutoff_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        next_cutoff(dt.datetime(2026, 11, 26, 12, 0))


@pytest.mark.parametrize(
    ("body", "check"),
    [("11010519491231002", "X"), ("44052418800101001", "4"), ("81000019940823002", "1")],
)
def test_gb11643_check_char(body: str, check: str) -> None:
    assert gb11643_check_char(body) == check


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_gb11643_fast_form_equals_the_weighted_sum(body: str) -> None:
    assert gb11643_check_char(body) == _gb11643_check_char_reference(body)


def test_gb11643_refuses_bad_bodies() -> None:
    with pytest.raises(ValueError):
        gb11643_check_char("1101051949123100")
    with pytest.raises(ValueError):
        gb11643_check_char("1101051949123100A")


@pytest.mark.parametrize(
    ("data", "check"),
    [("L898902C3", "6"), ("740812", "2"), ("120415", "9"), ("ZE184226B<<<<<", "1"), ("<<<", "0")],
)
def test_icao_check_digit_on_the_specimen(data: str, check: str) -> None:
    assert icao_check_digit(data) == check
    assert icao_check_ok(data, check)


def test_icao_check_digit_refuses_foreign_characters() -> None:
    with pytest.raises(ValueError):
        icao_check_digit("L89 902")


def test_check_digit_problem_reports_expected_digit() -> None:
    assert check_digit_problem("birth_date", "740812", "2") is None
    problem = check_digit_problem("birth_date", "740812", "3", start=13)
    assert problem is not None
    assert problem.code == "check_digit_mismatch"
    assert problem.details == {"expected": "2", "found": "3", "position": 13}
    assert check_digit_problem("optional_data", "<<<<", "<", may_be_filler=True) is None
    assert check_digit_problem("optional_data", "AB<<", "<", may_be_filler=True) is not None


def test_two_digit_years() -> None:
    today = dt.date(2026, 11, 26)
    assert resolve_birth_date("740812", today) == dt.date(1974, 8, 12)
    assert resolve_birth_date("261126", today) == dt.date(2026, 11, 26)
    assert resolve_birth_date("261127", today) == dt.date(1926, 11, 27)
    assert resolve_birth_date("000229", today) == dt.date(2000, 2, 29)
    assert resolve_birth_date("010229", today) is None
    assert resolve_birth_date("7408AB", today) is None
    assert resolve_expiry_date("120415", today) == dt.date(2012, 4, 15)
    assert resolve_expiry_date("350101", today) == dt.date(2035, 1, 1)
    # The window is [today.year - 50, today.year + 50).
    assert resolve_expiry_date("751231", today) == dt.date(2075, 12, 31)
    assert resolve_expiry_date("760101", today) == dt.date(1976, 1, 1)
    assert resolve_expiry_date("991301", today) is None
