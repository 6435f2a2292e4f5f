"""Which candidate lines are printing — a 1, a 4's stem, a 7's bar are straight lines too.

* Box frames: a vertical candidate spanning from one horizontal candidate to another, about
  as wide as they are (CORE_MATCH: pens write wider than forms print), and crossing no
  third, is a box side; horizontal candidates carrying two sides are box edges, and so are
  those on the same line as a box edge.  Stretches of edges hidden by a digit's stroke along
  them are looked for on the line of the edges found (_hidden_edges), a whole edge hidden so
  on the line through the far ends of sides that end on the other edge (_opposite_edges), and
  sides hidden by a digit written against them where the row of boxes says they must be
  (_hidden_sides: at the edges' ends, between the sides found, beside them).
* Paper rulings: candidates on one straight line ("rows") running from border to border;
  two such rows in one direction, or one EDGE_LONG × the digits' height long.
* Long lines: a horizontal row LONG × the digits' height long (a form's writing line).
  The digits' height is that of the ink left once all candidates are taken out, or of a
  vertical candidate that is no side or ruling (a 1); with neither (a lone, tightly cropped
  1), nothing is removed.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy import ndimage

from digits.reading.printing.bands import DARKER, SHARP_SHARE, removal_mask
from digits.reading.printing.lines import GAP_PX, MIN_LENGTH, STRIP, Line, local_peaks, stretches

# Which candidates are printing.
CORE_MATCH = 1.0  # px: box sides and edges are this alike in their own width
SIDE_TILT = 0.05  # a box side's slope is this close to its neighbours' (perspective)
BEYOND = 0.25  # a box side may run on past its edges by this share of its span
SIDE_MATCH = 0.12  # a box side hidden at one end is this close to the others' length
SIDE_SEARCH = 3  # px around the place a hidden box side should be
SIDE_COVER = 0.9  # share of the rows between the edges a hidden side inks
MAX_BOXES = 12  # most boxes in a row
BOX_ASPECT = (0.4, 2.5)  # a box's width over its height
ROW_COVER = 0.6  # a border-to-border row of candidates is inked this much
EDGE_MARGIN = 0.02  # of the picture's side (at least 4 px): "reaches the border"
EDGE_LONG = 1.5  # × the digits' height: a lone border-to-border row is paper ruling
LONG = 2.5  # × the digits' height: a horizontal row inside the picture is a writing line
STROKE_SHARE = 0.75  # a crossing candidate this much shorter than the box edges is a stroke
MIN_PIECE = 12  # px: smaller bits of other ink are line remnants, not digits


def printed_lines(mask: np.ndarray, raw: np.ndarray, lines: list[Line], rulings_only=False):
    """The candidates that are printed lines: box frames, paper rulings, long lines.

    mask: the ink; raw: the contrast map it comes from, unsmoothed.  Candidates on one
    straight line (a faint line breaks up, a digit may hide a stretch) are judged together,
    as a "row" (_rows).  rulings_only: only paper rulings (border to border) are looked for.
    Returns a list of Line.
    """
    if not lines:
        return []
    printed = set()
    if not rulings_only:
        # Stretches of hidden edges count only as frames: elsewhere they may be a stroke.
        extended = lines + _hidden_edges(raw, lines) + _opposite_edges(raw, lines)
        framed = _frames(extended)
        kept = [k for k in range(len(extended)) if k < len(lines) or k in framed]
        lines = [extended[k] for k in kept]
        printed = {index for index, k in enumerate(kept) if k in framed}
    hidden = [] if rulings_only else _hidden_sides(raw, lines, printed)
    printed |= set(range(len(lines), len(lines) + len(hidden)))
    lines = lines + hidden
    rows = [row for row in _rows(lines) if not set(row) <= printed]
    edge = [_row_reaches_borders([lines[k] for k in row], mask.shape) for row in rows]
    if not any(edge) and (rulings_only or not rows):
        return [lines[k] for k in sorted(printed)]
    ruling = {k for row, reaches in zip(rows, edge, strict=True) if reaches for k in row}
    reference = _digit_height(mask, lines, printed, ruling)
    if reference <= 0:
        return [lines[k] for k in sorted(printed)]
    for vertical in (False, True):
        family = sum(
            reaches and lines[row[0]].vertical == vertical
            for row, reaches in zip(rows, edge, strict=True)
        )
        for row, reaches in zip(rows, edge, strict=True):
            if lines[row[0]].vertical != vertical:
                continue
            members = [lines[k] for k in row]
            length = max(m.stop for m in members) - min(m.start for m in members) + 1
            paper = reaches and (family >= 2 or length >= EDGE_LONG * reference)
            form = not vertical and not rulings_only and length >= LONG * reference
            if paper or form:
                printed |= set(row)
    return [lines[k] for k in sorted(printed)]


def _rows(lines: list[Line]) -> list[list[int]]:
    """Candidates grouped by the straight line they lie on (collinear, as thick)."""
    owner = list(range(len(lines)))

    def root(k):
        while owner[k] != k:
            owner[k] = owner[owner[k]]
            k = owner[k]
        return k

    for i, line in enumerate(lines):
        for j in range(i):
            if lines[j].vertical == line.vertical and _collinear(line, lines[j]):
                owner[root(i)] = root(j)
    groups = {}
    for k in range(len(lines)):
        groups.setdefault(root(k), []).append(k)
    return list(groups.values())


def _row_reaches_borders(members: list[Line], shape) -> bool:
    """Does a row of candidates run from border to border, mostly inked (ROW_COVER)?"""
    size = shape[0] if members[0].vertical else shape[1]
    margin = _edge_margin(size)
    start, stop = min(m.start for m in members), max(m.stop for m in members)
    covered = sum(m.length for m in members) / (stop - start + 1)
    return start <= margin and stop >= size - 1 - margin and covered >= ROW_COVER


def _edge_margin(size: int) -> float:
    """How near a border a line must end to reach it, on a side of `size` px."""
    return max(4, EDGE_MARGIN * size)


def ink_near_both_borders(continuous: np.ndarray, vertical: bool) -> bool:
    """Whether the ink a line of that direction must be continuous on comes within the edge
    margin of both borders it would run between.  A candidate starts and stops on that ink
    (lines.stretches), so without it no row of candidates reaches both borders
    (_row_reaches_borders) and there is no paper ruling to find."""
    view = continuous.T if vertical else continuous
    size = view.shape[1]
    first = math.floor(_edge_margin(size))  # a start ≤ margin is a column ≤ first
    last = max(math.ceil(size - 1 - _edge_margin(size)), 0)  # a stop ≥ size - 1 - margin
    return bool(view[:, : first + 1].any() and view[:, last:].any())


def _digit_height(mask: np.ndarray, lines: list[Line], framed: set[int], ruling: set[int]):
    """How tall the digits are: the tallest piece of ink once every candidate is taken
    out (strokes crossing them kept), or the longest vertical candidate that is neither a
    box side nor on a border-to-border row (a 1 is a digit's height); 0 when neither."""
    other = mask & ~removal_mask(mask, lines)
    pieces, count = ndimage.label(other, structure=np.ones((3, 3), bool))
    tallest = 0
    if count:
        areas = np.bincount(pieces.ravel())
        for index, found in enumerate(ndimage.find_objects(pieces), start=1):
            if found is not None and areas[index] >= MIN_PIECE:
                tallest = max(tallest, found[0].stop - found[0].start)
    for k, line in enumerate(lines):
        if line.vertical and k not in framed and k not in ruling:
            tallest = max(tallest, line.length)
    return float(tallest)


def _frames(lines: list[Line]) -> set[int]:
    """Indices of the box sides and box edges among the candidates (module docstring).

    A vertical candidate that spans from one horizontal candidate to another (ending on
    them, or passing a little beyond where a digit's stroke continues it) is a side.  Where
    a digit hides one edge of a box (lying along it), its sides still meet the other edge:
    a vertical candidate meeting one edge at one end is a side too if it is as long as the
    sure sides (within SIDE_MATCH) and as thick.  Edges carrying two sides or more are box
    edges, and so are edges on the same straight line as a box edge (the next box in the
    row).
    """
    edges = [k for k, line in enumerate(lines) if not line.vertical]
    met = {
        k: _edges_met(line, [lines[e] for e in edges])
        for k, line in enumerate(lines)
        if line.vertical
    }
    sure = [k for k, pair in met.items() if len(pair) == 2]
    if not sure:
        return set()
    length = float(np.median([lines[k].length for k in sure]))
    typical = lines[sure[len(sure) // 2]]
    tilt = _tilt(lines, sure)
    sides = {}
    for k, pair in met.items():
        side = lines[k]
        if abs(side.slope - tilt(side)) > SIDE_TILT:
            continue  # slanted unlike the row's sides: a digit's stroke
        like = abs(side.length - length) <= SIDE_MATCH * length and _alike(side, typical)
        if len(pair) == 2 or (like and pair):
            sides[k] = {edges[e] for e in pair}
    carried = {}
    for attached in sides.values():
        for e in attached:
            carried[e] = carried.get(e, 0) + 1
    framed = {e for e, count in carried.items() if count >= 2}
    # A row of boxes shares its top and bottom lines: a box whose sides are partly hidden
    # by its digit still has its edges on the same lines as its neighbours'.
    framed |= {e for e in edges if any(_collinear(lines[e], lines[f]) for f in framed)}
    return framed | {k for k, attached in sides.items() if attached & framed}


def _tilt(lines: list[Line], sure: list[int]):
    """The slope box sides have where a side stands: perspective turns them gradually
    along the row, so a straight fit of slope over position, robust to a stray stroke."""
    columns = np.array([lines[k].intercept for k in sure])
    slopes = np.array([lines[k].slope for k in sure])
    if np.ptp(columns) < 1:
        middle = float(np.median(slopes))
        return lambda side: middle
    fit = np.polyfit(columns, slopes, 1)
    if len(sure) >= 3:
        close = np.abs(np.polyval(fit, columns) - slopes) <= SIDE_TILT
        if close.sum() >= 2:
            fit = np.polyfit(columns[close], slopes[close], 1)
    return lambda side: float(np.polyval(fit, side.intercept))


def _edges_met(side: Line, edges: list[Line]) -> list[int]:
    """The top and bottom edges a vertical candidate spans between ([] or [one] if not).

    Edges are horizontal candidates about as thick as the side (printed by the same press)
    that it crosses or ends on; it may run on beyond them by BEYOND of the span between
    them (a digit's stroke continuing its line), and must end on one within a few px
    where it meets only one.  One that crosses three lines or more is squared paper.
    """
    crossed = {}  # row (rounded) → (how far the side is beyond the edge's end, row, edge)
    for k, edge in enumerate(edges):
        tolerance = edge.half_band + side.half_band + 2
        # Where they cross: row = edge(column), column = side(row).
        row = (edge.intercept + edge.slope * side.intercept) / (1 - edge.slope * side.slope)
        column = side.across(row)
        # An edge's end may be lost under a digit or in faint print: allow a strip beyond.
        beyond = max(edge.start - column, column - edge.stop, 0)
        if beyond > tolerance + STRIP or not side.start - tolerance <= row <= side.stop + tolerance:
            continue
        if not _alike(side, edge):
            continue
        key = next((r for r in crossed if abs(r - row) <= tolerance), round(row))
        crossed[key] = min(crossed.get(key, (math.inf,)), (beyond, row, k))
    found = sorted(crossed.values(), key=lambda c: c[1])
    if len(found) > 2 and all(_inside_stroke(edges[k], found, edges) for _, _, k in found[1:-1]):
        found = [found[0], found[-1]]  # a digit's stroke crossing the side inside its box
    if not found or len(found) > 2:
        return []
    tolerance = side.half_band + 4
    if len(found) == 2:
        (_, top, upper), (_, bottom, lower) = found
        slack = BEYOND * (bottom - top) + tolerance
        if top - side.start <= slack and side.stop - bottom <= slack:
            return [upper, lower]
        return []
    _, row, edge = found[0]
    if min(abs(row - side.start), abs(row - side.stop)) <= tolerance:
        return [edge]  # one edge, at one end of the side
    return []


def _inside_stroke(line: Line, found: list, edges: list[Line]) -> bool:
    """Whether a horizontal candidate a side crosses between its outermost crossings is a
    digit's stroke, not a third printed line: unlike them in slope, or much shorter."""
    outer = [edges[found[0][2]], edges[found[-1][2]]]
    slope = sum(edge.slope for edge in outer) / 2
    shortest = min(edge.length for edge in outer)
    return abs(line.slope - slope) > SIDE_TILT or line.length < STROKE_SHARE * shortest


def _hidden_sides(raw: np.ndarray, lines: list[Line], framed: set[int]) -> list[Line]:
    """Box sides the candidates missed, found where a row of boxes says they must be.

    A digit written against a side makes the ink there too thick to be taken for a line.
    But a row of boxes is regular: a side stands at each end of the box edges, and walls
    divide the row into boxes of one width (about as wide as tall, BOX_ASPECT).  The
    squarest boxes for which every dividing wall is a side already found or a straight
    vertical run of ink from edge to edge (_walls_near) decide where the hidden sides are.
    """
    edges = [k for k in framed if not lines[k].vertical]
    met = {
        k: {edges[e] for e in _edges_met(lines[k], [lines[e] for e in edges])}
        for k in framed
        if lines[k].vertical
    }
    found = []
    for top, bottom in {tuple(sorted(pair)) for pair in met.values() if len(pair) == 2}:
        sides = [lines[k] for k, pair in met.items() if pair == {top, bottom}]
        upper, lower = sorted((lines[top], lines[bottom]), key=lambda edge: edge.intercept)
        row = Row(raw, upper, lower, sides)
        # Sides stand where the edges end: the shorter edge, or the longer one where a digit
        # on the shorter one hid its end.
        searched = list(row.columns)
        new = []
        for end in sorted({upper.start, lower.start, upper.stop, lower.stop}):
            if min(abs(end - column) for column in searched) > SIDE_SEARCH + 2:
                searched.append(end)
                new += row.walls_near(end)
        row.add(new)
        walls = row.dividing_walls()
        row.add(walls)
        found += new + walls + row.partners()
    return found


def _hidden_edges(raw: np.ndarray, lines: list[Line]) -> list[Line]:
    """Stretches of box edges the candidates missed, on the straight line of edges found.

    A digit's stroke running along its box's edge makes the ink there too thick to be taken
    for a line, but the edges of the row's other boxes show where it runs: along the line
    of collinear horizontal candidates, each stretch of the ink itself (not blurred) that
    follows it within a px (breaks of GAP_PX bridged), at least half as long as the
    shortest of them, is a candidate too.
    """
    edges = [line for line in lines if not line.vertical]
    found = []
    for row in _rows(edges):
        members = [edges[k] for k in row]
        longest = max(members, key=lambda edge: edge.length)
        level = SHARP_SHARE * float(np.median([edge.darkness for edge in members]))
        on = _inked_along(raw, longest, np.arange(raw.shape[1]), level)
        for edge in members:
            on[max(edge.start - GAP_PX, 0) : edge.stop + GAP_PX + 1] = False
        shortest = min(edge.length for edge in members) / 2
        found += [
            replace(longest, start=first, stop=last)
            for first, last in stretches(on, 0, raw.shape[1] - 1, shortest)
        ]
    return found


def _opposite_edges(raw: np.ndarray, lines: list[Line]) -> list[Line]:
    """Box edges the candidates missed entirely, found where the box sides end.

    Digits written against the top (or bottom) of every box leave no stretch of that edge
    thin enough for a candidate, and without two edges no frame is found: the sides and the
    other edge stay, and are read as 1s. But two sides or more that end on one edge, alike in
    length (SIDE_MATCH) and at least MIN_LENGTH apart, end on the other one too: where the ink
    itself (not blurred) follows the straight line through their other ends (within
    SIDE_SEARCH px, breaks of GAP_PX bridged) all the way between the outermost of them, that
    line is a candidate edge, printed like the edge they share.
    """
    edges = [line for line in lines if not line.vertical]
    ending: dict[int, list[Line]] = {}
    for side in (line for line in lines if line.vertical):
        met = _edges_met(side, edges)
        if len(met) == 1:
            ending.setdefault(met[0], []).append(side)
    found = []
    for index, sides in ending.items():
        edge = edges[index]
        length = float(np.median([side.length for side in sides]))
        sides = [side for side in sides if abs(side.length - length) <= SIDE_MATCH * length]
        if len(sides) < 2:
            continue
        rows, columns = np.array([_far_end(side, edge) for side in sides]).T
        if np.ptp(columns) < MIN_LENGTH:
            continue  # too close together to say which way the edge runs
        slope, intercept = np.polyfit(columns, rows, 1)
        along = np.arange(math.floor(columns.min()), math.ceil(columns.max()) + 1)
        level = SHARP_SHARE * edge.darkness
        for shift in range(-SIDE_SEARCH, SIDE_SEARCH + 1):
            line = replace(edge, intercept=float(intercept + shift), slope=float(slope))
            on = _inked_along(raw, line, along, level)
            if stretches(on, 0, len(on) - 1, len(on) - 2 * GAP_PX):
                found.append(replace(line, start=int(along[0]), stop=int(along[-1])))
                break
    return found


def _inked_along(raw: np.ndarray, line: Line, along: np.ndarray, level: float) -> np.ndarray:
    """Per column of `along`, whether the ink itself (raw, not blurred) reaches `level` within
    a px of a horizontal line there."""
    rows = np.round(line.across(along)).astype(int)[None, :] + np.arange(-1, 2)[:, None]
    return _inked(raw, rows, along[None, :], level).any(axis=0)


def _inked(raw: np.ndarray, rows: np.ndarray, columns: np.ndarray, level: float) -> np.ndarray:
    """Whether the ink itself (raw, not blurred) reaches `level` at these (broadcast) rows and
    columns; places outside the picture are paper."""
    height, width = raw.shape
    inside = (rows >= 0) & (rows < height) & (columns >= 0) & (columns < width)
    return inside & (raw[np.clip(rows, 0, height - 1), np.clip(columns, 0, width - 1)] >= level)


def _far_end(side: Line, edge: Line) -> tuple[float, float]:
    """(row, column) of the end of a box side away from the edge it ends on."""
    edge_row = edge.across(side.across((side.start + side.stop) / 2))
    near_top = abs(edge_row - side.start) < abs(edge_row - side.stop)
    row = side.stop if near_top else side.start
    return row, side.across(row)


class Row:
    """A row of boxes between two edges, with the sides found so far (for _hidden_sides)."""

    def __init__(self, raw, upper: Line, lower: Line, sides: list[Line]):
        self.upper, self.lower = upper, lower
        self.middle = (
            upper.across(upper.start + upper.length / 2)
            + lower.across(lower.start + lower.length / 2)
        ) / 2
        self.slope = float(np.median([side.slope for side in sides]))
        self.thickness = float(np.median([side.thickness for side in sides]))
        self.core = float(np.median([side.core for side in sides]))
        self.darkness = float(np.median([side.darkness for side in sides]))
        self.columns = sorted(self.column_of(side) for side in sides)
        # Walls are looked for in the ink itself, not blurred: two sides a few px apart stay two.
        self.raw = raw
        self.ink_level = SHARP_SHARE * self.darkness

    def column_of(self, side: Line) -> float:
        return side.across(self.middle)

    def add(self, walls: list[Line]) -> None:
        """Count these walls among the sides found."""
        self.columns = sorted(self.columns + [self.column_of(wall) for wall in walls])

    def _rows_between_edges(self, column: float) -> np.ndarray:
        """The rows between the edges' bands at `column`."""
        return np.arange(
            math.ceil(self.upper.across(column) + self.upper.half_band),
            math.floor(self.lower.across(column) - self.lower.half_band) + 1,
        )

    def walls_near(self, column: float) -> list[Line]:
        """Straight vertical runs of ink from edge to edge within SIDE_SEARCH + 4 px of
        `column` (SIDE_COVER of the rows between the edges): one, or two close together
        (the sides of two neighbouring boxes)."""
        upper, lower = self.upper, self.lower
        rows = self._rows_between_edges(column)
        if rows.size < MIN_LENGTH:
            return []
        shifts = np.arange(-SIDE_SEARCH - 4, SIDE_SEARCH + 5)
        at = np.round(column + shifts[:, None] + self.slope * (rows[None, :] - self.middle))
        at = at.astype(int)
        cover = _inked(self.raw, rows[None, :], at, self.ink_level)
        peaks = local_peaks(cover.mean(axis=1), SIDE_COVER)
        start = max(round(upper.across(column) - upper.half_band), 0)
        stop = min(round(lower.across(column) + lower.half_band), self.raw.shape[0] - 1)
        return [
            Line(
                True,
                column + shifts[k] - self.slope * self.middle,
                self.slope,
                start,
                stop,
                self.thickness,
                self.core,
                self.darkness,
            )
            for k in peaks
        ]

    def dividing_walls(self) -> list[Line]:
        """The walls hidden between the sides found, for the squarest boxes that fit them.

        Sides found close together (two separate boxes' sides) stand for one wall.  Between
        neighbouring walls a whole number of boxes must fit (within a quarter box: perspective
        narrows them along the row), and each gap's hidden walls divide it evenly.
        """
        left, right = self.columns[0], self.columns[-1]
        height = self.lower.intercept - self.upper.intercept
        counts = [
            boxes
            for boxes in range(2, MAX_BOXES + 1)
            if BOX_ASPECT[0] * height <= (right - left) / boxes <= BOX_ASPECT[1] * height
        ]
        for boxes in sorted(counts, key=lambda n: abs(math.log((right - left) / n / height))):
            width = (right - left) / boxes
            walls = _merged(self.columns, 0.5 * width)
            gaps = np.diff(walls)
            parts = np.round(gaps / width).astype(int)
            if len(walls) < 2 or parts.min() < 1 or parts.sum() != boxes:
                continue
            if np.abs(gaps / width - parts).max() > 0.25:
                continue
            places = [
                low + k * gap / part
                for low, gap, part in zip(walls[:-1], gaps, parts, strict=True)
                for k in range(1, part)
            ]
            found = [self.walls_near(place) for place in places]
            if all(found):
                return [wall for near in found for wall in near]
        return []

    def partners(self) -> list[Line]:
        """Hidden sides of separate boxes: the side beside each inner side found, where the next
        box begins (a digit written against it, or close to it, made it too thick to be found),
        no darker than DARKER × the sides (else a pen's stroke). It is looked for a few px away,
        and, beside a side found alone, as far away as the row's pairs of sides found are apart
        (on one side only: on both, one of the two would be a stroke)."""
        found = []
        spacing = self._pair_spacing()
        for column in self.columns[1:-1]:
            walls = self.walls_near(column)
            alone = not any(0 < abs(other - column) <= 1.5 * spacing for other in self.columns)
            if spacing and alone:
                beside = [self.walls_near(column + sign * spacing) for sign in (-1, 1)]
                if sum(bool(self._new(near)) for near in beside) == 1:
                    walls += beside[0] + beside[1]
            found += [wall for wall in self._new(walls) if self._printed(wall)]
        return found

    def _new(self, walls: list[Line]) -> list[Line]:
        """The walls more than 2 px from every side found."""
        return [
            wall
            for wall in walls
            if min(abs(self.column_of(wall) - column) for column in self.columns) > 2
        ]

    def _pair_spacing(self) -> float:
        """How far apart the two sides of neighbouring separate boxes are: the median of the
        gaps between sides found closer than a quarter of the row's height (0: no such pair)."""
        height = self.lower.intercept - self.upper.intercept
        gaps = [gap for gap in np.diff(self.columns) if 2 < gap < 0.25 * height]
        return float(np.median(gaps)) if gaps else 0.0

    def _printed(self, wall: Line) -> bool:
        rows = self._rows_between_edges(self.column_of(wall))
        columns = np.clip(np.round(wall.across(rows)).astype(int), 0, self.raw.shape[1] - 1)
        centre = self.raw[np.clip(rows, 0, self.raw.shape[0] - 1), columns]
        return float(np.median(centre)) <= DARKER * self.darkness


def _merged(columns: list[float], closer: float) -> list[float]:
    """Sorted columns with each run of columns closer than `closer` to the next one merged
    into their mean."""
    runs = [[columns[0]]]
    for column in columns[1:]:
        if column - runs[-1][-1] < closer:
            runs[-1].append(column)
        else:
            runs.append([column])
    return [sum(run) / len(run) for run in runs]


def _collinear(line: Line, other: Line) -> bool:
    """On one straight line (within 2 px where each ends) and about as wide."""
    ends = np.array([line.start, line.stop, other.start, other.stop])
    return bool(np.all(np.abs(line.across(ends) - other.across(ends)) <= 2) and _alike(line, other))


def _alike(line: Line, other: Line) -> bool:
    """Printed by the same press: their own widths within CORE_MATCH."""
    return abs(line.core - other.core) <= max(CORE_MATCH, 0.25 * max(line.core, other.core))
