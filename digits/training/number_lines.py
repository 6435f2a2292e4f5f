"""Whole numbers composed from MNIST digits, turned into the lines the string model learns from.

A user writes a number at some size with one pen and one slant; neighbouring digits may stand
apart, touch, or overlap so that their ink crosses. We rebuild that from MNIST digits: each digit
is cropped to its ink, enlarged (2–3×, as a picture's ink is larger than 20 px), varied in size,
slant and stroke width, and placed on a shared, jittered baseline at a gap of the chosen kind; the
ink of neighbours is merged by taking the maximum, as pen over pen does. Small specks and rule
remnants are added to some numbers, since the reading pipeline's groups carry them too. Each
number then goes through `to_line`, exactly as a group of ink does when it is read.

Only the `images` and `labels` arrays passed in are read, so training and validation numbers come
from whichever disjoint sets of digits the caller gives (never MNIST's test digits: see
`train_numbers`). No TensorFlow here: the worker processes that compose lines import only this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from digits.reading.mnist_style import to_line
from digits.training.number_model import FRAME_STRIDE

GAP_KINDS = ("spaced", "touching", "overlapping")
GAP_KIND_WEIGHTS = (0.2, 0.35, 0.45)
# Box overlap of "overlapping" neighbours, as a fraction of their mean width: wider than the
# 8–25 % that bench.strings measures, so that its numbers lie inside what training saw.
OVERLAP = (0.0, 0.35)
# Gap between the boxes of "spaced" digits, as a fraction of the digit height.
SPACED_GAP = (0.1, 0.4)
# Ink this bright counts when finding boxes and where neighbours touch (as to_line's crop).
INK = 0.1
# Single digits are frequent because the reader relies on the string model to say when a group
# of ink is just one digit.
LENGTH_WEIGHTS = {1: 0.2, 2: 0.2, 3: 0.15, 4: 0.15, 5: 0.15, 6: 0.15}
MAX_DIGITS = max(LENGTH_WEIGHTS)
# Stroke change applied to the whole number (one pen): grey erosion (−1) or dilation radius in px
# at scale 2.5, where MNIST's stroke is about 6 px. to_line normalises only strokes outside
# 0.8–1.5× MNIST's, so the rest of this variation reaches the model as it would in use.
STROKE_CHANGES = {-1: 0.15, 0: 0.45, 1: 0.25, 2: 0.15}
SPECK_CHANCE = 0.15
# A fifth of the numbers mix gap kinds, as handwriting does.
MIXED_GAP_CHANCE = 0.2


@dataclass(frozen=True)
class Number:
    """A composed number: its ink, its digits, and where each digit's ink lies."""

    ink: np.ndarray  # HxW float32 in [0, 1], 1 = ink
    label: str
    spans: tuple[tuple[int, int], ...]  # each digit's ink columns [x0, x1) in `ink`


def number_lines(images, labels, count: int, seed) -> tuple[list[np.ndarray], np.ndarray]:
    """`count` random numbers composed from these digits, as lines and CTC targets.

    Lines are float16 (28, W) arrays (half the memory; to_line's values are in [0, 1]). Target row
    k is [frames, digits, d1 … d6]: line k's own frame count (batches pad lines to their widest,
    and padding frames must not count), its number of digits, the digits (then zeros).
    `seed` seeds a numpy Generator (an int or a sequence of ints).
    """
    rng = np.random.default_rng(seed)
    lines, targets = [], np.zeros((count, 2 + MAX_DIGITS), np.int32)
    for index in range(count):
        number = random_number(images, labels, rng)
        line, _ = to_line(number.ink)
        lines.append(line.astype(np.float16))
        digits = [int(d) for d in number.label]
        targets[index, :2] = line.shape[1] // FRAME_STRIDE, len(digits)
        targets[index, 2 : 2 + len(digits)] = digits
    return lines, targets


