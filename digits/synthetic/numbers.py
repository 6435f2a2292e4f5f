"""Pictures of whole numbers made of MNIST digits, built the way NIST digit-string sets are.

``number_picture(digits, labels, kind, rng)`` composes 28×28 MNIST-style digits (white ink on
black, uint8) into a photographed number of one kind:

    spaced       gaps of 15–50 % of a digit's width between neighbouring boxes
    touching     boxes meet (gap −3 … +3 % of the width): inks touch or nearly touch
    overlapping  boxes overlap by 8–25 % of the width; inks may cross
    boxes        one digit per printed box (box lines 2–3 px, grey, red or blue)
    ruled        spaced digits sitting on (or crossing) the lines of ruled paper
    squared      spaced digits on squared paper whose cells are smaller than the digits

Every number: 35–90 px digit height (log-uniform), ±10 % size per digit, baseline jitter, one
slant (shear) for the number plus a little per digit, dark or blue ink on off-white paper with
grain and a light gradient, sometimes a blur, a JPEG round trip and a mild perspective.

``number_samples(images, labels, kind, count, seed)`` draws 2–6 digits per number from the
arrays it is given only (so test and training numbers never share a digit).  Sample k depends
only on (seed, kind, k), not on `count`.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KINDS = ("spaced", "touching", "overlapping", "boxes", "ruled", "squared")

# Gap between neighbouring digit boxes as a fraction of their mean width (negative: overlap).
GAPS = {
    "spaced": (0.15, 0.5),
    "touching": (-0.03, 0.03),
    "overlapping": (-0.25, -0.08),
    "ruled": (0.15, 0.5),
    "squared": (0.15, 0.5),
}
DIGIT_HEIGHT = (35, 90)  # px, log-uniform: a 20-px MNIST digit is scaled to this height
FIT_BOX = 0.9  # digits in boxes are at most this share of the box's width
SUPERSAMPLE = 4  # printed lines are drawn this many times larger, then area-averaged

PAPERS = [(245, 240, 230), (252, 252, 250), (236, 236, 228), (250, 246, 222), (228, 230, 234)]
DARK_INKS = [(18, 18, 24), (35, 35, 40), (10, 12, 20), (45, 40, 38)]
BLUE_INKS = [(25, 40, 150), (20, 60, 180), (30, 45, 110), (40, 70, 170)]
BOX_COLOURS = {"grey": (110, 110, 110), "red": (215, 60, 60), "blue": (60, 100, 200)}
PAPER_LINE_COLOURS = [(140, 175, 220), (120, 160, 215), (165, 165, 165), (150, 190, 200)]


# --------------------------------------------------------------------------
# One number


def number_picture(digit_images, labels, kind: str, rng: np.random.Generator):
    """A photographed number: (PIL RGB image, text, boxes).

    digit_images: MNIST-style 28×28 arrays (uint8 0–255 or float 0–1, white ink on black).
    boxes: each digit's (x0, y0, x1, y1) in the picture, exclusive ends, left to right.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    height = math.exp(rng.uniform(*np.log(DIGIT_HEIGHT)))
    slant = rng.uniform(-5, 10)  # degrees, number-wide; handwriting leans right more often
    inks = [
        _digit_ink(image, height * rng.uniform(0.9, 1.1), slant + rng.normal(0, 2))
        for image in digit_images
    ]
    if kind == "boxes":
        canvas, printed, places, inks = _in_boxes(inks, height, rng)
    else:
        canvas, printed, places = _in_a_row(inks, height, kind, rng)
    ink = _paste(canvas, inks, places)
    boxes = [(x, y, x + d.shape[1], y + d.shape[0]) for d, (x, y) in zip(inks, places, strict=True)]
    image, boxes = _photograph(ink, printed, boxes, kind, rng)
    return image, "".join(str(int(label)) for label in labels), boxes


