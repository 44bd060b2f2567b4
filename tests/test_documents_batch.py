"""The batch path (``healthcode.core.batch``) gives exactly what ``check_document``
gives row by row: the same results, the same refusals, for every built-in kind,
valid and corrupted; and it still goes through pluggy where pluggy does more
than call functions (wrappers, tracing)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Generator, Sequence
from typing import Any

import pluggy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthcode.core.batch import DocumentChecker, check_texts, looks_like_mrz
from healthcode.core.checkdigits import gb11643_check_char
from healthcode.core.documents import check_document, check_documents, make_submission
from healthcode.core.errors import HealthcodeError
from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import CheckResult, Document, DocumentSubmission, Problem
from healthcode.core.plugins import new_plugin_manager
from healthcode.plugins.hkmo_permit.kinds import MRZ_CODE_BY_KIND, RESIDENCE_PERMIT
from healthcode.testing import permits
from healthcode.testing.mrz import LAYOUTS, random_mrz
from healthcode.testing.resident_id import random_legacy_resident_id, random_resident_id

TODAY = dt.date(2026, 11, 26)
PM = new_plugin_manager(autoload=False)
MRZ_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<"
FPR_KIND = "cn_foreign_permanent_resident_id"

Outcome = CheckResult | HealthcodeError


def fpr_number(rng: random.Random) -> str:
    """A Foreign Permanent Resident ID Card number: 2023 (18) or 2017 (15) form."""
    if rng.random() < 0.3:
        return rng.choice(("KAZ110090123105", "USA310085070112"))
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(20000))
    body = f"9{rng.choice(('11', '31', '44'))}{rng.choice(('840', '682', '124'))}{birth:%Y%m%d}"
    body += f"{rng.randrange(1000):03d}"
    return body + gb11643_check_char(body)


def valid_text(rng: random.Random) -> tuple[str | None, str, bool]:
    """(kind to name or None, text, is it an MRZ) for a random built-in kind."""
    choice = rng.randrange(7)
    if choice == 0:
        number = random_resident_id(rng)
        return "cn_resident_id", number, False
    if choice == 1:
        return "cn_resident_id", random_legacy_resident_id(rng), False
    if choice == 2:
        return FPR_KIND, fpr_number(rng), False
    if choice == 3:
        kind = rng.choice(sorted(MRZ_CODE_BY_KIND.keys() | {RESIDENCE_PERMIT}))
        return kind, permits.random_number(rng, kind), False
    if choice == 4:
        kind = rng.choice(sorted(MRZ_CODE_BY_KIND))
        return kind, permits.random_mrz_sample(rng, kind).mrz, True
    layout = "TD3" if choice == 5 else rng.choice(LAYOUTS)
    text, fields = random_mrz(rng, layout, today=TODAY)
    kind = "visa" if layout.startswith("MRV") else "passport"
    return (kind if fields.document_code[0] != "I" else None), text, True


def corrupt(rng: random.Random, text: str, mrz: bool) -> str:
    """One of the ways typed or pasted input goes wrong."""
    how = rng.randrange(8)
    i = rng.randrange(len(text))
    alphabet = MRZ_ALPHABET if mrz else "0123456789X"
    if how == 0:
        return text[:i] + rng.choice(alphabet) + text[i + 1 :]
    if how == 1:
        return text[:i] + text[i + 1 :]
    if how == 2:
        return text[:i] + rng.choice(alphabet) + text[i:]
    if how == 3:
        return text.lower()
    if how == 4:  # full width, as an input method types it
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    if how == 5:
        return text.replace("\n", "|") if mrz else f" {text[:6]} {text[6:]} "
    if how == 6:
        return text[: rng.randrange(1, len(text) + 1)]
    return text[:i] + rng.choice("!é< \n") + text[i:]


@st.composite
def inputs(draw: st.DrawFn) -> tuple[str | None, str, bool]:
    rng = draw(st.randoms(use_true_random=False))
    kind, text, mrz = valid_text(rng)
    if draw(st.booleans()):
        text = corrupt(rng, text, mrz)
    if not draw(st.booleans()):
        kind = None
    elif draw(st.integers(0, 9)) == 0:
        kind = rng.choice(("passport", "cn_resident_id", "tw_compatriot_permit", FPR_KIND))
    return kind, text, mrz


def submit(kind: str | None, text: str, mrz: bool) -> tuple[DocumentSubmission, list[Problem]]:
    if mrz:
        return make_submission(kind=kind, mrz=text)
    return make_submission(kind=kind, number=text)


def outcome_of(call: Callable[[], CheckResult]) -> Outcome:
    try:
        return call()
    except HealthcodeError as error:
        return error


def single(kind: str | None, text: str, mrz: bool) -> Outcome:
    def check() -> CheckResult:
        submission, warnings = submit(kind, text, mrz)
        return check_document(submission, today=TODAY, warnings=warnings, pm=PM)

    return outcome_of(check)


def assert_same(batch: Outcome, one: Outcome) -> None:
    if isinstance(one, HealthcodeError):
        assert isinstance(batch, HealthcodeError), batch
        assert type(batch) is type(one)
        assert batch.as_dict() == one.as_dict()
    else:
        assert batch == one


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(inputs(), min_size=1, max_size=12))
def test_batch_equals_check_document_row_by_row(
    rows: list[tuple[str | None, str, bool]],
) -> None:
    checker = DocumentChecker(PM, today=TODAY)
    made = []
    for kind, text, mrz in rows:
        one = single(kind, text, mrz)
        try:
            submission, warnings = submit(kind, text, mrz)
        except HealthcodeError as error:
            assert_same(error, one)
            continue
        assert_same(outcome_of(lambda: checker.check(submission, warnings)), one)  # noqa: B023
        made.append(submission)
    # check_documents takes submissions as they are (no normalisation warnings).
    batch = list(check_documents(made, today=TODAY, pm=PM))
    assert len(batch) == len(made)
    for outcome, submission in zip(batch, made, strict=True):
        assert_same(
            outcome,
            outcome_of(lambda: check_document(submission, today=TODAY, pm=PM)),  # noqa: B023
        )


@settings(max_examples=100, deadline=None)
@given(st.lists(inputs(), min_size=1, max_size=12), st.sampled_from([None, "cn_resident_id"]))
def test_check_texts_equals_the_single_check_of_each_text(
    rows: list[tuple[str | None, str, bool]], kind: str | None
) -> None:
    texts = [text for _, text, _ in rows]
    outcomes = list(check_texts(texts, kind=kind, today=TODAY, pm=PM))
    assert len(outcomes) == len(texts)
    for text, outcome in zip(texts, outcomes, strict=True):
        assert_same(outcome, single(kind, text, looks_like_mrz(text)))


def test_every_builtin_kind_is_generated_and_checked() -> None:
    rng = random.Random(17)
    seen = set()
    for _ in range(400):
        _, text, mrz = valid_text(rng)
        outcome = next(check_texts([text.replace("\n", "|")], today=TODAY, pm=PM))
        assert_same(outcome, single(None, text, mrz))
        if isinstance(outcome, CheckResult):
            seen.add(outcome.document.kind)
    assert seen >= {
        "cn_resident_id",
        FPR_KIND,
        "passport",
        "travel_id",
        "visa",
        *MRZ_CODE_BY_KIND,
        RESIDENCE_PERMIT,
    }


def test_an_unknown_kind_and_an_image_go_as_check_document_says() -> None:
    checker = DocumentChecker(PM, today=TODAY)
    unknown = DocumentSubmission(kind="nope", number="123")
    with pytest.raises(HealthcodeError) as batch_error:
        checker.check(unknown)
    with pytest.raises(HealthcodeError) as single_error:
        check_document(unknown, today=TODAY, pm=PM)
    assert batch_error.value.as_dict() == single_error.value.as_dict()
    pdf = DocumentSubmission(image=b"%PDF-1.7 not a photo")
    outcome = list(check_documents([pdf], today=TODAY, pm=PM))
    assert isinstance(outcome[0], HealthcodeError) and outcome[0].code == "pdf_not_supported"


# --- plugins that pluggy must keep calling ---------------------------------------


class ClaimsFirst:
    """A plugin that claims every number ending in 7 before the built-ins, takes
    its validation arguments in the other order, and masks nothing."""

    @hookimpl(tryfirst=True)
    def healthcode_parse_document(self, submission: DocumentSubmission) -> Document | None:
        if submission.number and submission.number.endswith("7"):
            return Document(kind="test_sevens", number=submission.number)
        return None

    @hookimpl
    def healthcode_validate_document(self, today: dt.date, document: Document) -> list[Problem]:
        if document.kind != "test_sevens":
            return []
        return [Problem("test_seven", "Seven.", "七。", field=today.isoformat())]


class CountingWrapper:
    def __init__(self) -> None:
        self.calls = 0

    @hookimpl(wrapper=True)
    def healthcode_mask_document(self, document: Document) -> Generator[None, Any, Any]:
        self.calls += 1
        return (yield)


def outcomes_of(
    numbers: Sequence[str], pm: pluggy.PluginManager
) -> tuple[list[Outcome], list[Outcome]]:
    submissions = [make_submission(number=n)[0] for n in numbers]
    batch = list(check_documents(submissions, today=TODAY, pm=pm))
    ones: list[Outcome] = []
    for submission in submissions:
        try:
            ones.append(check_document(submission, today=TODAY, pm=pm))
        except HealthcodeError as error:
            ones.append(error)
    return batch, ones


NUMBERS = ["11010519491231002X", "440524188001010014", "110105194912310027", "KAZ110090123105"]


def test_order_and_argument_order_of_a_third_party_plugin_are_kept() -> None:
    pm = new_plugin_manager(autoload=False)
    pm.register(ClaimsFirst(), name="claims-first")
    batch, ones = outcomes_of(NUMBERS, pm)
    for outcome, one in zip(batch, ones, strict=True):
        assert_same(outcome, one)
    kinds = [o.document.kind for o in batch if isinstance(o, CheckResult)]
    assert kinds == ["cn_resident_id", "cn_resident_id", "test_sevens", FPR_KIND]
    sevens = batch[2]
    assert isinstance(sevens, CheckResult)
    assert [p.field for p in sevens.problems] == [TODAY.isoformat()]


@pytest.mark.parametrize("switch", ["wrapper", "tracing", "monitoring"])
def test_wrappers_and_tracing_still_see_every_call(switch: str) -> None:
    pm = new_plugin_manager(autoload=False)
    seen: list[str] = []
    wrapper = CountingWrapper()
    undo: Callable[[], None] = lambda: None  # noqa: E731
    if switch == "wrapper":
        pm.register(wrapper, name="counting")
    elif switch == "tracing":
        pm.trace.root.setwriter(seen.append)
        undo = pm.enable_tracing()
    else:
        undo = pm.add_hookcall_monitoring(
            lambda name, impls, kwargs: seen.append(name), lambda *args: None
        )
    try:
        checker = DocumentChecker(pm, today=TODAY)
        before = len(seen)
        results = [checker.check(make_submission(number=n)[0]) for n in NUMBERS]
    finally:
        undo()
    batch, ones = outcomes_of(NUMBERS, pm)
    assert results == ones == batch
    if switch == "wrapper":
        assert wrapper.calls == 3 * len(NUMBERS)  # checker, check_documents, check_document
    else:
        assert len(seen) - before >= 3 * len(NUMBERS)


def test_the_day_is_fixed_when_the_checker_is_made() -> None:
    number = "110105202611270011"  # born tomorrow, as of TODAY
    number = number[:17] + gb11643_check_char(number[:17])
    today_result = DocumentChecker(PM, today=TODAY).check(make_submission(number=number)[0])
    later = DocumentChecker(PM, today=TODAY + dt.timedelta(days=1))
    later_result = later.check(make_submission(number=number)[0])
    assert "birth_date_in_future" in {p.code for p in today_result.problems}
    assert "birth_date_in_future" not in {p.code for p in later_result.problems}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11010519491231002X", False),
        ("KAZ110090123105", False),
        ("A" * 30, True),
        ("P<UTO", True),
        ("P＜UTO", True),
        ("AB\nCD", True),
        (" 1101 0519 ", False),
    ],
)
def test_looks_like_mrz(text: str, expected: bool) -> None:
    assert looks_like_mrz(text) is expected
