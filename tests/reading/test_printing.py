"""Printed lines go, digit strokes stay (digits.reading.printing).

Most tests draw ink maps directly (thin printed lines, thicker pen strokes, blurred as a photo
would be), so that what must be removed and what must stay is known pixel by pixel; an ink map is
a contrast map whose paper is 0 and whose ink is 1. The last ones read composed MNIST numbers end
to end.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from digits.reading import ink as ink_module
from digits.reading.printing import judge, lines
from digits.reading.printing.remove import remove_printing
from digits.synthetic.numbers import number_samples
from tests.reading.helpers import digits_found

SCALE = 4  # drawings are made this many times larger, then area-averaged (anti-aliased)


class Drawing:
    """An ink map drawn stroke by stroke, remembering which pixels are digits and which print."""

    def __init__(self, width: int, height: int):
        self.size = (width, height)
        self.digit = self._layer()
        self.printed = self._layer()

    def _layer(self):
        image = Image.new("L", (self.size[0] * SCALE, self.size[1] * SCALE))
        return image, ImageDraw.Draw(image)

    def pen(self, points, width: float = 5.0):
        """A digit stroke (a polyline with round ends), `width` px wide."""
        self._line(self.digit[1], points, width, round_ends=True)

    def rule(self, points, width: float = 2.0, strength: float = 1.0):
        """A printed line, `width` px wide, ink `strength` (grey print is fainter)."""
        self._line(self.printed[1], points, width, fill=round(255 * strength))

    def box(self, x0, y0, x1, y1, width: float = 2.0):
        for points in (
            ((x0, y0), (x1, y0)),
            ((x1, y0), (x1, y1)),
            ((x1, y1), (x0, y1)),
            ((x0, y1), (x0, y0)),
        ):
            self.rule(points, width)

    def grid(self, step: int, width: float, strength: float = 1.0):
        """Squared paper over the whole drawing: lines every `step` px from (10, 8)."""
        width_px, height_px = self.size
        for y in range(8, height_px, step):
            self.rule([(0, y), (width_px, y)], width=width, strength=strength)
        for x in range(10, width_px, step):
            self.rule([(x, 0), (x, height_px)], width=width, strength=strength)

    def _line(self, draw, points, width, fill=255, round_ends=False):
        scaled = [(x * SCALE, y * SCALE) for x, y in points]
        pixels = max(1, round(width * SCALE))
        draw.line(scaled, fill=fill, width=pixels, joint="curve")
        if round_ends:
            radius = pixels / 2
            for x, y in (scaled[0], scaled[-1]):
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
        elif len(scaled) == 2:  # square ends, so that box corners close
            (xa, ya), (xb, yb) = scaled
            length = math.hypot(xb - xa, yb - ya) or 1
            dx, dy = (xb - xa) / length * pixels / 2, (yb - ya) / length * pixels / 2
            draw.line([(xa - dx, ya - dy), (xb + dx, yb + dy)], fill=fill, width=pixels)

    def layer(self, which) -> np.ndarray:
        image = which[0].resize(self.size, Image.Resampling.BOX)
        return np.asarray(image, np.float32) / 255

    def ink(self, blur: float = 0.7) -> np.ndarray:
        """Digits and print together, as ink (1 = ink), lightly blurred like a photo."""
        ink = np.maximum(self.layer(self.digit), self.layer(self.printed))
        return np.clip(ndimage.gaussian_filter(ink, blur), 0, 1).astype(np.float32)

    def digit_mask(self) -> np.ndarray:
        return self.layer(self.digit) > 0.5

    def print_only(self) -> np.ndarray:
        """Printed pixels at least 3 px away from any digit stroke."""
        near_digit = ndimage.binary_dilation(self.layer(self.digit) > 0.05, iterations=3)
        return (self.layer(self.printed) > 0.5) & ~near_digit


def one(d: Drawing, x: float, top: float, height: float, width: float = 5.0):
    d.pen([(x + 0.12 * height, top), (x, top + height)], width)


def seven(d: Drawing, x: float, top: float, height: float, width: float = 5.0):
    d.pen([(x, top), (x + 0.6 * height, top), (x + 0.25 * height, top + height)], width)


def zero(d: Drawing, x: float, top: float, height: float, width: float = 5.0):
    centre, radii = (x + 0.3 * height, top + 0.5 * height), (0.3 * height, 0.5 * height)
    angles = np.linspace(0, 2 * np.pi, 40)
    d.pen(
        [(centre[0] + radii[0] * math.cos(a), centre[1] + radii[1] * math.sin(a)) for a in angles],
        width,
    )


def four(d: Drawing, x: float, top: float, height: float, width: float = 5.0):
    d.pen(
        [
            (x + 0.45 * height, top),
            (x, top + 0.65 * height),
            (x + 0.65 * height, top + 0.65 * height),
        ],
        width,
    )
    d.pen([(x + 0.5 * height, top + 0.3 * height), (x + 0.5 * height, top + height)], width)


def number(d: Drawing, left: float, top: float, height: float, writers, gap: float = 0.9):
    for k, write in enumerate(writers):
        write(d, left + k * gap * height, top, height)


def kept(before: np.ndarray, after: np.ndarray, where: np.ndarray) -> float:
    """Share of the ink at `where` that is still there."""
    return float(after[where].sum() / max(before[where].sum(), 1e-6))


def check(d: Drawing, digits_kept: float = 0.95, print_left: float = 0.05):
    ink = d.ink()
    cleaned = remove_printing(ink)
    assert kept(ink, cleaned, d.digit_mask()) >= digits_kept
    assert kept(ink, cleaned, d.print_only()) <= print_left
    return ink, cleaned


# --------------------------------------------------------------------------
# Printed lines go


def test_a_row_of_boxes_with_shared_walls_goes():
    d = Drawing(330, 110)
    for k in range(4):
        d.box(20 + 72 * k, 15, 92 + 72 * k, 95)
    number(d, 38, 25, 60, [seven, zero, one, four], gap=1.2)
    check(d)


def test_separate_boxes_go():
    d = Drawing(360, 110)
    for k in range(4):
        d.box(20 + 85 * k, 15, 90 + 85 * k, 95, width=3)
    number(d, 35, 25, 60, [zero, four, one, seven], gap=85 / 60)
    check(d)


def test_digits_crossing_their_box_keep_their_ink():
    d = Drawing(260, 120)
    for k in range(3):
        d.box(20 + 70 * k, 25, 90 + 70 * k, 95)
    # Too big for their boxes: strokes cross the top and bottom edges.  The 0 runs along
    # a wall: the wall's ink beside it stays (it only thickens the stroke).
    number(d, 30, 12, 95, [zero, seven, four], gap=70 / 95)
    ink, cleaned = check(d, print_left=0.08)
    crossings = d.digit_mask() & (d.layer(d.printed) > 0.5)
    assert crossings.any()
    assert kept(ink, cleaned, crossings) >= 0.9


def test_neighbouring_sides_go_where_digits_touch_them():
    # Separate boxes 5 px apart: where a digit touches one side, the two sides blur into one
    # thick stroke, yet both are print.  A 0 touches its right side, a 4 its left one.
    d = Drawing(200, 110)
    for left in (20, 105):
        d.box(left, 15, left + 80, 95)
    zero(d, 64, 25, 60)  # its right edge at x = 100, on the side
    four(d, 106, 25, 60)
    check(d)


def test_an_edge_a_stroke_runs_along_goes():
    # A stroke 3 px above a box's bottom edge, as long as the box: the edge is too thick there
    # to be found as a line, but the row of boxes shows where it runs, and paper parts the two.
    d = Drawing(330, 110)
    for k in range(4):
        d.box(20 + 72 * k, 15, 92 + 72 * k, 95)
    number(d, 38, 25, 60, [seven, zero, one, four], gap=1.2)
    d.pen([(98, 55), (158, 88)], width=4)
    d.pen([(98, 88), (160, 88)], width=4)  # the bar of a 2, ending near both sides
    check(d)


def test_boxes_whose_digits_all_touch_an_edge_go():
    # Separate boxes, each with a stroke along its top or bottom edge that makes that edge
    # too thick to be found as a line: no box shows both its edges, but the row's other
    # boxes show where each hidden one runs.
    d = Drawing(310, 110)
    for left in (20, 115, 210):
        d.box(left, 15, left + 80, 95)
    for left in (20, 210):  # 7s with their bars along the top edge
        d.pen([(left + 4, 20), (left + 70, 20), (left + 30, 88)])
    d.pen([(125, 30), (180, 30), (125, 90), (190, 90)])  # a 2 with its base along the bottom
    check(d)


def test_boxes_whose_digits_all_hide_the_same_edge_go():
    # Every box's top edge has a stroke lying along it (7s with their bars there): no stretch
    # of that edge is found as a line, only the bottom edge and the sides, which end on it.
    # Where the sides' other ends line up, the ink follows the hidden edge all the way.
    d = Drawing(330, 110)
    for k in range(4):
        d.box(20 + 72 * k, 15, 92 + 72 * k, 95)
    for k in range(4):
        left = 20 + 72 * k
        d.pen([(left + 6, 19), (left + 66, 19), (left + 30, 88)])
    check(d)


def test_ruled_lines_go_and_crossing_strokes_stay():
    d = Drawing(400, 150)
    for y in (20, 62, 104, 146):
        d.rule([(0, y), (400, y)], width=2)
    number(d, 40, 40, 64, [one, four, seven, zero, one])  # sits on y=104, crosses y=62
    ink, cleaned = check(d)
    crossings = d.digit_mask() & (d.layer(d.printed) > 0.5)
    assert kept(ink, cleaned, crossings) >= 0.9


def test_squared_paper_goes():
    d = Drawing(320, 160)
    d.grid(24, width=1.5)
    number(d, 47, 40, 70, [seven, zero, four, one])  # no stroke exactly along a grid line
    check(d, digits_kept=0.93)


def test_tilted_faint_lines_go():
    d = Drawing(400, 160)
    slope = math.tan(math.radians(4))
    for y in (25, 70, 115):
        d.rule([(0, y), (400, y + 400 * slope)], width=1.5, strength=0.45)
    number(d, 50, 40, 60, [zero, seven, one, four])
    check(d)


def test_a_writing_line_on_a_form_goes():
    """A line under the number, not reaching the picture's borders, much longer than a digit."""
    d = Drawing(420, 120)
    d.rule([(30, 92), (390, 92)], width=2)
    number(d, 60, 30, 60, [four, one, seven, zero])
    check(d)


