"""Taking printed lines out of a picture's contrast map, keeping the strokes that cross them.

`remove_printing(contrast)` runs before the ink map is normalised (digits.reading.ink): on
squared paper the grid covers so much of the picture that it would otherwise be taken for the
paper's noise, raising the significance level above faint digits.  Along each printed line its
band (its thickness + 1 px each side) is cleared, except in columns where a stroke meets it: ink
on no printed line continuing PROBE px beyond the band on either side, or ink across the line
THICKER px thicker than the line, or band pixels DARKER × darker than the line.  A picture
without printed lines comes back as the very same array.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digits.reading.printing.bands import removal_mask
from digits.reading.printing.judge import ink_near_both_borders, printed_lines
from digits.reading.printing.lines import ALONG, LINE_LEVEL, MIN_LENGTH, candidates

# Removing.
PAPER_PERCENTILE = 50  # of the smoothed contrast: the paper (remove_printing)
INK_PERCENTILE = 99.5  # of the smoothed contrast: strong ink (remove_printing)
FAINT_LEVEL = 0.1  # of strong ink: remove_printing's second look, rulings only


def remove_printing(contrast: np.ndarray) -> np.ndarray:
    """The contrast map (before ink._normalise) with printed lines set to the paper's level.

    Squared paper covers so much of a picture that _normalise takes its lines for the
    paper's noise: its significance level rises above faint digits (or above everything,
    and the ink map comes out empty), even when the lines themselves are too faint for
    segmentation.  Removed before normalising, they cannot.  Ink is judged relative to the
    contrast of strong ink (INK_PERCENTILE), so LINE_LEVEL means what it means on the ink
    map; a second look at FAINT_LEVEL removes fainter paper rulings only.  The same array
    is returned when there is no line.
    """
    if max(contrast.shape) < MIN_LENGTH:
        return contrast  # no line is long enough to be a candidate (lines.candidates)
    smooth = ndimage.gaussian_filter(contrast, 1.0)
    sample = smooth[:: max(1, smooth.shape[0] // 256), :: max(1, smooth.shape[1] // 256)]
    # The paper: the median (a dense grid raises it; the fill below does not use it).
    paper, strong = np.percentile(sample, [PAPER_PERCENTILE, INK_PERCENTILE])
    if strong - paper <= 0:
        return contrast
    level = LINE_LEVEL * (strong - paper)
    removed = _removed(smooth - paper, level, contrast - paper)
    cleaned = _filled(contrast, smooth - paper, level, removed) if removed.any() else contrast
    # Then fainter paper rulings, which segmentation would not see but which still raise
    # the noise level _normalise measures (only border-to-border rows: faint frames and
    # strokes are not worth the risk).
    smooth = ndimage.gaussian_filter(cleaned, 1.0) if removed.any() else smooth
    level = FAINT_LEVEL * (strong - paper)
    faint = _removed(smooth - paper, level, cleaned - paper, rulings_only=True)
    return _filled(cleaned, smooth - paper, level, faint) if faint.any() else cleaned


def _filled(contrast, smooth, level, removed) -> np.ndarray:
    """The contrast with the removed pixels set to the paper between the lines (the median
    of the whole picture is raised by a dense grid)."""
    clear = (smooth <= level) & ~ndimage.maximum_filter(removed, size=5)
    fill = np.float32(np.median(contrast[clear]) if clear.any() else np.median(contrast))
    return np.where(removed, fill, contrast).astype(contrast.dtype, copy=False)


def _removed(smooth: np.ndarray, level: float, raw: np.ndarray, rulings_only=False):
    """The pixels of printed lines to clear, from a smoothed ink map, its ink level and
    the map before smoothing (raw, for the lines' own widths).

    Lines are looked for in the map smoothed ALONG px further along each direction: a faint,
    grainy line breaks up at the level, its run along itself does not.
    """
    mask = smooth > level
    lines = []
    for vertical in (False, True):
        along = ndimage.uniform_filter1d(smooth, ALONG, axis=0 if vertical else 1)
        # Faint rulings are continuous only once smoothed along themselves; frames must be
        # continuous in the ink itself (see _measured).
        continuous = along > level if rulings_only else mask
        if rulings_only and not ink_near_both_borders(continuous, vertical):
            continue  # no ruling can run from border to border in this direction
        lines += candidates(along, level, vertical, continuous, raw)
    return removal_mask(mask, printed_lines(mask, raw, lines, rulings_only), raw)
