"""Locating the zone for the tesseract reader: the MRZ is the group of 1 to 3
long, parallel, evenly spaced lines of equal length."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from healthcode.plugins.mrz_ocr.locate import components
from healthcode.plugins.mrz_ocr.locate.components import TextLine

LOCATE_SIZE: Final = 900
"""Longer side of the reduced image the lines are located on."""

_Member = tuple[float, int, TextLine]
"""(offset across the seed line, index in the lines, line)."""


def find_text_lines(grey: Any) -> list[TextLine]:
    """Long, thin dark-text components, longest first."""
    small, scale = components.reduce(grey, LOCATE_SIZE)
    mask = components.text_mask(small, 12.0, specks_first=False)
    lines = []
    for _window, xs, ys in components.connected_components(mask):
        if len(xs) < 40:
            continue
        box = components.oriented_box(xs, ys, along=(0, 100), across=(3, 97))
        if box.thickness < 3 or not 10 <= box.length / box.thickness <= 120:
            continue
        lines.append(components.scaled(box, scale))
    lines.sort(key=lambda line: -line.length)
    return lines


def group_zones(lines: Sequence[TextLine], limit: int = 3) -> list[list[TextLine]]:
    """Groups of 1-3 parallel, evenly spaced lines of equal length, top to bottom."""
    groups: list[list[TextLine]] = []
    used: set[int] = set()
    for seed_index, seed in enumerate(lines):
        if seed_index in used or seed.length / seed.thickness < 16:
            continue
        members = _aligned_with(seed, lines, used)
        run = _evenly_spaced_run(seed, seed_index, members)
        for _across, index, _line in run:
            used.add(index)
        groups.append(split_merged([line for _across, _index, line in run]))
        if len(groups) >= limit:
            break
    return groups


def _aligned_with(seed: TextLine, lines: Sequence[TextLine], used: set[int]) -> list[_Member]:
    """The unused lines parallel to ``seed``, as long and level with it, by
    their offset across it (the seed itself included)."""
    cos_a, sin_a = math.cos(seed.angle), math.sin(seed.angle)
    members = []
    for index, line in enumerate(lines):
        if index in used:
            continue
        if abs(line.angle - seed.angle) > math.radians(4):
            continue
        if not 0.85 <= line.length / seed.length <= 1.18:
            continue
        dx, dy = line.cx - seed.cx, line.cy - seed.cy
        along = dx * cos_a + dy * sin_a
        across = -dx * sin_a + dy * cos_a
        if abs(along) > 0.12 * seed.length or abs(across) > 7 * seed.thickness:
            continue
        members.append((across, index, line))
    members.sort()
    return members


def _evenly_spaced_run(seed: TextLine, seed_index: int, members: list[_Member]) -> list[_Member]:
    """The run of up to 3 evenly spaced lines that contains the seed, top to bottom."""
    chosen = [m for m in members if m[1] == seed_index]
    position = members.index(chosen[0])
    run = [members[position]]
    for step in (-1, 1):
        cursor = position
        while len(run) < 3 and 0 <= cursor + step < len(members):
            nxt = members[cursor + step]
            gap = abs(nxt[0] - members[cursor][0])
            if not 1.2 * seed.thickness <= gap <= 3.6 * seed.thickness:
                break
            run.append(nxt)
            cursor += step
    run.sort()
    return run


def split_merged(zone: Sequence[TextLine]) -> list[TextLine]:
    """A zone's lines with any that are two or three lines run together (tightly
    spaced card lines, closed into one band at an angle) split in two or
    three: a line k times as thick as the zone's thinnest is k lines."""
    import attrs

    if len(zone) < 2:
        return list(zone)
    thinnest = min(line.thickness for line in zone)
    split: list[TextLine] = []
    for line in zone:
        k = round(line.thickness / thinnest)
        if k < 2 or len(zone) + k - 1 > 3:
            split.append(line)
            continue
        step = line.thickness / k
        for i in range(k):
            across = (i - (k - 1) / 2) * step
            split.append(
                attrs.evolve(
                    line,
                    cx=line.cx - across * math.sin(line.angle),
                    cy=line.cy + across * math.cos(line.angle),
                    thickness=step,
                )
            )
    return split
