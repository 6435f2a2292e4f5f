"""Finding the digits in a picture: pieces of ink grouped, groups split into digits, left to right.

    find_digits(image, string_model) -> [DigitImage(pixels 28×28, box, probabilities)]

Pieces of one digit (a 5's detached bar, a broken stroke) are merged into a group; dots, dashes
and smudges are dropped. Groups that hold several digits touching or overlapping are split where
the string model reads them (`numbers`); such a digit comes with the string model's
probabilities, the others are left for the digit model (with the string model's reading of them,
when it read one digit there). Each digit is then made MNIST-style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from digits.reading.ctc import StringModel
from digits.reading.images import SOURCE_SIZE_KEY, working_size
from digits.reading.ink import Ink, analyse
from digits.reading.mnist_style import to_mnist
from digits.reading.numbers import GroupInk, split_groups

# A digit is at least this many pixels tall in the working picture.
MIN_DIGIT_HEIGHT = 6


@dataclass(frozen=True)
class DigitImage:
    """One digit: MNIST-style pixels and where it was in the input picture."""

    pixels: np.ndarray = field(repr=False)  # (28, 28) float32 in [0, 1], light ink on black
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in input pixels, exclusive ends
    # The string model's ten probabilities for a digit split out of a group (the digit model
    # reads it too when the string model is unsure: reader); None: the digit model is to read
    # the pixels.
    probabilities: np.ndarray | None = field(default=None, repr=False)
    # For a whole group the digit model reads: the string model's probabilities when it read
    # one digit there, to combine with the digit model's.
    string_reading: np.ndarray | None = field(default=None, repr=False)


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


def find_digits(image: Image.Image, string_model: StringModel) -> list[DigitImage]:
    """All digits in the picture, left to right; [] when there is none.

    Boxes are in the pixels of the picture the user gave (open_image records
    that size when it reduces a large picture).  Raises TypeError if `image`
    is not a PIL image.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, got {type(image).__name__}")
    analysis = analyse(working_size(image))
    if not math.isfinite(analysis.significant):
        return []
    labels, groups = _pieces(analysis)
    groups = _drop_marks(_merge_pieces(groups), labels, analysis.ink)
    inks = [GroupInk(_own_ink(group, analysis.ink, labels), group.x0, group.y0) for group in groups]
    scale = _box_scale(image, analysis.ink.shape)
    digits = []
    for group, spans in zip(inks, split_groups(inks, string_model), strict=True):
        if len(spans) <= 1:
            box = (group.x0, group.y0, group.x1, group.y1)
            string_reading = spans[0].probabilities if spans else None
            pixels = to_mnist(group.ink)
            digits.append(DigitImage(pixels, _input_box(box, scale), string_reading=string_reading))
            continue
        for span in spans:
            part = GroupInk(group.ink[:, span.start : span.stop], group.x0 + span.start, group.y0)
            box = _input_box(_ink_box(part), scale)
            digits.append(DigitImage(to_mnist(part.ink), box, span.probabilities))
    return sorted(digits, key=lambda digit: digit.box[0] + digit.box[2])


def _pieces(analysis: Ink) -> tuple[np.ndarray, list[_Group]]:
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


def _own_ink(group: _Group, ink: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The group's ink, with other groups' ink masked out."""
    window = labels[group.y0 : group.y1, group.x0 : group.x1]
    own = np.isin(window, group.labels)
    others = (window > 0) & ~own
    keep = ndimage.binary_dilation(own, iterations=1) & ~others
    return ink[group.y0 : group.y1, group.x0 : group.x1] * keep


def _ink_box(part: GroupInk) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of a split digit: its columns, the rows it has ink in (all when none)."""
    rows = np.flatnonzero(part.ink.max(axis=1) > 0)
    if rows.size == 0:
        return part.x0, part.y0, part.x1, part.y1
    return part.x0, part.y0 + int(rows[0]), part.x1, part.y0 + int(rows[-1]) + 1


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


def _input_box(box: tuple[int, int, int, int], scale: tuple) -> tuple[int, int, int, int]:
    """A box in working pixels → the same box in the input picture's pixels."""
    x0, y0, x1, y1 = box
    sx, sy, width, height = scale
    return (
        max(0, math.floor(x0 * sx)),
        max(0, math.floor(y0 * sy)),
        min(width, math.ceil(x1 * sx)),
        min(height, math.ceil(y1 * sy)),
    )