# --------------------------------------------------------------------------
# Pictures without printed lines stay as they are


def test_a_number_without_lines_is_unchanged():
    d = Drawing(330, 110)
    number(d, 20, 20, 70, [one, seven, four, zero, one, one])
    ink = d.ink()
    cleaned = remove_printing(ink)
    assert cleaned is ink


def test_a_picture_shorter_than_a_printed_line_is_unchanged():
    # An MNIST-sized picture: a 4 whose bar runs from border to border is no printed line.
    d = Drawing(28, 28)
    d.pen([(0, 16), (27, 16)], width=3)
    d.pen([(18, 2), (18, 27)], width=3)
    ink = d.ink()
    assert remove_printing(ink) is ink


@pytest.mark.parametrize("write", [one, seven, four], ids=["1", "7", "4"])
def test_a_lone_straight_digit_is_kept(write):
    d = Drawing(90, 120)
    write(d, 25, 15, 90, width=6)
    ink = d.ink()
    cleaned = remove_printing(ink)
    assert cleaned is ink


def test_a_tightly_cropped_one_and_seven_are_kept():
    """A 1 from the top border to the bottom, a 7 whose bar spans the picture's width."""
    for write, size in ((one, (30, 80)), (seven, (54, 80))):
        d = Drawing(*size)
        write(d, 3, 0, 80, width=5)
        ink = d.ink()
        assert remove_printing(ink) is ink


