"""Normalisation of typed and pasted input (healthcode.core.text)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthcode.core.errors import EmptyInputError, InputTooLongError, InvalidCharactersError
from healthcode.core.text import MAX_MRZ_LENGTH, MAX_NUMBER_LENGTH, normalise_mrz, normalise_number


def test_full_width_digits_and_letters_are_folded() -> None:
    assert normalise_number("１１０１０５１９４９１２３１００２Ｘ") == "11010519491231002X"


def test_stray_whitespace_and_grouping_hyphens_are_removed() -> None:
    assert normalise_number("  110105 1949-1231 002x\t\n") == "11010519491231002X"


@pytest.mark.parametrize("text", [None, "", "   ", "\u3000\t\n", "- -"])
def test_empty_input_is_refused(text: str | None) -> None:
    with pytest.raises(EmptyInputError) as info:
        normalise_number(text)
    assert info.value.code == "empty_input"
    assert info.value.message_zh and info.value.message_en


def test_over_long_number_is_refused_without_echoing_it() -> None:
    with pytest.raises(InputTooLongError) as info:
        normalise_number("1" * (MAX_NUMBER_LENGTH + 1))
    assert info.value.details["max_length"] == MAX_NUMBER_LENGTH
    with pytest.raises(InputTooLongError):
        normalise_number("1" * 10_000_000)


@pytest.mark.parametrize("text", ["1101051949123100２X!", "110105/1949", "张三", "12\x0034"])
def test_characters_outside_the_alphabet_are_refused(text: str) -> None:
    with pytest.raises(InvalidCharactersError) as info:
        normalise_number(text)
    assert info.value.code == "invalid_characters"
    assert text not in str(info.value)


def test_mrz_lines_are_tidied_and_joined() -> None:
    mrz, lowered = normalise_mrz("  P<UTOERIKSSON<<ANNA \r\n\r\n L898902C36UTO  \n")
    assert mrz == "P<UTOERIKSSON<<ANNA\nL898902C36UTO"
    assert lowered is False


def test_mrz_pipe_separator_and_full_width_filler() -> None:
    mrz, _ = normalise_mrz("P＜UTO|L898")
    assert mrz == "P<UTO\nL898"


def test_lower_case_mrz_is_upper_cased_and_flagged() -> None:
    mrz, lowered = normalise_mrz("p<utoeriksson")
    assert mrz == "P<UTOERIKSSON"
    assert lowered is True


def test_mrz_with_foreign_characters_is_refused() -> None:
    with pytest.raises(InvalidCharactersError) as info:
        normalise_mrz("P<UTO#ERIKSSON")
    assert info.value.details["characters"] == ["#"]


def test_over_long_mrz_is_refused() -> None:
    with pytest.raises(InputTooLongError):
        normalise_mrz("<" * (MAX_MRZ_LENGTH + 1))


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=20))
def test_normalising_a_clean_number_is_the_identity(number: str) -> None:
    assert normalise_number(number) == number
    assert normalise_number(number.lower()) == number


@given(st.text(max_size=80))
def test_normalise_number_never_fails_unexpectedly(text: str) -> None:
    try:
        result = normalise_number(text)
    except (EmptyInputError, InputTooLongError, InvalidCharactersError):
        return
    assert result.isascii() and result.isalnum() and result == result.upper()
