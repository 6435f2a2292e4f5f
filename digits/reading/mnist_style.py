"""Ink made the way MNIST digits were made, so that models trained on MNIST can read it.

MNIST digits are light ink on black, size-normalised into a 20×20 box keeping their aspect ratio,
anti-aliased, then centred by centre of mass in a 28×28 field. `to_mnist` does the same to a
digit cut out of a user's picture, and also brings its stroke width towards MNIST's. `to_line`
does it to a row of digits for the string model: the same steps, but the row's *height* is fitted
to the 20-px box, so every digit keeps MNIST's scale whatever the number's length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from digits.reading.images import first_line

# MNIST geometry: the digit fits a 20×20 box inside a 28×28 field and its
# centre of mass sits at pixel index (14, 14) (measured on MNIST: 13.99, 14.01).
FIELD = 28
BOX = 20
CENTRE = 14.0
# Stroke width (2·area / perimeter, measured at threshold 0.5) of MNIST digits:
# median 2.3 px in the 28×28 field.  Digits are normalised towards it.
MNIST_STROKE = 2.3
# to_mnist works at this multiple of the 20-px box before the final reduction.
WORK_FACTOR = 4
# Blank columns left and right of a line's ink: the string model's outer frames see empty paper,
# as MNIST's 4-px border does for the digit model.
LINE_MARGIN = 4
# A line's width is a multiple of this, so that the string model's poolings divide it evenly.
WIDTH_STEP = 4
# The widest line: 6 well-spaced wide digits fit with room to spare (about 30 px each). Wider ink
# is shrunk to fit, so that the work per line stays bounded.
MAX_LINE_WIDTH = 256


@dataclass(frozen=True)
class LineGeometry:
    """How a line's columns map back to its ink's: ink_x = x0 + (line_x - left) / scale."""

    x0: float  # first ink column of the crop
    left: float  # line column where that ink column lands
    scale: float  # line pixels per ink pixel

    def to_ink(self, line_x: float) -> float:
        return self.x0 + (line_x - self.left) / self.scale


def to_mnist(ink: np.ndarray) -> np.ndarray:
    """One digit's ink (HxW, values in [0, 1], 1 = ink) → MNIST-style (28, 28) float32.

    Crops to the ink, normalises stroke width towards MNIST's, fits the longer
    side to 20 px keeping the aspect ratio (area-averaged, so anti-aliased),
    puts the centre of mass at pixel (14, 14) and scales the maximum to 1.
    No ink gives all zeros.  uint8 arrays are read as 0–255.  Raises
    ValueError for a non-2-D, empty, non-numeric or non-finite array.
    """
    values = _checked_ink(ink)
    peak = float(values.max())
    if peak <= 0:
        return np.zeros((FIELD, FIELD), np.float32)
    field = _centre_by_mass(_size_normalised(values / peak, BOX, BOX))
    top = float(field.max())
    return field / top if top > 0 else field


def _checked_ink(ink) -> np.ndarray:
    try:
        values = np.asarray(ink)
    except Exception as error:  # noqa: BLE001 - anything array-like may fail here
        raise ValueError(f"ink must be a 2-D array: {first_line(error)}") from None
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"ink must be a non-empty 2-D array, got shape {values.shape}")
    if values.dtype.kind not in "biuf":
        raise ValueError(f"ink must be real numbers, got {values.dtype}")
    scale = 1 / 255 if values.dtype == np.uint8 else 1.0
    values = values.astype(np.float32) * np.float32(scale)
    if not np.isfinite(values).all():
        raise ValueError("ink contains NaN or infinite values")
    return np.clip(values, 0, 1)


def _crop_to_ink(values: np.ndarray) -> np.ndarray:
    """Crop to the box of pixels above a tenth of the maximum."""
    rows, cols = np.nonzero(values > 0.1 * float(values.max()))
    return values[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _size_normalised(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Ink (peak 1) cropped and fitted into height × width keeping its aspect ratio, its stroke
    brought towards MNIST's on the way (at WORK_FACTOR times the size, then cropped again, since
    stroke normalisation may pad the image)."""
    work = _fit(_crop_to_ink(values), height * WORK_FACTOR, width * WORK_FACTOR)
    work = _normalise_stroke(work, MNIST_STROKE * WORK_FACTOR)
    return _fit(_crop_to_ink(work), height, width)


