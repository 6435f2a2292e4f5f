"""Thin straight lines in an ink map: the candidates for printed lines.

Horizontal lines are found directly, vertical ones the same way on the transposed map:

1. Cells.  The ink (smoothed ALONG px along the direction, so a faint grainy line does not
   break up) above the level is cut into strips STRIP px wide.  A row of a strip belongs to
   a line there when it is FILL full (±1 row, for tilt) in a run of such rows at most
   CELL_RUN thick: a digit's vertical or slanted stroke fills a strip's row only partly.
2. Hough.  Each run's middle votes for (slope, intercept) lines up to MAX_SLOPE; peaks with
   MIN_VOTES strips or more, strongest first, collect the unused runs near them
   (CELL_TOLERANCE) split where GAP_STRIPS strips are missing.
3. Measure.  Each peak's line is moved onto the ink (two close lines both found), refitted
   to its pixels, and cut where its ink stops for more than GAP_PX px (digits in a row line up
   for the votes, but with paper between them): stretches at least MIN_LENGTH long, at most
   MAX_THICKNESS thick, are candidates, with their thickness at the ink level (their band)
   and their own width ("core": ink across them over their darkness).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

# Finding lines.  Smoothed ink (1 = typical ink) above LINE_LEVEL is looked at: below
# segmentation's EDGE_LEVEL (0.2), so that every line segmentation could see is found.
LINE_LEVEL = 0.15
ALONG = 9  # px of smoothing along a direction to find its lines
STRIP = 8  # px
FILL = 0.75  # share of a strip's row a line covers
CELL_RUN = 13  # rows: thin enough for a line, or two lines a few px apart (separate boxes)
MAX_SLOPE = 0.2  # about 11°: perspective and a tilted photo, not a digit's diagonal
SLOPE_STEP = 0.01  # Hough resolution; each line is then refitted to its pixels
MIN_STRIPS = 4  # Hough peaks need runs in this many strips
MIN_VOTES = MIN_STRIPS  # one vote per strip (the middle of its run)
MAX_PEAKS = 400
CELL_TOLERANCE = 3.0  # rows: runs this close to a Hough line belong to it
GAP_STRIPS = 3  # crossing strokes may hide a line for this many strips (24 px)
SHIFT = 5  # px: a Hough line through two close lines' middle is moved onto each
MAX_RUN = 9  # rows: a 4-px line, blurred, across which runs are measured
MIN_LENGTH = MIN_STRIPS * STRIP  # px: shorter stretches of a line are not candidates
GAP_PX = 4  # a printed line's ink may break this much (faint print, JPEG)
MAX_THICKNESS = 7  # px across (blurred ink at LINE_LEVEL): printed lines are 1–4 px


@dataclass(frozen=True)
class Line:
    """A straight line: across = intercept + slope·along, from start to stop (inclusive).

    For a horizontal line `along` is the column and `across` the row; for a vertical one
    the other way round.
    """

    vertical: bool
    intercept: float
    slope: float
    start: int
    stop: int
    thickness: float  # run of ink across the line at the ink level, px (its band's width)
    core: float = 0.0  # its own width (ink across it over its darkness), px
    darkness: float = math.inf  # its ink at its centre (the raw map), median along it

    @property
    def length(self) -> int:
        return self.stop - self.start + 1

    @property
    def half_band(self) -> int:
        return math.ceil(self.thickness / 2) + 1

    def across(self, along):
        return self.intercept + self.slope * along


def candidates(values, level: float, vertical: bool, mask, raw) -> list[Line]:
    """Thin straight lines in one direction (the module's steps 1 to 3).

    values: the ink map smoothed along that direction, ink where above `level`;
    mask: the ink itself, by which a line must be continuous; raw: the ink map before
    any smoothing, for the lines' own widths.
    """
    if values.shape[0 if vertical else 1] < MIN_LENGTH:
        return []  # no stretch of MIN_LENGTH fits (stretches): an MNIST-sized picture
    view = np.ascontiguousarray(values.T) > level if vertical else values > level
    plain = np.ascontiguousarray(mask.T) if vertical else mask
    raw = np.ascontiguousarray(raw.T) if vertical else raw
    cells = _line_cells(view)
    # A candidate needs a run of MIN_STRIPS strips with cells near one line (_runs): with
    # fewer strips holding any cell at all there is none, and the Hough votes are spared.
    if cells is None or np.count_nonzero(cells.any(axis=0)) < MIN_STRIPS:
        return []
    rows, strips = _run_middles(cells)
    free = np.ones(len(rows), bool)
    lines = []
    along = _along(strips)
    for slope, intercept in _peaks(rows, strips, view.shape):
        near = free & (np.abs(rows - intercept - slope * along) <= CELL_TOLERANCE)
        for run in _runs(np.unique(strips[near])):
            # The run's cells are used up, found a line or not, so that no weaker peak
            # follows them again (a thick stroke would be tried at every nearby slope).
            free &= ~(near & (strips >= run[0]) & (strips <= run[-1]))
            stop = min(int(run[-1] * STRIP + STRIP - 1), view.shape[1] - 1)
            peak = Line(vertical, intercept, slope, int(run[0] * STRIP), stop, 0.0)
            for shifted in _on_ink(peak, view):
                for line in _measured(shifted, view, raw, plain):
                    # So are the cells along all of the line found.
                    free &= ~(
                        (np.abs(rows - line.across(along)) <= CELL_TOLERANCE)
                        & (along >= line.start - STRIP)
                        & (along <= line.stop + STRIP)
                    )
                    if not any(_same(line, other) for other in lines):
                        lines.append(line)
    return lines


def _same(line: Line, other: Line) -> bool:
    """Do two candidates of one direction cover the same stretch of the same line (their
    centres within half a line's thickness; two boxes' sides 5 px apart are two lines)?"""
    start, stop = max(line.start, other.start), min(line.stop, other.stop)
    if stop - start < 0.5 * min(line.length, other.length):
        return False
    ends = np.array([start, stop])
    apart = np.abs(line.across(ends) - other.across(ends))
    return bool(np.all(apart <= max(2, min(line.thickness, other.thickness) / 2)))


def _run_middles(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, strip) of the middle of each run of cells down a strip: one vote per run, so
    that a thick run (two lines close together) votes for the line through its middle,
    not for any line that fits inside it."""
    padded = np.zeros((cells.shape[0] + 2, cells.shape[1]), np.int8)
    padded[1:-1] = cells
    change = np.diff(padded, axis=0)
    first_rows, first_strips = np.nonzero(change == 1)
    last_rows, last_strips = np.nonzero(change == -1)
    order_first = np.lexsort((first_rows, first_strips))
    order_last = np.lexsort((last_rows, last_strips))
    middles = (first_rows[order_first] + last_rows[order_last] - 1) // 2
    return middles, first_strips[order_first]


def _on_ink(peak: Line, view: np.ndarray) -> list[Line]:
    """The peak's line moved onto the ink: to each offset (within ±SHIFT px) where more of
    its columns are inked than at the offsets beside it (two close lines give two)."""
    height = view.shape[0]
    along = np.arange(peak.start, peak.stop + 1)
    offsets = np.arange(-SHIFT, SHIFT + 1)
    rows = np.round(peak.across(along))[None, :].astype(int) + offsets[:, None]
    inside = (rows >= 0) & (rows < height)
    cover = (inside & view[np.clip(rows, 0, height - 1), along[None, :]]).mean(axis=1)
    shifts = offsets[local_peaks(cover, 0.5)]
    return [replace(peak, intercept=peak.intercept + float(shift)) for shift in shifts]


def local_peaks(values: np.ndarray, least: float) -> list[int]:
    """Indices of the local maxima of `values` at least `least` (the middle of a plateau)."""
    padded = np.r_[-np.inf, values, -np.inf]
    peaks, k = [], 1
    while k <= len(values):
        end = k
        while end < len(values) and padded[end + 1] == padded[k]:
            end += 1
        if padded[k] >= least and padded[k] > padded[k - 1] and padded[k] > padded[end + 1]:
            peaks.append((k + end) // 2 - 1)
        k = end + 1
    return peaks


def _along(strips):
    return strips * STRIP + STRIP / 2


def _line_cells(view: np.ndarray) -> np.ndarray | None:
    """(rows × strips) bool: the strip's row is FILL full of ink, in a thin run of such rows."""
    height, width = view.shape
    strips = -(-width // STRIP)
    if strips < MIN_STRIPS or height < 3:
        return None
    tall = np.zeros((height, strips * STRIP), bool)
    tall[:, :width] = view
    tall[1:, :width] |= view[:-1]
    tall[:-1, :width] |= view[1:]
    counts = tall.reshape(height, strips, STRIP).sum(axis=2)
    sizes = np.full(strips, STRIP)
    sizes[-1] = width - (strips - 1) * STRIP
    cells = counts >= FILL * sizes
    thick = ndimage.binary_opening(cells, structure=np.ones((CELL_RUN + 1, 1), bool))
    return cells & ~thick


def _peaks(rows, strips, shape) -> list[tuple[float, float]]:
    """Hough votes of the cells for (slope, intercept) lines: the strongest local maxima.

    Each run's middle votes once per slope for the intercept row it implies (counted over
    3 rows); a line of n strips gets about n votes.  Peaks below MIN_VOTES, or beyond the
    MAX_PEAKS strongest, are ignored.
    """
    slopes = np.arange(-MAX_SLOPE, MAX_SLOPE + 1e-9, SLOPE_STEP)
    reach = MAX_SLOPE * shape[1] + 2
    bins = int(shape[0] + 2 * reach) + 1
    implied = rows[None, :] - slopes[:, None] * _along(strips)[None, :] + reach
    index = np.arange(len(slopes))[:, None] * bins + np.round(implied).astype(int)
    votes = np.bincount(index.ravel(), minlength=len(slopes) * bins).reshape(len(slopes), bins)
    votes = ndimage.uniform_filter1d(votes.astype(np.float32), 3, axis=1) * 3
    # Tiny terms break ties, so that a plateau of equal votes gives one peak, not many:
    # the smaller slope wins (lines are near level more often than not), then the row.
    votes -= 0.01 * np.abs(slopes.astype(np.float32))[:, None] / MAX_SLOPE
    votes += np.linspace(0, 0.001, bins, dtype=np.float32)[None, :]
    peaks = (votes == ndimage.maximum_filter(votes, size=(21, 5))) & (votes > MIN_VOTES - 0.5)
    slope_index, row = np.nonzero(peaks)
    order = np.argsort(-votes[slope_index, row])[:MAX_PEAKS]
    return [
        (float(slopes[i]), float(r - reach))
        for i, r in zip(slope_index[order], row[order], strict=True)
    ]


def _runs(strips: np.ndarray) -> list[np.ndarray]:
    """Sorted strips split where more than GAP_STRIPS are missing; runs of MIN_STRIPS or more."""
    if strips.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(strips) > GAP_STRIPS + 1) + 1
    return [run for run in np.split(strips, breaks) if len(run) >= MIN_STRIPS]


def _measured(line: Line, view: np.ndarray, raw: np.ndarray, plain: np.ndarray):
    """The line refitted to its pixels and cut into its stretches of continuous ink (gaps of
    at most GAP_PX), each at least MIN_LENGTH long, thin, and with its own thickness.

    Collinear strokes of neighbouring digits line up for the Hough votes too, but with paper
    between them; a printed line is continuous (a crossing stroke only adds ink).
    """
    height, width = view.shape
    local = np.arange(max(line.start - STRIP, 0), min(line.stop + STRIP, width - 1) + 1)
    middles, runs = runs_across(view, line.across(local), local)
    if not _thin(runs):
        return []  # a thick stroke's Hough peak: not worth following along the picture
    # Sub-pixel refit on the bare stretches near the cells (not where digits cross).
    bare = (runs > 0) & (runs <= MAX_RUN) & (np.abs(middles - line.across(local)) <= 1.5)
    if bare.sum() >= MIN_LENGTH / 2:
        x, y = local[bare].astype(float), middles[bare]
        spread = x - x.mean()
        slope = float((spread * (y - y.mean())).sum() / max(float((spread * spread).sum()), 1e-9))
        if abs(slope) <= MAX_SLOPE:
            line = replace(line, slope=slope, intercept=float(y.mean() - slope * x.mean()))
    # Continuity on the ink itself: smoothing along the line would also carry it over the
    # paper between a digit's stroke and a box edge.
    every = np.arange(width)
    centre = np.clip(np.round(line.across(every)).astype(int), 0, height - 1)
    on = plain[centre, every] | plain[np.maximum(centre - 1, 0), every]
    on |= plain[np.minimum(centre + 1, height - 1), every]
    found = []
    for first, last in stretches(on, line.start, line.stop):
        span = np.arange(first, last + 1)
        runs = runs_across(view, line.across(span), span)[1]
        if _thin(runs):
            # A low percentile: where a digit runs along the line, the ink across it is
            # thicker.
            thickness = _low(runs[runs > 0])
            core, darkness = _core_width(raw, line, (first, last))
            found.append(
                replace(
                    line, start=first, stop=last, thickness=thickness, core=core, darkness=darkness
                )
            )
    return found


def _thin(runs: np.ndarray) -> bool:
    """Runs across a line (0 where none) of a thin line: inked for half of MIN_LENGTH at
    least, and most of them (70 %) at most MAX_THICKNESS."""
    inked = runs[runs > 0]
    return inked.size >= MIN_LENGTH / 2 and _low(inked) <= MAX_THICKNESS


def _core_width(values: np.ndarray, line: Line, span: tuple[int, int]) -> tuple[float, float]:
    """The line's own width and its darkness.  Width: its ink across it over its darkness,
    in px (a low percentile over its columns, as for thickness); pen strokes are wider than
    printing, even where both spread as far at the ink level once blurred.  Darkness: the
    median of its darkest ink across it."""
    along = np.arange(span[0], span[1] + 1)
    reach = MAX_RUN // 2 + 1
    centre = np.round(line.across(along)).astype(int)
    # Centred on the darkest of the three rows nearest the fit (it may be a px off the ink).
    near_centre = values[np.clip(centre + np.arange(-1, 2)[:, None], 0, values.shape[0] - 1), along]
    centre = centre + np.argmax(near_centre, axis=0) - 1
    rows = centre[None, :] + np.arange(-reach, reach + 1)[:, None]
    profile = values[np.clip(rows, 0, values.shape[0] - 1), along[None, :]]
    peak = np.maximum(profile[reach], 1e-6)[None, :]
    # Ink across the line over its darkness: the width of an equally dark bar (sub-pixel),
    # counted outwards from the centre while the ink stays above a quarter of the peak (a
    # neighbouring line a few px away is not this line).
    inked = profile >= 0.25 * peak
    near = np.zeros_like(inked)
    near[reach:] = np.logical_and.accumulate(inked[reach:], axis=0)
    near[: reach + 1] |= np.logical_and.accumulate(inked[reach::-1], axis=0)[::-1]
    width = np.where(near, np.minimum(profile, peak), 0).sum(axis=0)
    return _low(width / peak[0]), _low(peak[0], 0.5)


def _low(values: np.ndarray, share: float = 0.3) -> float:
    """The value `share` of the way up the sorted values (np.percentile's job, cheaper)."""
    k = min(int(share * len(values)), len(values) - 1)
    return float(np.partition(values, k)[k])


def _leading(rows: np.ndarray) -> np.ndarray:
    """Per column, how many of the first rows are ink (argmin finds the first paper)."""
    return np.where(rows.all(axis=0), rows.shape[0], np.argmin(rows, axis=0))


def stretches(
    on: np.ndarray, start: int, stop: int, shortest: float = MIN_LENGTH
) -> list[tuple[int, int]]:
    """(first, last) of each run of `on` (gaps up to GAP_PX bridged) that reaches into
    [start, stop] and is at least `shortest` long."""
    where = np.flatnonzero(on)
    if where.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(where) > GAP_PX + 1)
    firsts = where[np.r_[0, breaks + 1]]
    lasts = where[np.r_[breaks, where.size - 1]]
    keep = (lasts >= start) & (firsts <= stop) & (lasts - firsts + 1 >= shortest)
    return [(int(a), int(b)) for a, b in zip(firsts[keep], lasts[keep], strict=True)]


def runs_across(view: np.ndarray, centre: np.ndarray, along: np.ndarray):
    """Per column, the run of ink across the line through its predicted centre row (or, if
    that is paper, through the row above or below): the run's middle and length, capped at
    MAX_RUN + 1 (0 where there is none)."""
    height = view.shape[0]
    reach = MAX_RUN // 2 + 3
    base = np.round(centre).astype(int)
    rows = np.clip(base[None, :] + np.arange(-reach, reach + 1)[:, None], 0, height - 1)
    column = view[rows, along[None, :]]
    above = _leading(column[reach - 1 :: -1])  # ink rows just above the centre row
    below = _leading(column[reach + 1 :])  # ink rows just below
    at = column[reach]
    run = np.where(at, above + below + 1, np.where(column[reach - 1], above, 0))
    run = np.where(~at & ~column[reach - 1] & column[reach + 1], below, run)
    middle = np.where(at, base + (below - above) / 2, 0.0)
    middle = np.where(~at & column[reach - 1], base - (above + 1) / 2, middle)
    middle = np.where(~at & ~column[reach - 1] & column[reach + 1], base + (below + 1) / 2, middle)
    return middle, np.minimum(run, MAX_RUN + 1)


def band(line: Line, across_size: int, reach: int):
    """Columns along the line and the rows from −reach to +reach across it (clipped to the
    picture: outside rows repeat the border row, harmless for setting or probing ink)."""
    along = np.arange(line.start, line.stop + 1)
    centre = np.round(line.across(along)).astype(int)
    rows = centre[:, None] + np.arange(-reach, reach + 1)[None, :]
    return along, np.clip(rows, 0, across_size - 1)
