"""Helpers shared by the reading tests: encoding pictures, comparing boxes, checking finds."""

import io
from functools import cache

from PIL import Image

from digits.paths import DEFAULT_STRING_MODEL
from digits.reading.ctc import StringModel
from digits.reading.segment import DigitImage, find_digits


@cache
def committed_string_model() -> StringModel:
    """The committed stringmodel.h5, loaded once by the numpy engine."""
    return StringModel.load(DEFAULT_STRING_MODEL)


def digits_found(image: Image.Image) -> list[DigitImage]:
    """find_digits with the committed string model."""
    return find_digits(image, committed_string_model())


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def overlap(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def assert_found(image: Image.Image, boxes=None, min_overlap=0.6):
    """find_digits finds exactly the drawn digits, left to right, where they were drawn."""
    truth = boxes if boxes is not None else image.info["boxes"]
    found = digits_found(image)
    assert len(found) == len(truth), ([d.box for d in found], truth)
    for digit, box in zip(found, truth, strict=True):
        assert overlap(digit.box, box) >= min_overlap, (digit.box, box)
    return found