def _digit_ink(image, height: float, slant_degrees: float) -> np.ndarray:
    """One MNIST digit cropped to its ink, smoothly enlarged to `height` per 20 px, slanted."""
    values = np.asarray(image, np.float32)
    if values.max() > 1:
        values = values / 255
    rows, cols = np.nonzero(values > 0.05)
    values = values[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = height / 20  # MNIST digits are 20 px in their longer side, like render_ink
    size = (max(1, round(values.shape[1] * scale)), max(1, round(values.shape[0] * scale)))
    big = Image.fromarray(values, "F").resize(size, Image.Resampling.BICUBIC)
    return _crop(np.clip(_sheared(big, math.tan(math.radians(slant_degrees))), 0, 1))


def _sheared(layer: Image.Image, k: float) -> np.ndarray:
    """Shear so the top leans right by k per pixel of height (output (x, y) reads input
    (x + k·y − max(k, 0)·h, y))."""
    width, height = layer.size
    out = (width + math.ceil(abs(k) * height), height)
    data = (1, k, -max(k, 0) * height, 0, 1, 0)
    return np.asarray(layer.transform(out, Image.Transform.AFFINE, data, Image.Resampling.BICUBIC))


def _crop(values: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(values > 0.05)
    return values[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _paste(shape, inks, places) -> np.ndarray:
    """All digits on one float canvas; where inks cross, the darker (max) wins, as pen on pen."""
    canvas = np.zeros(shape, np.float32)
    for ink, (x, y) in zip(inks, places, strict=True):
        region = canvas[y : y + ink.shape[0], x : x + ink.shape[1]]
        np.maximum(region, ink, out=region)
    return canvas


# --------------------------------------------------------------------------
# Layouts


def _in_a_row(inks, height, kind, rng):
    """Digits left to right at the kind's gaps on a jittered baseline; paper lines if any."""
    low, high = GAPS[kind]
    xs, x = [], 0.0
    for i, ink in enumerate(inks):
        if i:
            mean_width = (inks[i - 1].shape[1] + ink.shape[1]) / 2
            x += rng.uniform(low, high) * mean_width
        xs.append(x)
        x += ink.shape[1]
    bottoms = [rng.normal(0, 0.04 * height) for _ in inks]
    margin_x, margin_y = (height * rng.uniform(0.3, 1.0) for _ in range(2))
    left = margin_x - min(xs)
    baseline = margin_y + max(ink.shape[0] - b for ink, b in zip(inks, bottoms, strict=True))
    width = round(left + x + margin_x)
    canvas_height = round(baseline + max(bottoms) + margin_y)
    places = [
        (round(left + x0), round(baseline + b - ink.shape[0]))
        for x0, b, ink in zip(xs, bottoms, inks, strict=True)
    ]
    printed = None
    if kind == "ruled":
        printed = _ruled_lines((width, canvas_height), baseline, height, rng)
    elif kind == "squared":
        printed = _squared_lines((width, canvas_height), baseline, height, rng)
    return (canvas_height, width), printed, places


def _in_boxes(inks, height, rng):
    """A row of printed boxes (shared walls or separate), one digit roughly centred in each.

    Digits wider than FIT_BOX of the box are shrunk to fit it (a writer fits the box).  A
    few are taller than their box or placed off-centre so that their ink touches or crosses
    the frame: by at most 5 % of the box's width sideways (neighbouring digits stay apart:
    this kind measures frames, not touching digits) and a fifth of the digit's height at
    the top or bottom.  Some rows have empty boxes left over, as forms do.
    """
    cell_w = height * rng.uniform(1.05, 1.45)
    cell_h = height * rng.uniform(1.1, 1.5)
    shared = rng.random() < 0.6
    spacing = 0.0 if shared else cell_w * rng.uniform(0.1, 0.4)
    empty = int(rng.integers(1, 3)) if rng.random() < 0.3 else 0
    first = int(rng.integers(0, empty + 1))  # empty boxes before the number
    count = len(inks) + empty
    margin_x, margin_y = (height * rng.uniform(0.3, 0.8) for _ in range(2))
    width = round(2 * margin_x + count * cell_w + (count - 1) * spacing)
    canvas_height = round(2 * margin_y + cell_h)
    inks = [_fitted(ink, FIT_BOX * cell_w) for ink in inks]
    places = []
    for i, ink in enumerate(inks):
        left = margin_x + (first + i) * (cell_w + spacing)
        crossing = rng.random() < 0.2
        jitter = 0.14 if crossing else 0.05
        cx = left + cell_w / 2 + rng.normal(0, jitter * cell_w)
        cy = margin_y + cell_h / 2 + rng.normal(0, jitter * cell_h)
        # The digit may cross its box's sides, but not reach into the next box's digit,
        # and its top or bottom edge by a fifth of its height at most.
        half_w, half_h = ink.shape[1] / 2, ink.shape[0] / 2
        reach_x, reach_y = 0.05 * cell_w, 0.2 * ink.shape[0]
        cx = min(max(cx, left - reach_x + half_w), left + cell_w + reach_x - half_w)
        cy = min(max(cy, margin_y - reach_y + half_h), margin_y + cell_h + reach_y - half_h)
        places.append((round(cx - half_w), round(cy - half_h)))
    thickness = rng.uniform(2, 3)
    frames = [(margin_x + k * (cell_w + spacing), margin_y, cell_w, cell_h) for k in range(count)]
    printed = _printed((width, canvas_height), rng, "box")
    printed["layer"] = _draw_frames((width, canvas_height), frames, thickness, printed["pad"])
    return (canvas_height, width), printed, places, inks


def _fitted(ink: np.ndarray, widest: float) -> np.ndarray:
    """The digit shrunk (smoothly) if it is wider than `widest`: a writer fits the box."""
    if ink.shape[1] <= widest:
        return ink
    scale = widest / ink.shape[1]
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    small = Image.fromarray(ink, "F").resize(size, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(small), 0, 1)


def _printed(size, rng, what):
    """Colour and strength of printed lines (drawn on a layer padded by `pad` px)."""
    if what == "box":
        name = ["grey", "red", "blue"][int(rng.integers(0, 3))]
        colour = tuple(int(np.clip(c + rng.normal(0, 12), 0, 255)) for c in BOX_COLOURS[name])
        strength = rng.uniform(0.6, 1.0)
    else:
        colour = PAPER_LINE_COLOURS[int(rng.integers(0, len(PAPER_LINE_COLOURS)))]
        strength = rng.uniform(0.3, 0.9)  # paper lines are printed lighter than form boxes
    return {"colour": colour, "strength": strength, "pad": max(8, round(0.08 * max(size)))}


def _draw_frames(size, frames, thickness, pad) -> np.ndarray:
    """Box outlines centred on the box edges, so a wall two boxes share is one line thick."""
    big, draw = _big_layer(size, pad)
    s, width = SUPERSAMPLE, max(1, round(thickness * SUPERSAMPLE))
    half = width / 2
    for x, y, w, h in frames:
        left, top, right, bottom = ((v + pad) * s for v in (x, y, x + w, y + h))
        draw.line([(left - half, top), (right + half, top)], fill=255, width=width)
        draw.line([(left - half, bottom), (right + half, bottom)], fill=255, width=width)
        draw.line([(left, top), (left, bottom)], fill=255, width=width)
        draw.line([(right, top), (right, bottom)], fill=255, width=width)
    return _small_layer(big, size, pad)


def _ruled_lines(size, baseline, height, rng):
    """Horizontal lines every 0.7–1.4 digit heights; the digits' baseline sits near one."""
    spacing = height * rng.uniform(0.7, 1.4)
    baseline = baseline + rng.uniform(-0.12, 0.12) * height  # digits sit on it or cross it a little
    printed = _printed(size, rng, "paper")
    printed["layer"] = _paper_lines(
        size, baseline, spacing, None, rng.uniform(1, 2.5), printed["pad"]
    )
    return printed


def _squared_lines(size, baseline, height, rng):
    """A square grid whose cells (0.35–0.65 digit heights) are smaller than the digits."""
    cell = height * rng.uniform(0.35, 0.65)
    offset = rng.uniform(0, cell)
    printed = _printed(size, rng, "paper")
    printed["layer"] = _paper_lines(
        size, baseline + offset, cell, cell, rng.uniform(1, 2), printed["pad"]
    )
    return printed


def _paper_lines(size, y_phase, y_step, x_step, thickness, pad) -> np.ndarray:
    """Lines across the whole (padded) layer: horizontal every y_step, vertical every x_step."""
    big, draw = _big_layer(size, pad)
    s, width = SUPERSAMPLE, max(1, round(thickness * SUPERSAMPLE))
    total_w, total_h = size[0] + 2 * pad, size[1] + 2 * pad
    for y in _positions(y_phase + pad, y_step, total_h):
        draw.line([(0, y * s), (total_w * s, y * s)], fill=255, width=width)
    if x_step:
        for x in _positions(pad + (y_phase % x_step), x_step, total_w):
            draw.line([(x * s, 0), (x * s, total_h * s)], fill=255, width=width)
    return _small_layer(big, size, pad)


def _positions(phase, step, limit):
    first = phase - math.floor(phase / step) * step
    return np.arange(first, limit, step)


def _big_layer(size, pad):
    big = Image.new("L", ((size[0] + 2 * pad) * SUPERSAMPLE, (size[1] + 2 * pad) * SUPERSAMPLE))
    return big, ImageDraw.Draw(big)


def _small_layer(big, size, pad) -> np.ndarray:
    small = big.resize((size[0] + 2 * pad, size[1] + 2 * pad), Image.Resampling.BOX)
    return np.asarray(small, np.float32) / 255


# --------------------------------------------------------------------------
# Photographing


def _photograph(ink, printed, boxes, kind, rng):
    """Warp (mild perspective), lay ink and printed lines on paper, blur, JPEG."""
    height, width = ink.shape
    to_input, to_output = _perspective((width, height), rng, 0.05)
    ink = _warp(ink, (width, height), to_input, 0)
    result = _paper((height, width), rng)
    if printed is not None:
        lines = _warp(printed["layer"], (width, height), to_input, printed["pad"])
        result = result * _filter(lines * printed["strength"], printed["colour"])
    ink_colour = (BLUE_INKS if rng.random() < 0.35 else DARK_INKS)[int(rng.integers(0, 4))]
    result = result * _filter(ink * rng.uniform(0.85, 1.0), ink_colour)
    image = Image.fromarray(np.clip(np.round(result), 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.6:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.1)))
    if rng.random() < 0.7:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.integers(55, 95)))
        image = Image.open(io.BytesIO(buffer.getvalue()))
        image.load()
    return image, [_warped_box(box, to_output, (width, height)) for box in boxes]


