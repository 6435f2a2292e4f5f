"""Turn a picture of digits into the 28×28 images an MNIST-trained model expects.

MNIST digits were made in a particular way: light ink on black, the digit
size-normalised into a 20×20 box keeping its aspect ratio, anti-aliased, then
centred by centre of mass in a 28×28 field.  A photo of dark ink on paper,
resized to 28×28, looks nothing like that; doing the same steps to the
picture makes the model read it.  The pipeline is::

    open_image(source)  -> PIL image (validated, EXIF-oriented, reduced if huge)
    ink_map(image)      -> float map, 1 = ink, background and lighting removed
    find_digits(image)  -> [DigitImage(pixels 28×28, box)], left to right
    to_mnist(ink)       -> one digit's ink as an MNIST-style 28×28 image

Only numpy, scipy.ndimage and Pillow are used, so importing stays cheap.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

# Pictures whose header claims more pixels than this are refused before any
# pixel is decoded (a decompression bomb could otherwise exhaust memory).
# JPEGs decode at 1/2 … 1/8 scale (draft mode), so phone photos up to
# MAX_JPEG_PIXELS (48–64 MP cameras) are accepted; Pillow's own bomb warning
# (89 MP) is an error too.
MAX_PIXELS = 40_000_000
MAX_JPEG_PIXELS = 80_000_000
# Larger pictures are reduced so that their longer side is at most this many
# pixels: plenty for digits, and it keeps the work per picture bounded.
WORKING_SIDE = 1600
# image.info keys set by open_image: the picture's size as the user sees it
# (after EXIF orientation), so boxes are reported in those pixels.
SOURCE_SIZE_KEY = "digits.source_size"

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

# Ink must stand out from the background by at least this much (fraction of
# full scale, after smoothing) and by this many noise deviations to count.
MIN_CONTRAST = 0.05
NOISE_SIGMAS = 8.0
# A digit is at least this many pixels tall in the working picture.
MIN_DIGIT_HEIGHT = 6
# A sheet of paper photographed on a table: brighter than the table by at
# least SHEET_CONTRAST (of full scale) and filling SHEET_FILL of its box.
SHEET_CONTRAST = 0.25
SHEET_FILL = 0.75


class ImageError(ValueError):
    """A picture that cannot be read; str(e) is one user-facing line."""


@dataclass(frozen=True)
class DigitImage:
    """One digit: MNIST-style pixels and where it was in the input picture."""

    pixels: np.ndarray = field(repr=False)  # (28, 28) float32 in [0, 1], light ink on black
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in input pixels, exclusive ends


# --------------------------------------------------------------------------
# Opening pictures


def open_image(source) -> Image.Image:
    """Open and fully decode a picture from a path, bytes or a binary file object.

    Returns an image in mode L, LA, RGB or RGBA with EXIF orientation applied
    (first frame of an animation).  Pictures over MAX_PIXELS (JPEGs: over
    MAX_JPEG_PIXELS) are refused from their header, before any pixel is
    decoded; pictures longer than WORKING_SIDE are reduced (JPEGs while
    decoding), and image.info[SOURCE_SIZE_KEY] keeps the size boxes are
    reported in.  Raises ImageError with a one-line message for anything
    unreadable: missing file, not an image, truncated or damaged data, too big.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as opened:
                return _decode(opened)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"no such file: {os.fspath(source)}") from None
    except IsADirectoryError:
        raise ImageError(f"is a directory, not an image: {os.fspath(source)}") from None
    except PermissionError:
        raise ImageError(f"permission denied: {os.fspath(source)}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(_too_big_message(_bomb_pixels(error))) from None
    except UnidentifiedImageError:
        raise ImageError("not an image Pillow can read") from None
    except MemoryError:
        raise ImageError("image too large to decode in memory") from None
    except OSError as error:
        if "truncated" in str(error).lower() or isinstance(error, EOFError):
            raise ImageError("truncated image data") from None
        raise ImageError(f"damaged image data ({_first_line(error)})") from None
    except Exception as error:  # noqa: BLE001 - decoders raise many types on bad data
        raise ImageError(f"damaged image data ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _too_big_message(size: tuple[int, int] | int | None, limit: int = MAX_PIXELS) -> str:
    allowed = f"the limit is {limit // 1_000_000} megapixels"
    if isinstance(size, tuple):
        return f"image is {size[0]}×{size[1]} pixels; {allowed}"
    if size:
        return f"image has {size / 1e6:.0f} megapixels; {allowed}"
    return f"image is too large; {allowed}"


def _bomb_pixels(error: Exception) -> int | None:
    """The pixel count in Pillow's decompression-bomb message, if it has one."""
    match = re.search(r"\((\d+) pixels\)", str(error))
    return int(match.group(1)) if match else None


def _decode(image: Image.Image) -> Image.Image:
    """Check the header size, then decode the first frame cheaply and orient it."""
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError("image has no pixels")
    limit = MAX_JPEG_PIXELS if image.format == "JPEG" else MAX_PIXELS
    if width * height > limit:
        raise ImageError(_too_big_message((width, height), limit))
    opened = image
    longest = max(width, height)
    if image.format == "JPEG" and longest > WORKING_SIDE:
        # Let the JPEG decoder skip detail we would throw away (1/2 … 1/8 scale).
        scale = WORKING_SIDE / longest
        image.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
    # Decode before reading EXIF: for a PNG, getexif() may decode the pixels
    # itself, and a decoding error must surface here, not be taken for no EXIF.
    image.load()
    orientation = _exif_orientation(image)
    source_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    if orientation != 1:
        image = _oriented(image)
    decoded = _working_size(image)
    if decoded is opened:
        decoded = opened.copy()  # the opened file (and its pixels) close on return
    decoded.info[SOURCE_SIZE_KEY] = source_size
    return decoded


def _oriented(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a damaged EXIF block leaves the picture as stored."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - bad metadata must not hide good pixels
        return image


def _working_size(image: Image.Image) -> Image.Image:
    """The picture in a canonical mode, reduced if longer than WORKING_SIDE."""
    image = _canonical(image)
    longest = max(image.size)
    if longest > WORKING_SIDE:
        image = image.reduce(math.ceil(longest / WORKING_SIDE))
    return image


def _exif_orientation(image: Image.Image) -> int:
    try:
        orientation = int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not hide the pixels
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _canonical(image: Image.Image) -> Image.Image:
    """The same picture in mode L, LA, RGB or RGBA (alpha kept where there is one)."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA") and "transparency" not in image.info:
        return image
    if mode in ("I", "F") or mode.startswith("I;"):
        return _wide_to_l(image)
    if mode in ("LA", "La", "PA", "RGBa", "RGBA") or "transparency" in image.info:
        target = "LA" if mode in ("L", "LA", "La", "1") else "RGBA"
        return image.convert(target)
    if mode in ("1", "L"):
        return image.convert("L")
    return image.convert("RGB")


def _wide_to_l(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float pictures → 8-bit grey."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max()) if values.size else 0.0
    if image.mode.startswith("I;16") or (image.mode == "I" and top <= 65535 and top > 255):
        full_scale = 65535.0
    elif top <= 1.0:
        full_scale = 1.0
    elif top <= 255.0:
        full_scale = 255.0
    else:
        full_scale = top
    grey = np.clip(values / full_scale, 0.0, 1.0) * 255.0
    return Image.fromarray(np.round(grey).astype(np.uint8), "L")


# --------------------------------------------------------------------------
# Ink map


@dataclass(frozen=True)
class _Ink:
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
    return _analyse(image).ink


def _analyse(image: Image.Image) -> _Ink:
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, got {type(image).__name__}")
    if image.width == 0 or image.height == 0:
        blank = np.zeros((image.height, image.width), np.float32)
        return _Ink(blank, math.inf, blank)
    channels = _channels(image)
    luminance = channels[0] if len(channels) == 1 else (channels[0] + channels[1] + channels[2]) / 3
    paper = _sheet_of_paper(luminance)
    if paper is not None:
        channels = [_outside_filled(channel, paper) for channel in channels]
        luminance = _outside_filled(luminance, paper)
    dark_ink = _ink_is_dark(luminance)
    return _normalise(_contrast(channels, dark_ink))


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
    image = _canonical(image)
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
    paper = _enlarge(ndimage.median_filter(grid, size=size, mode="nearest"), luminance.shape)
    residual = _sample(luminance - paper, 262144)
    median, spread = _median_spread(_sample(residual))
    threshold = 3 * spread + 0.02
    dark = float(np.maximum(median - residual - threshold, 0).sum())
    light = float(np.maximum(residual - median - threshold, 0).sum())
    if math.isclose(dark, light, rel_tol=0.1, abs_tol=1e-3):
        return float(np.median(grid)) >= 0.5  # no clear ink: trust the paper's brightness
    return dark > light


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


def _normalise(contrast: np.ndarray) -> _Ink:
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
        return _Ink(zeros, math.inf, zeros)
    level = max(float(np.percentile(strong, 90)), significant)
    floor = min(raw_median + 3 * raw_spread, median + 0.5 * (significant - median))
    scale = np.float32(1.0 / max(level - floor, 1e-6))
    ink = np.clip((contrast - floor) * scale, 0, 1)
    return _Ink(ink, float((significant - floor) * scale), (smooth - floor) * scale)


# --------------------------------------------------------------------------
# MNIST-style digit images


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
    work = _fit(_crop_to_ink(values / peak), BOX * WORK_FACTOR)
    work = _normalise_stroke(work, MNIST_STROKE * WORK_FACTOR)
    digit = _fit(_crop_to_ink(work), BOX)
    field = _centre_by_mass(digit)
    top = float(field.max())
    return field / top if top > 0 else field


def _checked_ink(ink) -> np.ndarray:
    try:
        values = np.asarray(ink)
    except Exception as error:  # noqa: BLE001 - anything array-like may fail here
        raise ValueError(f"ink must be a 2-D array: {_first_line(error)}") from None
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


def _fit(values: np.ndarray, side: int) -> np.ndarray:
    """Resize so the longer side is `side`, keeping aspect (area-averaging down)."""
    height, width = values.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height):
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


# --------------------------------------------------------------------------
# Finding the digits

# Segmentation, in ink units (1 = typical ink), on the ink smoothed with a
# Gaussian of σ = 1 px (so paper grain does not fragment strokes): a piece of
# ink must reach SEED_LEVEL somewhere (and the noise significance) and
# extends while it stays above EDGE_LEVEL.
SEED_LEVEL = 0.35
EDGE_LEVEL = 0.2
# At most this many pieces of ink are considered (the largest ones).
MAX_PIECES = 120
# Pieces merge into one digit when they are stacked (x-ranges overlap by at
# least STACK_OVERLAP of the narrower one, vertical gap ≤ STACK_GAP) or when
# a small piece (shorter than PIECE_HEIGHT) lies within PIECE_GAP of another,
# provided the result still has a digit's shape (width ≤ DIGIT_ASPECT ×
# height, height ≤ 1.3 × reference).  Heights and gaps are fractions of the
# reference height: the tallest cluster of pieces lying closer to each other
# than their own size (a number, or a digit drawn in dots).
STACK_OVERLAP = 0.5
STACK_GAP = 0.35
PIECE_HEIGHT = 0.6
PIECE_GAP = 0.15
DIGIT_ASPECT = 1.3
# Groups shorter than this fraction of the tallest are marks, not digits.
MARK_HEIGHT = 0.4
# A group at least TOUCH_ASPECT × as wide as tall may be digits touching each
# other.  It is split where blur alone joins them (SPLIT_LEVELS), or between
# two loops side by side (each at least LOOP_AREA × height²), or, wider than
# SPLIT_ASPECT × its height, at its thinnest column.  Cutting touching
# digits more eagerly splits real handwriting: 10 % of MNIST digits are wider
# than tall and 1.5 % more than 1.3 times.
TOUCH_ASPECT = 0.9
SPLIT_LEVELS = (0.3, 0.4, 0.5, 0.6)
SPLIT_ASPECT = 2.0
LOOP_AREA = 0.04
# A faint group (mean ink below FAINT_INK) filling more than BLOB_FILL of its
# box and wider than half its height is a smudge or a shadow's edge.
BLOB_FILL = 0.75
FAINT_INK = 0.5


@dataclass(frozen=True)
class _Group:
    """Connected pieces of ink believed to be one digit (box in working pixels)."""

    x0: int
    y0: int
    x1: int
    y1: int
    labels: tuple[int, ...]

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def joined(self, other: _Group) -> _Group:
        return _Group(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
            self.labels + other.labels,
        )


def find_digits(image: Image.Image) -> list[DigitImage]:
    """All digits in the picture, left to right; [] when there is none.

    Boxes are in the pixels of the picture the user gave (open_image records
    that size when it reduces a large picture).  Raises TypeError if `image`
    is not a PIL image.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, got {type(image).__name__}")
    analysis = _analyse(_working_size(image))
    if not math.isfinite(analysis.significant):
        return []
    ink = analysis.ink
    labels, groups = _pieces(analysis)
    groups = _split_touching(_merge_pieces(groups), labels, analysis.smooth)
    groups = _drop_marks(groups, labels, ink)
    groups.sort(key=lambda group: group.x0 + group.x1)
    scale = _box_scale(image, ink.shape)
    return [
        DigitImage(_digit_pixels(group, ink, labels), _input_box(group, scale)) for group in groups
    ]


def _pieces(analysis: _Ink) -> tuple[np.ndarray, list[_Group]]:
    """Connected pieces of significant ink, tiny specks dropped."""
    smooth, significant = analysis.smooth, analysis.significant
    edge = max(EDGE_LEVEL, 0.75 * significant)
    seed = max(SEED_LEVEL, significant)
    labels, count = ndimage.label(smooth > edge, structure=np.ones((3, 3), bool))
    if count == 0:
        return labels, []
    seeded = np.zeros(count + 1, bool)
    seeded[labels[smooth > seed]] = True
    seeded = seeded[1:]
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    if not seeded.any():
        return labels, []
    keep = seeded & (areas >= max(3, 0.002 * areas[seeded].max()))
    chosen = np.nonzero(keep)[0]
    chosen = chosen[np.argsort(areas[chosen])[::-1][:MAX_PIECES]]
    slices = ndimage.find_objects(labels)
    groups = [
        _Group(
            slices[i][1].start,
            slices[i][0].start,
            slices[i][1].stop,
            slices[i][0].stop,
            (int(i) + 1,),
        )
        for i in chosen
    ]
    return labels, groups


def _merge_pieces(groups: list[_Group]) -> list[_Group]:
    """Join the pieces of broken digits, nearest pair first, until none fits."""
    reference = _reference_height(groups)
    while len(groups) > 1:
        pair = _best_pair(groups, reference)
        if pair is None:
            break
        i, j = pair
        merged = groups[i].joined(groups[j])
        groups = [g for k, g in enumerate(groups) if k not in (i, j)] + [merged]
    return groups


def _boxes(groups: list[_Group]) -> tuple[np.ndarray, ...]:
    boxes = np.array([(g.x0, g.y0, g.x1, g.y1) for g in groups], dtype=np.float64)
    return tuple(boxes[:, k] for k in range(4))


def _gaps(x0, y0, x1, y1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise x-overlap, y-gap and box gap (0 when boxes touch or overlap)."""
    x_overlap = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
    y_gap = np.maximum(y0[:, None], y0[None, :]) - np.minimum(y1[:, None], y1[None, :])
    return x_overlap, y_gap, np.maximum(np.maximum(-x_overlap, y_gap), 0)


def _reference_height(groups: list[_Group]) -> float:
    """Digit height to judge pieces by: the tallest cluster of nearby pieces.

    Pieces closer to each other than their own size cluster together, so a
    digit written as dots, or a number, counts at its full height.
    """
    if not groups:
        return 0.0
    x0, y0, x1, y1 = _boxes(groups)
    size = np.maximum(x1 - x0, y1 - y0)
    linked = _gaps(x0, y0, x1, y1)[2] <= np.minimum(size[:, None], size[None, :])
    cluster = np.arange(len(groups))
    changed = True
    while changed:  # spread the smallest index through each linked cluster
        spread = np.where(linked, cluster[None, :], len(groups)).min(axis=1)
        changed = bool((spread < cluster).any())
        cluster = np.minimum(cluster, spread)
    tops = np.full(len(groups), np.inf)
    bottoms = np.zeros(len(groups))
    np.minimum.at(tops, cluster, y0)
    np.maximum.at(bottoms, cluster, y1)
    return float((bottoms - tops)[np.isfinite(tops)].max())


def _best_pair(groups: list[_Group], reference: float) -> tuple[int, int] | None:
    """The closest pair of groups that belong to one digit, if any.

    Stacked pieces (a 5's detached bar, a 7's stem, a dotted stroke) and
    small pieces close to another join when the result is still
    digit-shaped.  Sizes and gaps are relative to the reference height.
    """
    x0, y0, x1, y1 = _boxes(groups)
    width, height = x1 - x0, y1 - y0
    x_overlap, y_gap, gap = _gaps(x0, y0, x1, y1)
    merged_width = np.maximum(x1[:, None], x1[None, :]) - np.minimum(x0[:, None], x0[None, :])
    merged_height = np.maximum(y1[:, None], y1[None, :]) - np.minimum(y0[:, None], y0[None, :])
    digit_shaped = (merged_width <= DIGIT_ASPECT * merged_height) & (
        merged_height <= 1.3 * reference
    )
    narrower = np.minimum(width[:, None], width[None, :])
    stacked = (x_overlap >= STACK_OVERLAP * narrower) & (y_gap <= STACK_GAP * reference)
    small = np.minimum(height[:, None], height[None, :]) < PIECE_HEIGHT * reference
    near = small & (gap <= PIECE_GAP * reference)
    fits = digit_shaped & (stacked | near)
    np.fill_diagonal(fits, False)
    if not fits.any():
        return None
    candidates = np.where(fits, gap, np.inf)
    i, j = np.unravel_index(int(np.argmin(candidates)), candidates.shape)
    return int(i), int(j)


def _split_touching(groups: list[_Group], labels: np.ndarray, smooth: np.ndarray) -> list[_Group]:
    """Separate digits that touch: first where only blur joins them, else by a cut.

    Only digit-tall groups at least TOUCH_ASPECT × as wide as tall are tried.
    """
    tallest = max((group.height for group in groups), default=0)
    result = []
    for group in groups:
        if group.width < TOUCH_ASPECT * group.height or group.height < MARK_HEIGHT * tallest:
            result.append(group)
            continue
        parts = _resegment(group, labels, smooth)
        if parts is None:
            result.extend(_cut(group, labels))
        else:  # each part may still be several digits
            result.extend(_split_touching(parts, labels, smooth))
    return result


def _resegment(group: _Group, labels: np.ndarray, smooth: np.ndarray) -> list[_Group] | None:
    """Split a wide group at a higher ink level, if that leaves several digits.

    Blur and smoothing can bridge a narrow gap between two digits with faint
    ink; at a higher level the digits come apart.  Levels are tried from low
    to high and the first that separates digit-tall groups (pieces regrouped
    as usual) wins, so thin parts of one digit, fainter than any bridge,
    stay together.  Every pixel of the group is then relabelled with the
    nearest piece (labels change in place).
    """
    window = (slice(group.y0, group.y1), slice(group.x0, group.x1))
    own = np.isin(labels[window], group.labels)
    first = int(labels.max()) + 1
    for level in SPLIT_LEVELS:
        pieces, parts = _parts_above(group, own & (smooth[window] > level), first)
        if len(parts) < 2 or any(part.height < 0.6 * group.height for part in parts):
            continue
        kept = np.isin(pieces, [label - first + 1 for part in parts for label in part.labels])
        _, (rows, cols) = ndimage.distance_transform_edt(~kept, return_indices=True)
        nearest = np.where(own, pieces[rows, cols] + (first - 1), 0)
        owner = np.zeros(int(nearest.max()) + 1, np.int32)
        for index, part in enumerate(parts, start=1):
            owner[list(part.labels)] = index
        if _splits_a_loop(own, owner[nearest]):
            return None  # the faint part closes a loop: one digit (a 0 drawn lightly)
        labels[window][own] = nearest[own]
        return [_Group(*_box_of(labels, part.labels, group), part.labels) for part in parts]
    return None


def _splits_a_loop(own: np.ndarray, parts: np.ndarray) -> bool:
    """Does any loop of the ink have its rim shared between different parts?"""
    holes, count = ndimage.label(ndimage.binary_fill_holes(own) & ~own)
    least = (0.1 * own.shape[0]) ** 2
    for index, found in enumerate(ndimage.find_objects(holes), start=1):
        grown = (
            slice(max(found[0].start - 2, 0), found[0].stop + 2),
            slice(max(found[1].start - 2, 0), found[1].stop + 2),
        )
        hole = holes[grown] == index
        if np.count_nonzero(hole) < least:
            continue
        rim = ndimage.binary_dilation(hole, iterations=2) & own[grown]
        if np.unique(parts[grown][rim]).size > 1:
            return True
    return False


def _parts_above(group: _Group, strong: np.ndarray, first: int) -> tuple[np.ndarray, list[_Group]]:
    """Connected pieces of `strong` (ids from `first`), specks dropped, regrouped."""
    pieces, count = ndimage.label(strong, structure=np.ones((3, 3), bool))
    if count < 2:
        return pieces, []
    areas = np.bincount(pieces.ravel(), minlength=count + 1)[1:]
    slices = ndimage.find_objects(pieces)
    parts = [
        _Group(
            group.x0 + slices[i][1].start,
            group.y0 + slices[i][0].start,
            group.x0 + slices[i][1].stop,
            group.y0 + slices[i][0].stop,
            (first + i,),
        )
        for i in range(count)
        if areas[i] >= 0.02 * areas.max()
    ]
    return pieces, _merge_pieces(parts)


def _box_of(labels: np.ndarray, ids: tuple[int, ...], group: _Group) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(np.isin(labels[group.y0 : group.y1, group.x0 : group.x1], ids))
    return (
        group.x0 + int(cols.min()),
        group.y0 + int(rows.min()),
        group.x0 + int(cols.max()) + 1,
        group.y0 + int(rows.max()) + 1,
    )


def _cut(group: _Group, labels: np.ndarray) -> list[_Group]:
    """Split a wide group with a vertical cut, and the parts again if need be.

    The cut goes at the thinnest column between two loops side by side (no
    single digit has them, as in "00" or "68"); a group wider than
    SPLIT_ASPECT × its height is cut at its thinnest middle column in any
    case.  Both parts must be digit-tall.
    """
    if group.width < TOUCH_ASPECT * group.height:
        return [group]
    mask = _own_mask(group, labels)
    columns = mask.sum(axis=0)
    cut = _cut_between_loops(mask, columns)
    if cut is None and group.width > SPLIT_ASPECT * group.height:
        cut = _thinnest_column(columns, 0.25 * group.width, 0.75 * group.width)
    if cut is None:
        return [group]
    parts = [_part(group, mask, 0, cut), _part(group, mask, cut, group.width)]
    if any(part is None or part.height < 0.5 * group.height for part in parts):
        return [group]
    return [piece for part in parts for piece in _cut(part, labels)]


def _thinnest_column(columns: np.ndarray, start: float, stop: float) -> int | None:
    """The column with least ink in [start, stop), nearest the middle among equals."""
    lo, hi = max(1, round(start)), min(len(columns) - 1, round(stop))
    if hi - lo < 1:
        return None
    span = columns[lo:hi]
    candidates = np.flatnonzero(span == span.min()) + lo
    return int(candidates[np.argmin(np.abs(candidates - (start + stop) / 2))])


def _cut_between_loops(mask: np.ndarray, columns: np.ndarray) -> int | None:
    """A cut column between two big loops side by side, if the group has them.

    Loops must each cover LOOP_AREA of the group's height squared and share
    most of their height: a slanted 8 has its loops one above the other, and
    a 0 closed with an overlap has a second loop, but a tiny one.
    """
    holes, count = ndimage.label(ndimage.binary_fill_holes(mask) & ~mask)
    if count < 2:
        return None
    least = LOOP_AREA * mask.shape[0] ** 2
    loops = sorted(
        (found[1].start, found[1].stop, found[0].start, found[0].stop)
        for index, found in enumerate(ndimage.find_objects(holes))
        if np.count_nonzero(holes[found] == index + 1) >= least
    )
    for left, right in zip(loops[:-1], loops[1:], strict=True):
        shared = min(left[3], right[3]) - max(left[2], right[2])
        shorter = min(left[3] - left[2], right[3] - right[2])
        if right[0] >= left[1] and shared >= 0.5 * shorter:
            return _thinnest_column(columns, left[1], right[0] + 1)
    return None


def _part(group: _Group, mask: np.ndarray, start: int, stop: int) -> _Group | None:
    rows = np.flatnonzero(mask[:, start:stop].any(axis=1))
    if rows.size == 0:
        return None
    return _Group(
        group.x0 + start,
        group.y0 + int(rows[0]),
        group.x0 + stop,
        group.y0 + int(rows[-1]) + 1,
        group.labels,
    )


def _drop_marks(groups: list[_Group], labels: np.ndarray, ink: np.ndarray) -> list[_Group]:
    """Drop dots, dashes and specks (much shorter than the tallest) and faint blobs."""
    groups = [g for g in groups if not _is_blob(g, labels, ink)]
    if not groups:
        return groups
    tallest = max(group.height for group in groups)
    return [g for g in groups if g.height >= max(MIN_DIGIT_HEIGHT, MARK_HEIGHT * tallest)]


def _is_blob(group: _Group, labels: np.ndarray, ink: np.ndarray) -> bool:
    if group.width <= 0.5 * group.height:
        return False
    own = _own_mask(group, labels)
    if float(own.mean()) <= BLOB_FILL:
        return False
    return float(ink[group.y0 : group.y1, group.x0 : group.x1][own].mean()) < FAINT_INK


def _own_mask(group: _Group, labels: np.ndarray) -> np.ndarray:
    window = labels[group.y0 : group.y1, group.x0 : group.x1]
    return np.isin(window, group.labels)


def _digit_pixels(group: _Group, ink: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The group's own ink (other digits masked out) as an MNIST image."""
    window = labels[group.y0 : group.y1, group.x0 : group.x1]
    own = np.isin(window, group.labels)
    others = (window > 0) & ~own
    keep = ndimage.binary_dilation(own, iterations=1) & ~others
    return to_mnist(ink[group.y0 : group.y1, group.x0 : group.x1] * keep)


def _box_scale(image: Image.Image, shape: tuple[int, ...]) -> tuple[float, float, int, int]:
    """Input pixels per working pixel, and the input size, for reporting boxes.

    The size open_image recorded is trusted only while it still matches the
    picture's shape (an image cropped or resized since then has its own size).
    """
    width, height = image.size
    source = image.info.get(SOURCE_SIZE_KEY)
    if isinstance(source, tuple) and len(source) == 2 and min(source) > 0:
        sx, sy = source[0] / width, source[1] / height
        if sx >= 1 and sy >= 1 and abs(sx - sy) <= 0.05 * max(sx, sy) + 1 / min(width, height):
            width, height = int(source[0]), int(source[1])
    return width / shape[1], height / shape[0], width, height


def _input_box(group: _Group, scale: tuple[float, float, int, int]) -> tuple[int, int, int, int]:
    sx, sy, width, height = scale
    return (
        max(0, math.floor(group.x0 * sx)),
        max(0, math.floor(group.y0 * sy)),
        min(width, math.ceil(group.x1 * sx)),
        min(height, math.ceil(group.y1 * sy)),
    )
