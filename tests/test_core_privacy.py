"""Masking rules (healthcode.core.privacy) and that models keep personal data out of repr."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthcode.core.models import Document
from healthcode.core.privacy import chinese_surname, latin_surname, mask_number


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("11010519491231002X", "11**************2X"),
        ("H12345678", "H1*****78"),
        ("L898902C3", "L8*****C3"),
        ("12345", "12*45"),
        ("1234", "****"),
        ("1", "*"),
    ],
)
def test_mask_number_keeps_first_and_last_two(number: str, masked: str) -> None:
    assert mask_number(number) == masked


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=5, max_size=30))
def test_mask_number_shows_at_most_four_characters(number: str) -> None:
    masked = mask_number(number)
    assert len(masked) == len(number)
    assert masked[2:-2] == "*" * (len(number) - 4)


@pytest.mark.parametrize(
    ("name", "surname"),
    [
        ("张三", "张"),
        ("王小明", "王"),
        ("欧阳修", "欧阳"),
        ("司马光", "司马"),
        ("诸葛亮", "诸葛"),
        ("上官婉儿", "上官"),
        ("司马", "司"),  # two characters: surname 司, given name 马
        ("欧阳娜娜", "欧阳"),
    ],
)
def test_chinese_surname(name: str, surname: str) -> None:
    assert chinese_surname(name) == surname


def test_latin_surname_turns_fillers_into_spaces() -> None:
    assert latin_surname("VAN<DER<BERG") == "VAN DER BERG"
    assert latin_surname("ERIKSSON") == "ERIKSSON"


def test_document_repr_leaks_no_personal_data() -> None:
    document = Document(
        kind="cn_resident_id",
        number="11010519491231002X",
        surname="ZHANG",
        given_names="SAN",
        name_zh="张三",
        raw="11010519491231002x",
    )
    text = repr(document)
    for secret in ("11010519491231002X", "ZHANG", "SAN", "张三", "1949"):
        assert secret not in text
