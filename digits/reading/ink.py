"""The ink of a picture: a float map where 1 is ink and 0 is paper, whatever the picture.

Transparency, colour, polarity (dark ink on light paper or light chalk on a dark board), uneven
lighting, shadows, paper texture, a sheet photographed on a table and printed lines (box frames,
ruled and squared paper: digits.reading.printing) are all normalised away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from scipy import ndimage

from digits.reading.images import canonical
from digits.reading.printing.remove import remove_printing

# Ink must stand out from the background by at least this much (fraction of
# full scale, after smoothing) and by this many noise deviations to count.
MIN_CONTRAST = 0.05
NOISE_SIGMAS = 8.0
# A sheet of paper photographed on a table: brighter than the table by at
# least SHEET_CONTRAST (of full scale) and filling SHEET_FILL of its box.
SHEET_CONTRAST = 0.25
SHEET_FILL = 0.75
MEDIAN_BLOCK_VALUES = 2**20  # window values sorted at once by _median_filter (4 MiB)


@dataclass(frozen=True)
class Ink:
    """A picture's ink, and the levels that tell ink from noise."""

    ink: np.ndarray  # HxW float32 in [0, 1]
    significant: float  # ink level (same units) that clearly stands out from noise
    smooth: np.ndarray  # the ink lightly smoothed, same units, not clipped


def ink_map(image: Image.Image) -> np.ndarray:
    """Ink of a picture as float32 HxW in [0, 1] (1 = ink), whatever its mode.

    Transparency, colour, polarity (dark ink on light paper or light chalk on a
    dark board), uneven lighting and paper texture are all normalised away.
    A picture with no ink that stands out from its noise maps to all zeros.
    Raises TypeError if `image` is not a PIL image.
    """
    return analyse(image).ink


