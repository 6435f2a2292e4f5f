"""How many digits each group of ink holds, and where they are: the string model reads rows.

    split_groups(groups, string_model) -> per group: the spans of the digits read in it

`segment` finds groups of connected ink; a group may hold several digits that touch or overlap
("00", "147" written in a hurry). The groups that share a row are pasted side by side into one
line — their own ink only, wide blank gaps shrunk, so that every digit is seen at the height of
its neighbours — and the string model reads the line. A group in which it reads two or more
digits is split at the cuts it gives; the others stay whole, for the digit model to read, and a
group in which it reads one digit keeps that reading too: the two models' probabilities are
combined (`reader`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits.reading.ctc import LineDigit, StringModel
from digits.reading.mnist_style import LINE_MARGIN, to_line

# Groups share a row when their heights overlap by at least this fraction of the shorter one.
ROW_OVERLAP = 0.5
# Blank gaps between groups wider than this × the row's height are shrunk to it in the line:
# the string model was trained on numbers, not on digits a page apart.
MAX_GAP = 0.6
# A digit belongs to the group with the most ink within this many line columns of its centre.
OWNER_REACH = 2
# A digit split off a group must hold at least this fraction of its fair share (1 / digits) of the
# group's firm ink (ink at least FIRM_INK), unless the string model is SURE of it (its top
# probability): the faint haze or smudge beside a digit, which the string model may read as
# another digit, holds almost none (4 % of a pair's firm ink, 0.08 of its fair share, where a 1
# beside another digit holds 40 %), and the model is less sure of it (0.87). The middle digit of
# three overlapping ones may hold as little between its cuts (0.04 of its fair share in "340"),
# but there the model is sure (above 0.99).
MIN_FIRM_SHARE = 0.1
FIRM_INK = 0.5
SURE = 0.95


@dataclass(frozen=True)
class GroupInk:
    """A group's own ink (other groups' ink masked out) and where it lies in the picture."""

    ink: np.ndarray  # (y1 - y0, x1 - x0) floats in [0, 1]
    x0: int
    y0: int

    @property
    def x1(self) -> int:
        return self.x0 + self.ink.shape[1]

    @property
    def y1(self) -> int:
        return self.y0 + self.ink.shape[0]


@dataclass(frozen=True)
class DigitSpan:
    """One digit of a split group: its columns within the group, and what the string model read."""

    start: int
    stop: int
    probabilities: np.ndarray  # (10,) float32, index = digit


def split_groups(groups: list[GroupInk], string_model: StringModel) -> list[list[DigitSpan]]:
    """For each group, the digits the string model read in it, left to right: none, one (the
    whole group, for the digit model to read as well) or several (where to split it)."""
    spans: list[list[DigitSpan]] = [[] for _ in groups]
    for row in _rows(groups):
        for index, digits in enumerate(_read_row([groups[i] for i in row], string_model)):
            spans[row[index]] = digits
    return spans


def _rows(groups: list[GroupInk]) -> list[list[int]]:
    """Indices of the groups in each row, each row left to right."""
    rows: list[list[int]] = []
    for index in sorted(range(len(groups)), key=lambda i: -(groups[i].y1 - groups[i].y0)):
        group = groups[index]
        for row in rows:
            top, bottom = min(groups[i].y0 for i in row), max(groups[i].y1 for i in row)
            shared = min(bottom, group.y1) - max(top, group.y0)
            if shared >= ROW_OVERLAP * min(bottom - top, group.y1 - group.y0):
                row.append(index)
                break
        else:
            rows.append([index])
    return [sorted(row, key=lambda i: groups[i].x0) for row in rows]


def _read_row(row: list[GroupInk], string_model: StringModel) -> list[list[DigitSpan]]:
    """The digits the string model read in each group of one row (left to right)."""
    pasted, shifts = _pasted(row)
    line, geometry = to_line(pasted)
    digits = string_model.read(line)
    owners = [_owner(row, shifts, digit, geometry) for digit in digits]
    read = []
    for index, group in enumerate(row):
        own = [digit for digit, owner in zip(digits, owners, strict=True) if owner == index]
        spans = _spans(own, group, shifts[index], geometry) if own else []
        if len(own) >= 2:
            firm = group.ink >= FIRM_INK
            share = [firm[:, span.start : span.stop].sum() / max(1, firm.sum()) for span in spans]
            least = MIN_FIRM_SHARE / len(own)
            kept = [
                digit
                for digit, part in zip(own, share, strict=True)
                if part >= least or digit.probabilities.max() >= SURE
            ]
            if len(kept) < len(own):  # the cuts move with the digits dropped
                spans = _spans(kept, group, shifts[index], geometry) if kept else []
        read.append(spans)
    return read


def _pasted(row: list[GroupInk]) -> tuple[np.ndarray, list[int]]:
    """The row's groups pasted into one array, wide gaps shrunk; and each group's column shift."""
    top = min(group.y0 for group in row)
    height = max(group.y1 for group in row) - top
    widest_gap = int(MAX_GAP * height)
    shifts, right_edge, shifted_edge = [], None, 0
    for group in row:
        if right_edge is None:
            shift = LINE_MARGIN - group.x0
        else:
            gap = group.x0 - right_edge
            shift = shifted_edge - right_edge + (min(gap, widest_gap) - gap if gap > 0 else 0)
        shifts.append(shift)
        if right_edge is None or group.x1 > right_edge:
            right_edge, shifted_edge = group.x1, group.x1 + shift
    width = max(group.x1 + shift for group, shift in zip(row, shifts, strict=True)) + LINE_MARGIN
    pasted = np.zeros((height, width), np.float32)
    for group, shift in zip(row, shifts, strict=True):
        window = pasted[group.y0 - top : group.y1 - top, group.x0 + shift : group.x1 + shift]
        np.maximum(window, group.ink, out=window)
    return pasted, shifts


def _owner(row: list[GroupInk], shifts: list[int], digit: LineDigit, geometry) -> int:
    """The group a digit the string model read belongs to: the one with the most own ink around
    the digit's centre, else the nearest."""
    centre = geometry.to_ink(digit.centre)
    reach = max(1, round(OWNER_REACH / geometry.scale))
    ink, distance = [], []
    for group, shift in zip(row, shifts, strict=True):
        local = round(centre) - group.x0 - shift
        window = group.ink[:, max(0, local - reach) : max(0, local + reach + 1)]
        ink.append(float(window.sum()))
        distance.append(max(0, -local, local - group.ink.shape[1]))
    return int(np.argmax(ink)) if max(ink) > 0 else int(np.argmin(distance))


def _spans(digits: list[LineDigit], group: GroupInk, shift: int, geometry) -> list[DigitSpan]:
    """The digits' columns within the group, from the string model's cuts."""
    width = group.ink.shape[1]
    edges = [round(geometry.to_ink(digit.columns[0])) - group.x0 - shift for digit in digits]
    edges = [0] + [min(max(edge, 1), width - 1) for edge in edges[1:]] + [width]
    return [
        DigitSpan(start, max(stop, start + 1), digit.probabilities.astype(np.float32))
        for digit, start, stop in zip(digits, edges[:-1], edges[1:], strict=True)
    ]