def test_thin_pen_sevens_with_joined_bars_are_kept():
    """777 written with a thin pen and bars touching: a straight-ish stroke 2½ digits long."""
    d = Drawing(260, 120)
    for k in range(3):
        d.pen([(20 + 66 * k, 20), (90 + 66 * k, 20), (50 + 66 * k, 100)], width=3)
    ink = d.ink()
    cleaned = remove_printing(ink)
    assert kept(ink, cleaned, d.digit_mask()) >= 0.97


def test_a_one_inside_a_box_touching_top_and_bottom_is_kept():
    """A pen 1 thicker than the printing, from the box's top edge to its bottom edge."""
    d = Drawing(250, 110)
    for k in range(3):
        d.box(20 + 70 * k, 15, 90 + 70 * k, 95)
    d.pen([(125, 17), (125, 93)], width=6)
    zero(d, 35, 25, 60)
    four(d, 170, 25, 60)
    check(d, digits_kept=0.9)


# --------------------------------------------------------------------------
# On contrast maps, before normalising


def test_contrast_removal_is_the_identity_without_lines():
    d = Drawing(200, 100)
    number(d, 20, 15, 70, [one, seven])
    contrast = d.ink() * 0.6
    assert remove_printing(contrast) is contrast


def test_contrast_removal_takes_a_dense_grid_away():
    d = Drawing(320, 160)
    d.grid(14, width=2, strength=0.5)
    number(d, 40, 40, 70, [seven, zero, four, one])
    contrast = d.ink() * 0.6
    cleaned = remove_printing(contrast)
    assert kept(contrast, cleaned, d.print_only()) <= 0.1
    assert kept(contrast, cleaned, d.digit_mask()) >= 0.95