def analyse(image: Image.Image) -> Ink:
    """The picture's ink map, its noise-significance level and a lightly smoothed copy."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, got {type(image).__name__}")
    if image.width == 0 or image.height == 0:
        blank = np.zeros((image.height, image.width), np.float32)
        return Ink(blank, math.inf, blank)
    channels = _channels(image)
    luminance = channels[0] if len(channels) == 1 else (channels[0] + channels[1] + channels[2]) / 3
    paper = _sheet_of_paper(luminance)
    if paper is not None:
        channels = [_outside_filled(channel, paper) for channel in channels]
        luminance = _outside_filled(luminance, paper)
    dark_ink = _ink_is_dark(luminance)
    # Printed lines (box frames, ruled and squared paper) come out before normalising: a dense
    # grid would otherwise count as the paper's noise and raise the ink level above faint digits.
    return _normalise(remove_printing(_contrast(channels, dark_ink)))


def _sheet_of_paper(luminance: np.ndarray) -> np.ndarray | None:
    """Where the sheet is, when the photo shows a sheet of paper on a darker table.

    On a coarse grid the brightest Otsu class must form one compact region
    (filling SHEET_FILL of its box) covering 15–85 % of the picture, much
    brighter than the rest, and touching at most two edges of the picture —
    a shadow leaves the lit paper touching three or four.  Returns a mask,
    a little inside the sheet's edge, or None.
    """
    factor = max(1, min(luminance.shape) // 48)
    grid = _reduce(luminance, factor)
    if min(grid.shape) < 8 or float(grid.max() - grid.min()) < SHEET_CONTRAST:
        return None
    bright = grid > _otsu(grid)
    if not bright.any() or bright.all():
        return None
    if float(grid[bright].mean() - grid[~bright].mean()) < SHEET_CONTRAST:
        return None
    regions, count = ndimage.label(bright)
    sizes = np.bincount(regions.ravel())[1:]
    sheet = regions == int(np.argmax(sizes)) + 1
    rows, cols = np.nonzero(sheet)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    edges = sum(
        int(touching)
        for touching in (
            rows.min() == 0,
            cols.min() == 0,
            rows.max() == grid.shape[0] - 1,
            cols.max() == grid.shape[1] - 1,
        )
    )
    if not (0.15 <= sheet.mean() <= 0.85 and sheet.sum() >= SHEET_FILL * box and edges <= 2):
        return None
    sheet = ndimage.binary_erosion(ndimage.binary_fill_holes(sheet), iterations=1)
    full = _enlarge(sheet.astype(np.float32), luminance.shape)
    return full > 0.99


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold: the level that best splits the values into two classes."""
    counts, edges = np.histogram(values, bins=64)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    mass = np.cumsum(counts * centres)
    total_weight, total_mass = weight[-1], mass[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        low = mass / weight
        high = (total_mass - mass) / (total_weight - weight)
        between = weight * (total_weight - weight) * (low - high) ** 2
    return float(centres[int(np.nanargmax(between[:-1]))])


def _outside_filled(channel: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The channel with everything outside `inside` set to the inside's median."""
    return np.where(inside, channel, np.float32(np.median(channel[inside])))


def _channels(image: Image.Image) -> list[np.ndarray]:
    """Grey or R, G, B as float32 HxW arrays in [0, 1], transparency flattened."""
    image = canonical(image)
    values = np.asarray(image, dtype=np.float32) * np.float32(1 / 255)
    if values.ndim == 2:
        return [values]
    if image.mode in ("LA", "RGBA"):
        values = _flatten_alpha(values[..., :-1], values[..., -1])
    return [np.ascontiguousarray(values[..., c]) for c in range(values.shape[-1])]


def _flatten_alpha(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite onto a background that keeps the ink visible.

    Mostly-opaque pictures (paper with transparent margins) get their own
    paper colour behind the transparent parts.  Mostly-transparent pictures
    (ink drawn on a transparent canvas, whatever colour its empty pixels hold)
    are composited on white for dark ink and on black for light ink.
    """
    if float(alpha.min()) > 0.98:
        return colour
    weight = float(alpha.sum())
    if weight <= 0:
        return np.ones_like(colour)
    if np.count_nonzero(alpha > 0.5) > alpha.size // 2:
        backdrop = np.median(colour[alpha > 0.5], axis=0)
    else:
        ink_colour = (colour * alpha[..., None]).sum(axis=(0, 1)) / weight
        backdrop = np.full(colour.shape[-1], 1.0 if ink_colour.mean() < 0.5 else 0.0)
    a = alpha[..., None]
    return colour * a + backdrop.astype(np.float32) * (1 - a)


def _reduce(channel: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return channel
    return np.asarray(Image.fromarray(channel, "F").reduce(factor))


def _enlarge(channel: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if channel.shape == shape:
        return channel
    resized = Image.fromarray(channel, "F").resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized)


def _ink_is_dark(luminance: np.ndarray) -> bool:
    """Decide polarity from the background: is the ink darker than the paper?

    The paper is the majority of every neighbourhood, so a coarse local
    median is the paper whatever the lighting.  Pixels standing out from it
    (beyond the noise) vote, weighted by how far they stand out; ink pulls
    one way, noise and grain pull both ways evenly.
    """
    grid = _reduce(luminance, max(1, min(luminance.shape) // 24))
    size = max(3, min(grid.shape) // 4 | 1)
    paper = _enlarge(_median_filter(grid, size), luminance.shape)
    residual = _sample(luminance - paper, 262144)
    median, spread = _median_spread(_sample(residual))
    threshold = 3 * spread + 0.02
    dark = float(np.maximum(median - residual - threshold, 0).sum())
    light = float(np.maximum(residual - median - threshold, 0).sum())
    if math.isclose(dark, light, rel_tol=0.1, abs_tol=1e-3):
        return float(np.median(grid)) >= 0.5  # no clear ink: trust the paper's brightness
    return dark > light


def _median_filter(grid: np.ndarray, size: int) -> np.ndarray:
    """ndimage.median_filter(grid, size, mode="nearest") for an odd size, the same values:
    the middle of each window's sorted values, found by one partition over all windows (a
    few times faster than SciPy's filter), a block of rows at a time to bound the memory."""
    half, middle = size // 2, size * size // 2
    padded = np.pad(grid, half, mode="edge")
    rows = max(1, MEDIAN_BLOCK_VALUES // (grid.shape[1] * size * size))
    filtered = np.empty_like(grid)
    for top in range(0, grid.shape[0], rows):
        block = padded[top : top + rows + 2 * half]
        windows = sliding_window_view(block, (size, size)).reshape(-1, size * size)
        values = np.partition(windows, middle, axis=1)[:, middle]
        filtered[top : top + rows] = values.reshape(-1, grid.shape[1])
    return filtered


def _background(channel: np.ndarray, dark_ink: bool) -> np.ndarray:
    """Local paper level of one channel, ink closed away.

    On a coarse grid (about 64 cells on the short side, which also averages
    the noise away) a grey closing (opening for light ink) with a window a
    third of the grid removes every stroke, while lighting gradients and
    shadow edges, being monotonic at that scale, pass unchanged.  The grid
    is extended past its edges by point reflection (clipped to its range) so
    that a gradient running into the border continues instead of folding.
    """
    grid = _reduce(channel, max(1, min(channel.shape) // 64))
    size = max(3, min(grid.shape) // 3)
    padded = np.pad(grid, size, mode="reflect", reflect_type="odd")
    padded = np.clip(padded, grid.min(), grid.max())
    if dark_ink:
        padded = ndimage.grey_closing(padded, size=size)
    else:
        padded = ndimage.grey_opening(padded, size=size)
    grid = ndimage.gaussian_filter(padded, sigma=1.0)[size:-size, size:-size]
    return _enlarge(grid.astype(np.float32, copy=False), channel.shape)


def _contrast(channels: list[np.ndarray], dark_ink: bool) -> np.ndarray:
    """Distance of each pixel from the paper, counting only ink-ward brightness.

    The brightness part of the difference counts only in the ink's direction
    (glare on dark-ink paper is not ink); the colour part counts either way,
    so blue, red or yellow ink on white shows up even when it is bright.
    """
    differences = [channel - _background(channel, dark_ink) for channel in channels]
    if len(differences) == 1:
        return np.maximum(-differences[0] if dark_ink else differences[0], 0)
    red, green, blue = differences
    brightness = (red + green + blue) / 3
    towards_ink = np.maximum(-brightness if dark_ink else brightness, 0)
    # |difference - brightness|² = |difference|² - 3·brightness²
    chroma = np.maximum(red * red + green * green + blue * blue - 3 * brightness * brightness, 0)
    return np.sqrt(towards_ink * towards_ink + chroma)


def _sample(values: np.ndarray, limit: int = 16384) -> np.ndarray:
    step = max(1, int(math.sqrt(values.size / limit)))
    return values[::step, ::step]


def _median_spread(values: np.ndarray) -> tuple[float, float]:
    """Median and robust standard deviation (1.4826 × median absolute deviation)."""
    median = float(np.median(values))
    return median, 1.4826 * float(np.median(np.abs(values - median)))


def _normalise(contrast: np.ndarray) -> Ink:
    """Subtract the noise floor, scale so that typical ink is 1.

    Noise statistics come from the median and median absolute deviation, so
    the ink (a minority of pixels) does not disturb them.  Ink counts as
    significant only if, lightly smoothed, it clears both MIN_CONTRAST and
    NOISE_SIGMAS deviations of the smoothed noise; otherwise there is none.
    """
    contrast = contrast.astype(np.float32, copy=False)
    smooth = ndimage.gaussian_filter(contrast, sigma=1.0)
    raw_median, raw_spread = _median_spread(_sample(contrast))
    median, spread = _median_spread(_sample(smooth))
    significant = median + max(MIN_CONTRAST, NOISE_SIGMAS * spread)
    strong = contrast[smooth > significant]
    if strong.size < 4:
        zeros = np.zeros(contrast.shape, np.float32)
        return Ink(zeros, math.inf, zeros)
    level = max(float(np.percentile(strong, 90)), significant)
    floor = min(raw_median + 3 * raw_spread, median + 0.5 * (significant - median))
    scale = np.float32(1.0 / max(level - floor, 1e-6))
    ink = np.clip((contrast - floor) * scale, 0, 1)
    return Ink(ink, float((significant - floor) * scale), (smooth - floor) * scale)