def _filter(coverage, colour):
    """Transmittance of a layer of the given colour: ink over ink darkens (subtractive mixing)."""
    colour = np.asarray(colour, np.float32) / 255
    return 1 - coverage[..., None] * (1 - colour[None, None, :])


def _paper(shape, rng):
    """Paper colour × a lighting gradient, plus fine and coarse grain (as tests/pictures.py)."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = xx * math.cos(angle) + yy * math.sin(angle)
    ramp = (ramp - ramp.min()) / max(1e-6, float(np.ptp(ramp)))
    light = 1 - rng.uniform(0, 0.35) * ramp
    colour = np.asarray(PAPERS[int(rng.integers(0, len(PAPERS)))], np.float32)
    paper = colour[None, None, :] * light[..., None]
    noise = rng.uniform(1, 7)
    coarse = Image.fromarray(
        rng.normal(0, 1, (max(2, height // 8), max(2, width // 8))).astype(np.float32), "F"
    ).resize((width, height), Image.Resampling.BICUBIC)
    grain = rng.normal(0, noise, shape) + 0.5 * noise * np.asarray(coarse)
    return paper + grain[..., None].astype(np.float32)


def _perspective(size, rng, strength):
    """A mild random camera tilt: a small rotation (σ 1.5°) and each corner moved up to
    `strength` × the picture's shorter side, so lines tilt a few degrees at most.

    Returns PIL's output→input coefficients and the input→output ones (for boxes).
    """
    width, height = size
    corners = np.array([(0, 0), (width, 0), (width, height), (0, height)], np.float64)
    angle = math.radians(rng.normal(0, 1.5))
    centre = np.array([width / 2, height / 2])
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = (corners - centre) @ turn.T + centre
    moved += rng.uniform(-strength, strength, (4, 2)) * min(width, height)
    return _homography(corners, moved), _homography(moved, corners)


def _homography(source, target) -> tuple[float, ...]:
    """Coefficients (a … h) mapping source points to target points, PIL's PERSPECTIVE form."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(source, target, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    return tuple(np.linalg.solve(np.array(rows), np.array(rhs)))