def test_faint_squared_paper_no_longer_hides_faint_digits():
    """Faint grid lines, too faint to segment, still raise the noise level over faint digits;
    removed before normalising, they do not."""
    d = Drawing(320, 160)
    d.grid(16, width=1.5, strength=0.3)
    number(d, 47, 40, 70, [seven, zero, four, one])
    rng = np.random.default_rng(0)
    contrast = (d.ink() * 0.6 + rng.normal(0, 0.01, d.ink().shape)).astype(np.float32)
    before = ink_module._normalise(contrast).significant
    after = ink_module._normalise(remove_printing(contrast)).significant
    assert after < 0.6 * before


def test_the_ink_map_of_a_picture_in_boxes_holds_no_frame():
    d = Drawing(330, 110)
    for k in range(4):
        d.box(20 + 72 * k, 15, 92 + 72 * k, 95)
    number(d, 38, 25, 60, [seven, zero, one, four], gap=1.2)
    picture = Image.fromarray(np.uint8(255 - 235 * d.ink()))
    analysis = ink_module.analyse(picture)
    frame = d.print_only()
    assert analysis.ink[frame].max() < 0.2
    assert analysis.smooth[frame].max() < 0.3  # segmentation reads smooth: no bridge is left
    assert kept(d.ink(), analysis.ink, d.digit_mask()) >= 0.9


# --------------------------------------------------------------------------
# End to end on composed MNIST numbers


@pytest.mark.mnist
@pytest.mark.parametrize("kind", ["boxes", "ruled", "squared"])
def test_composed_numbers_are_segmented_once_lines_are_removed(kind, mnist):
    """Digits found = digits written, on most composed numbers."""
    samples = number_samples(*mnist[1], kind, 20, seed=5)
    found = [len(digits_found(picture)) == len(text) for picture, text, _ in samples]
    assert sum(found) >= 18


def test_module_constants_are_consistent():
    assert lines.MIN_LENGTH == lines.MIN_STRIPS * lines.STRIP
    assert lines.MAX_THICKNESS < lines.MAX_RUN


def test_a_row_of_sides_closer_than_any_box_divides_into_no_boxes():
    # Six sides 6 px apart between two edges 30 px apart (squared paper, or hatching): at two
    # boxes to the row, all of them stand for one wall, and there is nothing to divide.
    edges = [lines.Line(False, across, 0.0, 0, 100, 3.0, 2.0, 1.0) for across in (10.0, 40.0)]
    sides = [
        lines.Line(True, float(column), 0.0, 10, 40, 3.0, 2.0, 1.0) for column in range(0, 31, 6)
    ]
    row = judge.Row(np.zeros((50, 100), np.float32), *edges, sides)
    assert row.dividing_walls() == []


@pytest.mark.parametrize("apart, found", [(60, 1), (8, 0)])
def test_a_hidden_edge_is_looked_for_only_where_its_sides_stand_far_apart(apart, found):
    # Two sides end on a bottom edge; the ink runs on along the row their tops share. Sides as
    # far apart as a box is wide show which way the hidden top edge runs; the two sides of
    # neighbouring boxes, a few px apart, do not.
    def line(vertical, intercept, start, stop):
        return lines.Line(vertical, intercept, 0.0, start, stop, 4.0, 2.5, 0.5)

    bottom = line(False, 80.0, 10, 150)
    sides = [line(True, 40.0, 20, 80), line(True, 40.0 + apart, 20, 80)]
    raw = np.zeros((100, 200), np.float32)
    raw[19:22, 30:120] = 0.5
    assert len(judge._opposite_edges(raw, [bottom, *sides])) == found
