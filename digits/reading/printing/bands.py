"""The pixels of printed lines to clear: each line's band, except where a stroke crosses it."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digits.reading.printing.lines import Line, band, runs_across

PROBE = 2  # px of ink beyond a line's band that mark a stroke meeting it
DARKER = 1.6  # × a line's darkness: a band pixel this dark is a pen stroke over it
THICKER = 2  # px: ink this much thicker across a line than the line is a stroke on it


def _bands(shape, lines: list[Line]) -> np.ndarray:
    """All pixels within each line's band."""
    bands = np.zeros(shape, bool)
    for line in lines:
        view = bands.T if line.vertical else bands
        along, rows = band(line, view.shape[0], line.half_band)
        view[rows, along[:, None]] = True
    return bands


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
        solid_view = solid[line.vertical].T if line.vertical else solid[line.vertical]
        runs = runs_across(solid_view, line.across(along), along)[1]
        crossed |= runs > line.thickness + THICKER
        cleared = rows[~crossed, PROBE:-PROBE]
        view[cleared, along[~crossed, None]] = True
    if raw is not None:
        removed &= ~_darker_than_lines(raw, lines)
    return removed


def _darker_than_lines(raw: np.ndarray, lines: list[Line]) -> np.ndarray:
    """Band pixels DARKER × darker than their line (the darkest line where bands cross)."""
    least = np.zeros(raw.shape, np.float32)
    for line in lines:
        view = least.T if line.vertical else least
        along, rows = band(line, view.shape[0], line.half_band)
        view[rows, along[:, None]] = np.maximum(view[rows, along[:, None]], DARKER * line.darkness)
    return raw > least