def _fit(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to fit a height × width box keeping the aspect ratio (area-averaging down)."""
    rows, columns = values.shape
    scale = min(height / rows, width / columns)
    size = (
        max(1, min(width, round(columns * scale))),
        max(1, min(height, round(rows * scale))),
    )
    if size == (columns, rows):
        return values
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    resized = Image.fromarray(np.ascontiguousarray(values, np.float32), "F").resize(size, method)
    return np.clip(np.asarray(resized), 0, 1)


def stroke_width(values: np.ndarray) -> float:
    """Mean stroke width in pixels: 2·area / perimeter of the ink above 0.5.

    The perimeter is counted as pixel-edge transitions, scaled by π/4 to
    approximate the length of curves at all angles.
    """
    solid = values > 0.5
    edges = np.count_nonzero(solid[1:] != solid[:-1]) + np.count_nonzero(
        solid[:, 1:] != solid[:, :-1]
    )
    edges += np.count_nonzero(solid[0]) + np.count_nonzero(solid[-1])
    edges += np.count_nonzero(solid[:, 0]) + np.count_nonzero(solid[:, -1])
    if edges == 0:
        return 0.0
    return 2.0 * float(values.sum()) / (edges * math.pi / 4)


def _normalise_stroke(work: np.ndarray, target: float) -> np.ndarray:
    """Thicken hairlines and thin out bloated strokes towards `target` px."""
    strong = work[work > 0.05]
    if strong.size:
        # A hairline reduced from a big picture is faint: bring it to full ink.
        work = np.clip(work / max(float(np.percentile(strong, 90)), 1e-3), 0, 1)
    width = stroke_width(work)
    if width < 0.8 * target:
        radius = max(1, round((target - width) / 2))
        return ndimage.grey_dilation(np.pad(work, radius), footprint=_disk(radius))
    if width > 1.5 * target:
        radius = round((width - target) / 2)
        thinner = ndimage.grey_erosion(work, footprint=_disk(radius))
        # Never erode a digit away: keep the original if most of it would vanish.
        if thinner.sum() > 0.25 * work.sum():
            return thinner
    return work


def _disk(radius: int) -> np.ndarray:
    offsets = np.arange(-radius, radius + 1)
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius + radius


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste into the 28×28 field with the centre of mass at (14, 14), clipped."""
    field = np.zeros((FIELD, FIELD), np.float32)
    mass_y, mass_x = ndimage.center_of_mass(digit)
    top = round(CENTRE - mass_y)
    left = round(CENTRE - mass_x)
    height, width = digit.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, FIELD), min(left + width, FIELD)
    if y1 > y0 and x1 > x0:
        field[y0:y1, x0:x1] = digit[y0 - top : y1 - top, x0 - left : x1 - left]
    return np.clip(field, 0, 1)


def to_line(ink: np.ndarray) -> tuple[np.ndarray, LineGeometry]:
    """A row of ink holding one or more digits → (float32 (28, W) line, its geometry).

    Crops to the ink, normalises the stroke width towards MNIST's, scales the height to 20 px
    keeping the aspect ratio (W at most MAX_LINE_WIDTH), puts the centre of mass on row 14,
    leaves LINE_MARGIN blank columns each side (W a multiple of WIDTH_STEP) and scales the
    maximum to 1. The geometry maps the line's columns back to the ink's. No ink gives an empty
    line. Raises ValueError like to_mnist.
    """
    values = _checked_ink(ink)
    peak = float(values.max())
    if peak <= 0:
        blank = np.zeros((FIELD, 2 * LINE_MARGIN), np.float32)
        return blank, LineGeometry(0.0, float(LINE_MARGIN), 1.0)
    values = values / peak
    columns = np.flatnonzero((values > 0.1).any(axis=0))  # the ink as _crop_to_ink sees it
    strip = _size_normalised(values, BOX, MAX_LINE_WIDTH - 2 * LINE_MARGIN)
    line = _place_in_line(strip)
    top = float(line.max())
    line = line / top if top > 0 else line
    ink_width = columns[-1] - columns[0] + 1
    scale = float(strip.shape[1] / ink_width)
    return line, LineGeometry(float(columns[0]), float(LINE_MARGIN), scale)


def _place_in_line(strip: np.ndarray) -> np.ndarray:
    """The strip in 28 rows with its centre of mass on row 14, LINE_MARGIN columns each side."""
    rows, columns = strip.shape
    width = -(-(columns + 2 * LINE_MARGIN) // WIDTH_STEP) * WIDTH_STEP
    line = np.zeros((FIELD, width), np.float32)
    top = round(CENTRE - ndimage.center_of_mass(strip)[0])
    y0, y1 = max(top, 0), min(top + rows, FIELD)
    if y1 > y0:
        line[y0:y1, LINE_MARGIN : LINE_MARGIN + columns] = strip[y0 - top : y1 - top]
    return np.clip(line, 0, 1)
