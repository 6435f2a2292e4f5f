"""Hand-drawn digits as pen strokes: a polyline skeleton per digit (a unit box, y down), jittered
the way a hand varies, drawn with round caps. Deterministic for a given random generator."""

import math

import numpy as np
from PIL import Image, ImageDraw

# --------------------------------------------------------------------------
# Hand-drawn digit skeletons: strokes of (x, y) points in a unit box, y down.


def _arc(cx, cy, rx, ry, start, stop, steps=24):
    angles = np.radians(np.linspace(start, stop, steps))
    return list(zip(cx + rx * np.cos(angles), cy + ry * np.sin(angles), strict=True))


def _skeleton(digit: str, variant: int) -> list[list[tuple[float, float]]]:
    """Strokes of one digit; `variant` picks between common ways of writing it."""
    if digit == "0":
        return [_arc(0.5, 0.5, 0.42, 0.5, -90, 285, 40)]
    if digit == "1":
        if variant % 2:
            return [[(0.38, 0.14), (0.6, 0.0), (0.55, 1.0)]]
        return [[(0.55, 0.0), (0.47, 1.0)]]
    if digit == "2":
        return [_arc(0.5, 0.3, 0.4, 0.3, 200, 375) + [(0.06, 1.0), (0.96, 0.98)]]
    if digit == "3":
        return [_arc(0.47, 0.26, 0.36, 0.25, 205, 450) + _arc(0.47, 0.74, 0.43, 0.26, 270, 520)]
    if digit == "4":
        if variant % 2:
            return [[(0.18, 0.0), (0.08, 0.62), (0.94, 0.62)], [(0.7, 0.0), (0.7, 1.0)]]
        return [[(0.64, 0.0), (0.04, 0.68), (0.96, 0.68)], [(0.7, 0.3), (0.7, 1.0)]]
    if digit == "5":
        return [
            [(0.92, 0.0), (0.24, 0.0)],
            [(0.24, 0.0), (0.18, 0.46)] + _arc(0.48, 0.68, 0.42, 0.32, 220, 520),
        ]
    if digit == "6":
        return [[(0.8, 0.0), (0.5, 0.12), (0.26, 0.36)] + _arc(0.5, 0.7, 0.36, 0.3, 180, -175, 36)]
    if digit == "7":
        if variant % 2:
            return [[(0.04, 0.02), (0.96, 0.02), (0.42, 1.0)], [(0.3, 0.52), (0.8, 0.52)]]
        return [[(0.04, 0.02), (0.96, 0.02), (0.42, 1.0)]]
    if digit == "8":
        return [_arc(0.5, 0.25, 0.32, 0.25, 90, 450, 30), _arc(0.5, 0.74, 0.4, 0.26, -90, 270, 30)]
    if digit == "9":
        return [_arc(0.48, 0.29, 0.36, 0.29, 0, 360, 32), [(0.84, 0.29), (0.8, 0.62), (0.72, 1.0)]]
    raise ValueError(f"no skeleton for {digit!r}")


def _jittered(strokes, rng, size, slant, gap):
    """Scale a skeleton to pixels with a hand's wobble, slant and pen lifts."""
    width = size * rng.uniform(0.55, 0.72)
    shear = slant + rng.normal(0, 0.06)
    wobble = size * 0.018
    result = []
    for stroke in strokes:
        points = np.array(stroke, dtype=np.float64)
        if gap > 0 and len(points) > 1:
            points = _shortened(points, gap)
        x = points[:, 0] * width + shear * (1 - points[:, 1]) * size
        y = points[:, 1] * size
        noise = rng.normal(0, wobble, (2, len(points)))
        # Neighbouring points wobble together, as a hand does.
        kernel = np.array([0.25, 0.5, 0.25])
        noise = np.array(
            [np.convolve(np.pad(n, 1, mode="edge"), kernel, mode="valid") for n in noise]
        )
        result.append(list(zip(x + noise[0], y + noise[1], strict=True)))
    return result


def _shortened(points: np.ndarray, gap: float) -> np.ndarray:
    """Cut `gap` (unit-box length) off both ends: the pen lifted between strokes."""
    lengths = np.r_[0, np.cumsum(np.hypot(*np.diff(points, axis=0).T))]
    total = lengths[-1]
    if total <= 2 * gap:
        return points
    keep = np.linspace(gap, total - gap, max(2, len(points)))
    return np.column_stack([np.interp(keep, lengths, points[:, k]) for k in range(2)])


def _draw_strokes(layer_size, strokes, offset, pen, supersample=4):
    """Anti-aliased round-capped pen strokes on an L layer."""
    big = Image.new("L", (layer_size[0] * supersample, layer_size[1] * supersample), 0)
    draw = ImageDraw.Draw(big)
    width = max(1, round(pen * supersample))
    for stroke in strokes:
        points = [((x + offset[0]) * supersample, (y + offset[1]) * supersample) for x, y in stroke]
        draw.line(points, fill=255, width=width, joint="curve")
        radius = width / 2
        for px, py in (points[0], points[-1]):
            draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=255)
    return big.resize(layer_size, Image.Resampling.BOX)


def stroke_layers(text, size, rng, pen, slant, gap, spacing):
    """One layer per character; like a writer, leave `spacing` between the inks."""
    digits = [
        None
        if ch.isspace()
        else _jittered(_skeleton(ch, int(rng.integers(0, 2))), rng, size, slant, gap)
        for ch in text
    ]
    spans = [_span(strokes, pen, size) for strokes in digits]
    width = math.ceil(
        sum(right - left for left, right in spans) + (spacing * size + pen) * len(text) + 2 * size
    )
    height = 2 * size
    layers, x = [], size / 2
    for strokes, (left, right) in zip(digits, spans, strict=True):
        layer = Image.new("L", (width, height), 0)
        if strokes is not None:
            wobble_y = rng.normal(0, 0.03 * size)
            layer = _draw_strokes((width, height), strokes, (x - left, size / 2 + wobble_y), pen)
        layers.append(layer)
        x += right - left + spacing * size
    return layers


def _span(strokes, pen, size):
    """Leftmost and rightmost x a digit's ink reaches (a space is half a digit high)."""
    if strokes is None:
        return 0.0, 0.5 * size
    xs = [x for stroke in strokes for x, _ in stroke]
    return min(xs) - pen / 2, max(xs) + pen / 2
