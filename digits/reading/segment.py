"""Finding the digits in a picture: pieces of ink grouped into digits, read left to right.

    find_digits(image) -> [DigitImage(pixels 28×28, box)], left to right

Pieces of one digit (a 5's detached bar, a broken stroke) are merged; digits that touch are
separated; dots, dashes and smudges are dropped. Each digit is then made MNIST-style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from digits.reading.images import SOURCE_SIZE_KEY, working_size
from digits.reading.ink import Ink, analyse
from digits.reading.mnist_style import to_mnist

# A digit is at least this many pixels tall in the working picture.
MIN_DIGIT_HEIGHT = 6


@dataclass(frozen=True)
class DigitImage:
    """One digit: MNIST-style pixels and where it was in the input picture."""

    pixels: np.ndarray = field(repr=False)  # (28, 28) float32 in [0, 1], light ink on black
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in input pixels, exclusive ends


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
    analysis = analyse(working_size(image))
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
