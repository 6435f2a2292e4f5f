"""Opening pictures: any file, bytes or stream Pillow can read, validated and decoded cheaply.

`open_image` refuses decompression bombs from the header, before any pixel is decoded, applies
the EXIF orientation, reduces very large pictures to a working size (JPEGs while decoding), and
turns every way a file can be broken into one `ImageError` whose text is one line for the user.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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


class ImageError(ValueError):
    """A picture that cannot be read; str(e) is one user-facing line."""


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
            # Pillow warns about damaged metadata it then skips (e.g. "Corrupt EXIF data"): the
            # picture is read or refused on its own merits, without Python's lines on stderr.
            warnings.simplefilter("ignore", UserWarning)
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
        raise ImageError(f"damaged image data ({first_line(error)})") from None
    except Exception as error:  # noqa: BLE001 - decoders raise many types on bad data
        raise ImageError(f"damaged image data ({first_line(error)})") from None


def first_line(error: BaseException) -> str:
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
    decoded = working_size(image)
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


def working_size(image: Image.Image) -> Image.Image:
    """The picture in a canonical mode, reduced if longer than WORKING_SIDE."""
    image = canonical(image)
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


def canonical(image: Image.Image) -> Image.Image:
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
