"""The repairs a reading's notes record, as warnings a person reads.

The reader changes characters of what the engine saw in two ways: where a
check digit confirms the change (``check_confirmed:...``, ``letter_field:...``,
``name_digit:...``, ``name_filler:...``), and where no check digit covers the
field and the nearest value it may hold was taken (``constrained:...``, see
``constrain``). The second kind is a guess the person should check against
the document; both are reported, positions only (never a character).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from healthcode.core.models import Problem

CONSTRAINED_CODE: Final = "mrz_field_corrected"
CONFIRMED_CODE: Final = "mrz_misread_repaired"

_NOTE: Final = re.compile(
    r"(?P<kind>[a-z_]+):(?:(?P<field>[a-z_]+):)?line(?P<line>\d+):col(?P<col>\d+)"
)
_CONFIRMED_KINDS: Final = frozenset(
    {"check_confirmed", "letter_field", "name_digit", "name_filler", "number_digit"}
)
_FIELD_EN: Final = {
    "document_code": "document code",
    "issuing_state": "issuing state",
    "nationality": "nationality",
    "sex": "sex",
    "name": "name",
}
_FIELD_ZH: Final = {
    "document_code": "证件类型代码",
    "issuing_state": "签发国",
    "nationality": "国籍",
    "sex": "性别",
    "name": "姓名",
}


def repair_problems(notes: Iterable[str]) -> list[Problem]:
    """One warning per repaired field: ``mrz_field_corrected`` for a field no
    check digit covers (taken as the nearest valid value), ``mrz_misread_repaired``
    once for the repairs check digits or the field's alphabet confirmed."""
    corrected: dict[str, list[list[int]]] = {}
    confirmed: list[list[int]] = []
    for note in notes:
        match = _NOTE.fullmatch(note)
        if match is None:
            continue
        where = [int(match["line"]), int(match["col"])]
        if match["kind"] == "constrained" and match["field"]:
            corrected.setdefault(match["field"], []).append(where)
        elif match["kind"] in _CONFIRMED_KINDS:
            confirmed.append(where)
    problems = [_corrected(field, places) for field, places in corrected.items()]
    if confirmed:
        problems.append(
            Problem(
                code=CONFIRMED_CODE,
                severity="warning",
                field="mrz",
                message_en=(
                    f"{len(confirmed)} character(s) of the machine-readable zone were misread "
                    "in the photo and repaired; the check digits confirm the repairs."
                ),
                message_zh=(
                    f"照片中机读区有 {len(confirmed)} 个字符识别有误，已修正"
                    "（校验位确认修正无误）。"
                ),
                details={"positions": confirmed},
            )
        )
    return problems


def _corrected(field: str, places: list[list[int]]) -> Problem:
    name_en = _FIELD_EN.get(field, field.replace("_", " "))
    name_zh = _FIELD_ZH.get(field, field)
    return Problem(
        code=CONSTRAINED_CODE,
        severity="warning",
        field=field,
        message_en=(
            f"The {name_en} read from the photo was not a valid value and was corrected to "
            "the nearest one (no check digit covers it); compare it with the document."
        ),
        message_zh=f"照片中识别出的{name_zh}不是有效值，已更正为最接近的有效值（该字段无校验位），请与证件核对。",
        details={"positions": places},
    )
