"""The pixels of printed lines to clear: each line's band, except where a stroke crosses it."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digits.reading.printing.lines import Line, band, runs_across

PROBE = 2  # px of ink beyond a line's band that mark a stroke meeting it
DARKER = 1.6  # × a line's darkness: a band pixel this dark is a pen stroke over it
THICKER = 2  # px: ink this much thicker across a line than the line is a stroke on it
SHARP_SHARE = 0.5  # of a line's darkness: below it, the unblurred map is paper
PARTED_MARGIN = 2  # px along a line kept beside where a stroke crosses it


def _bands(shape, lines: list[Line], own_width: bool = False) -> np.ndarray:
    """All pixels within each line's band (own_width: within its own width, not blurred)."""
    bands = np.zeros(shape, bool)
    for line in lines:
        view = bands.T if line.vertical else bands
        reach = max(1, round(line.core / 2)) if own_width else line.half_band
        along, rows = band(line, view.shape[0], reach)
        view[rows, along[:, None]] = True
    return bands


def _lines_beside(line: Line, lines: list[Line]) -> list[Line]:
    """The lines running alongside `line` so close that their bands touch, but apart from it
    (more than half its thickness: not the same line found twice)."""
    found = []
    for other in lines:
        start, stop = max(line.start, other.start), min(line.stop, other.stop)
        if other is line or other.vertical != line.vertical or stop < start:
            continue
        along = np.arange(start, stop + 1)
        distance = float(np.median(np.abs(other.across(along) - line.across(along))))
        if line.thickness / 2 < distance <= line.half_band + other.half_band:
            found.append(other)
    return found


def removal_mask(mask: np.ndarray, lines: list[Line], raw: np.ndarray | None = None):
    """Pixels of the printed lines to clear: their bands, except where a stroke crosses.

    Where ink that is on no printed line continues PROBE px beyond a line's band, on
    either side, a stroke passes through the line, ends on it or runs along it: the ink
    across the line is thicker than the line, and that column keeps its band.  So does a
    column where the run of ink across the line is THICKER px thicker than the line: a
    stroke lying on it, inside its band.  (Keeping only columns with ink on both sides
    would open a 0 sitting on a ruled line.)  And with `raw` (the map before smoothing),
    every band pixel DARKER × darker than the line is kept: a pen stroke over light
    printing, wherever the bands of a dense grid leave no room to see it continue.
    """
    removed = np.zeros(mask.shape, bool)
    if not lines:
        return removed
    across = {
        vertical: _bands(mask.shape, [line for line in lines if line.vertical == vertical])
        for vertical in (False, True)
    }
    bands = across[False] | across[True]
    other = mask & ~bands
    # Where a stroke crosses next to a crossing of two printed lines, the ink of the other
    # line's band next to it is the stroke's too (else squared paper cuts strokes there).
    other |= mask & bands & ndimage.binary_dilation(other, iterations=2)
    # Ink across a line, not counting the lines that cross it (their crossing is no stroke).
    solid = {vertical: (mask & ~across[not vertical]) | other for vertical in (False, True)}
    for line in lines:
        view = removed.T if line.vertical else removed
        other_view = other.T if line.vertical else other
        reach = line.half_band + PROBE
        along, rows = band(line, view.shape[0], reach)
        probed = other_view[rows, along[:, None]]
        crossed = probed[:, :PROBE].all(axis=1) | probed[:, -PROBE:].all(axis=1)
        # A stroke lying on the line, inside its band: the ink across it is thicker there.
        solid_here = solid[line.vertical]
        beside = _lines_beside(line, lines)
        if beside:
            # The ink of another printed line a few px away (the sides of two neighbouring
            # boxes) is no stroke lying on this one; a stroke between them still counts.
            solid_here = solid_here & ~_bands(mask.shape, beside, own_width=True)
        runs = runs_across(
            solid_here.T if line.vertical else solid_here, line.across(along), along
        )[1]
        crossed |= runs > line.thickness + THICKER
        cleared = np.zeros(rows.shape, bool)
        cleared[~crossed, PROBE:-PROBE] = True
        if raw is not None:
            # A stroke beside the line, not on it: paper (in the ink itself, not blurred)
            # parts the line from whatever lies on either side of it.
            raw_view = raw.T if line.vertical else raw
            cleared[crossed] |= _parted(raw_view[rows, along[:, None]], line)[crossed]
        view[rows[cleared], np.broadcast_to(along[:, None], rows.shape)[cleared]] = True
    if raw is not None:
        removed &= ~_darker_than_lines(raw, lines)
    return removed


def _parted(profiles: np.ndarray, line: Line) -> np.ndarray:
    """Which pixels of each profile across the line (one per px along it, PROBE px beyond its
    band each side, the line in the middle) to clear: the line, where paper (below
    SHARP_SHARE of its darkness) meets it on both sides within its band, no thicker than the
    line (a stroke touching it is not parted from it); none elsewhere."""
    middle = profiles.shape[1] // 2
    paper = profiles < SHARP_SHARE * line.darkness
    paper[:, :PROBE] = paper[:, -PROBE:] = False
    paper[:, middle] = False
    index = np.arange(profiles.shape[1])
    low = np.where(paper & (index < middle), index, -1).max(axis=1)
    high = np.where(paper & (index > middle), index, profiles.shape[1]).min(axis=1)
    parted = (low >= 0) & (high < profiles.shape[1]) & (high - low - 1 <= line.thickness)
    # Not within PARTED_MARGIN px along the line of a column where it is not parted: the
    # faint edge of a stroke crossing it.
    parted = ndimage.binary_erosion(parted, np.ones(2 * PARTED_MARGIN + 1, bool), border_value=1)
    return parted[:, None] & (index >= low[:, None]) & (index <= high[:, None])


def _darker_than_lines(raw: np.ndarray, lines: list[Line]) -> np.ndarray:
    """Band pixels DARKER × darker than their line (the darkest line where bands cross)."""
    least = np.zeros(raw.shape, np.float32)
    for line in lines:
        view = least.T if line.vertical else least
        along, rows = band(line, view.shape[0], line.half_band)
        view[rows, along[:, None]] = np.maximum(view[rows, along[:, None]], DARKER * line.darkness)
    return raw > least