def _warp(layer: np.ndarray, size, coefficients, pad: int) -> np.ndarray:
    """Sample a layer (padded by `pad` px on each side) through output→input coefficients."""
    a, b, c, d, e, f, g, h = coefficients
    # Shift the input coordinates by pad: x_in + pad = (a x + b y + c + pad (g x + h y + 1)) / …
    data = (a + pad * g, b + pad * h, c + pad, d + pad * g, e + pad * h, f + pad, g, h)
    warped = Image.fromarray(layer, "F").transform(
        size, Image.Transform.PERSPECTIVE, data, Image.Resampling.BICUBIC
    )
    return np.clip(np.asarray(warped), 0, 1)


def _warped_box(box, coefficients, size):
    a, b, c, d, e, f, g, h = coefficients
    x0, y0, x1, y1 = box
    xs, ys = [], []
    for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
        w = g * x + h * y + 1
        xs.append((a * x + b * y + c) / w)
        ys.append((d * x + e * y + f) / w)
    return (
        max(0, math.floor(min(xs))),
        max(0, math.floor(min(ys))),
        min(size[0], math.ceil(max(xs))),
        min(size[1], math.ceil(max(ys))),
    )


# --------------------------------------------------------------------------
# Many numbers


def number_samples(images, labels, kind: str, count: int, seed: int = 0):
    """`count` (picture, text, boxes) numbers of 2–6 digits drawn from `images`/`labels` only."""
    samples = []
    for k in range(count):
        rng = np.random.default_rng([seed, KINDS.index(kind), k])
        chosen = rng.integers(0, len(labels), int(rng.integers(2, 7)))
        samples.append(
            number_picture([images[i] for i in chosen], [labels[i] for i in chosen], kind, rng)
        )
    return samples