def random_number(images, labels, rng: np.random.Generator) -> Number:
    """A number of random length; its gap kinds mixed now and then; specks on some."""
    length = int(rng.choice(list(LENGTH_WEIGHTS), p=list(LENGTH_WEIGHTS.values())))
    kind = str(rng.choice(GAP_KINDS, p=GAP_KIND_WEIGHTS))
    kinds = [
        str(rng.choice(GAP_KINDS)) if rng.random() < MIXED_GAP_CHANCE else kind
        for _ in range(length - 1)
    ]
    return compose(images, labels, rng, length, kinds, SPECK_CHANCE)


def compose(images, labels, rng, length: int, kinds, speck_chance: float = 0.0) -> Number:
    """A number of `length` random digits from `images` (uint8 N×28×28) with `labels`.

    `kinds` gives the gap kind between each pair of neighbours: one kind for all, or a list of
    length − 1. With probability `speck_chance` the number gets specks or a rule remnant.
    """
    if isinstance(kinds, str):
        kinds = [kinds] * (length - 1)
    picks = rng.integers(len(images), size=length)
    scale = rng.uniform(2.0, 3.0)
    slant = float(np.clip(rng.normal(0, 0.12), -0.3, 0.3))
    stroke = int(rng.choice(list(STROKE_CHANGES), p=list(STROKE_CHANGES.values())))
    radius = round(abs(stroke) * scale / 2.5)
    digits = [
        _digit_ink(
            images[i],
            scale * rng.uniform(0.85, 1.15),
            slant + rng.uniform(-0.05, 0.05),
            stroke,
            radius,
        )
        for i in picks
    ]
    height = 20 * scale
    tops = [round(-d.shape[0] / 2 + rng.uniform(-0.06, 0.06) * height) for d in digits]
    lefts = [0]
    for k in range(1, length):
        previous = (digits[k - 1], lefts[-1], tops[k - 1])
        lefts.append(_next_left(previous, digits[k], tops[k], (kinds[k - 1], scale), rng))
    ink, dx = _paste(digits, tops, lefts)
    if rng.random() < speck_chance:
        _add_specks(ink, height, scale, rng)
    spans = tuple(
        (left + dx, left + dx + d.shape[1]) for d, left in zip(digits, lefts, strict=True)
    )
    return Number(ink, "".join(str(int(labels[i])) for i in picks), spans)


def _digit_ink(image, scale: float, shear: float, stroke: int, radius: int) -> np.ndarray:
    """One MNIST digit cropped to its ink, enlarged, slanted and re-stroked, cropped again."""
    values = _crop(np.asarray(image, np.float32) / 255)
    height, width = values.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    big = Image.fromarray(values, "F").resize(size, Image.Resampling.BILINEAR)
    # Shear about the middle row: x_in = x_out + shear·(y − h/2) − room, in a wider canvas.
    room = abs(shear) * size[1] / 2
    canvas = (size[0] + 2 * round(room) + 2, size[1])
    sheared = big.transform(
        canvas,
        Image.Transform.AFFINE,
        (1, shear, -round(room) - shear * size[1] / 2, 0, 1, 0),
        resample=Image.Resampling.BILINEAR,
    )
    values = np.clip(np.asarray(sheared), 0, 1)
    if stroke > 0:
        values = ndimage.grey_dilation(np.pad(values, radius), footprint=_disk(radius))
    elif stroke < 0:
        thinner = ndimage.grey_erosion(values, footprint=_disk(radius))
        # A digit written thinly already would vanish: keep it as it is.
        values = thinner if thinner.sum() > 0.4 * values.sum() else values
    return _crop(values)


