"""Masking: what a guard or a pass may show of a person.

The number keeps its first 2 and last 2 characters; the name keeps the
surname only.
"""

from __future__ import annotations

# Two-character (compound) Chinese surnames, from the list of the Hundred Family
# Surnames (百家姓) plus common modern ones. A name that starts with one of these
# keeps both characters; any other Chinese name keeps its first character.
COMPOUND_SURNAMES = frozenset(
    """
    万俟 司马 上官 欧阳 夏侯 诸葛 闻人 东方 赫连 皇甫 尉迟 公羊 澹台 公冶 宗政 濮阳
    淳于 单于 太叔 申屠 公孙 仲孙 轩辕 令狐 钟离 宇文 长孙 慕容 鲜于 闾丘 司徒 司空
    亓官 司寇 仉督 子车 颛孙 端木 巫马 公西 漆雕 乐正 壤驷 公良 拓跋 夹谷 宰父 谷梁
    段干 百里 东郭 南门 呼延 羊舌 微生 梁丘 左丘 东门 西门 南宫 第五 公仪 公乘 太史
    仲长 叔孙 屈突 尔朱 东乡 相里 胡母 司城 张廖 雍门 毋丘 贺兰 綦毋 屋庐 独孤 南郭
    北宫 王孙
    """.split()
)

MASK_CHAR = "*"


def mask_number(number: str) -> str:
    """Keep the first 2 and last 2 characters; mask the rest.

    Numbers of 4 characters or fewer are masked whole: showing their ends
    would show all of them.

    >>> mask_number("11010519491231002X")
    '11**************2X'
    """
    if len(number) <= 4:
        return MASK_CHAR * len(number)
    return number[:2] + MASK_CHAR * (len(number) - 4) + number[-2:]


def chinese_surname(name: str) -> str:
    """The surname of a Chinese name written in Chinese characters.

    >>> chinese_surname("欧阳修"), chinese_surname("张三")
    ('欧阳', '张')
    """
    name = name.strip()
    if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES:
        return name[:2]
    # A two-character name starting with a compound surname (e.g. 司马 alone)
    # is ambiguous; the first character is the safer minimum to show.
    return name[:1]


def latin_surname(primary_identifier: str) -> str:
    """The primary identifier of a Latin-script name, tidied for display.

    >>> latin_surname("ERIKSSON")
    'ERIKSSON'
    """
    return " ".join(primary_identifier.replace("<", " ").split())