def _crop(values: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(values > INK * float(values.max()))
    return np.ascontiguousarray(values[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])


def _disk(radius: int) -> np.ndarray:
    offsets = np.arange(-radius, radius + 1)
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius + radius


def _next_left(previous, digit, top, gap, rng) -> int:
    """Left column of the next digit, placed against the previous one (its ink, left, top).

    `gap` is (kind, scale of the composite over the 20-px line).
    """
    kind, scale = gap
    previous_ink, previous_left, _ = previous
    previous_right = previous_left + previous_ink.shape[1]
    if kind == "spaced":
        return round(previous_right + rng.uniform(*SPACED_GAP) * 20 * scale)
    if kind == "overlapping":
        mean_width = (previous_ink.shape[1] + digit.shape[1]) / 2
        return round(previous_right - rng.uniform(*OVERLAP) * mean_width)
    # Touching: slide the digit left until its ink meets the previous digit's ink in some row,
    # then up to one line pixel further (`scale` pixels here), so the strokes merge a little.
    contact = _contact_left(previous, digit, top)
    # Interlocking shapes (a 7's arm over a 4) can slide far; keep the reading order plain.
    return max(round(contact - rng.uniform(0, scale)), previous_left + previous_ink.shape[1] // 2)


def _contact_left(previous, digit, top) -> int:
    """The left column at which `digit`'s ink first touches the previous digit's (ink, left, top)
    when slid towards it from the right, rows aligned by their tops."""
    previous, previous_left, previous_top = previous
    first = max(top, previous_top)
    last = min(top + digit.shape[0], previous_top + previous.shape[0])
    if last <= first:
        return previous_left + previous.shape[1]
    right_ink = previous[first - previous_top : last - previous_top] > INK
    left_ink = digit[first - top : last - top] > INK
    both = right_ink.any(axis=1) & left_ink.any(axis=1)
    if not both.any():
        return previous_left + previous.shape[1]
    rightmost = right_ink.shape[1] - 1 - np.argmax(right_ink[:, ::-1], axis=1)
    leftmost = np.argmax(left_ink, axis=1)
    # From this left column on, the two inks of a row do not overlap; at it they meet.
    return int(previous_left + (rightmost + 1 - leftmost)[both].max())


def _paste(digits, tops, lefts) -> tuple[np.ndarray, int]:
    """Digits merged by maximum onto one canvas with a margin; returns it and the x shift."""
    margin = 8
    x0 = min(lefts) - margin
    y0 = min(tops) - margin
    width = max(left + d.shape[1] for d, left in zip(digits, lefts, strict=True)) - x0 + margin
    height = max(top + d.shape[0] for d, top in zip(digits, tops, strict=True)) - y0 + margin
    ink = np.zeros((height, width), np.float32)
    for digit, top, left in zip(digits, tops, lefts, strict=True):
        window = ink[top - y0 : top - y0 + digit.shape[0], left - x0 : left - x0 + digit.shape[1]]
        np.maximum(window, digit, out=window)
    return ink, -x0


def _add_specks(ink: np.ndarray, height: float, scale: float, rng) -> None:
    """Add 1–3 dots, or a short piece of a ruled line, in and just around the digits (in place).

    `height` is the digits' nominal height in the ink, `scale` the size of one line pixel there.
    """
    rows, cols = np.nonzero(ink > INK)
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    yy, xx = np.mgrid[: ink.shape[0], : ink.shape[1]]
    if rng.random() < 0.3:
        # A remnant of a ruled line the pipeline removed: thin, horizontal, near the bottom or top.
        y = rng.choice([bottom, top]) + rng.uniform(-0.05, 0.05) * height
        thickness = rng.uniform(0.5, 1.2) * scale
        length = rng.uniform(0.2, 0.8) * (right - left)
        x = rng.uniform(left, right - length)
        mark = (np.abs(yy - y) <= thickness / 2) & (xx >= x) & (xx <= x + length)
    else:
        mark = np.zeros(ink.shape, bool)
        for _ in range(rng.integers(1, 4)):
            y = rng.uniform(top, bottom)
            x = rng.uniform(left - 0.1 * height, right + 0.1 * height)
            mark |= (yy - y) ** 2 + (xx - x) ** 2 <= (rng.uniform(0.4, 1.2) * scale) ** 2
    np.maximum(ink, mark.astype(np.float32), out=ink)
