"""Realistic pictures of digits for tests and benchmarks: typed or pen-drawn, photographed.

``render_digits("2026", ...)`` draws digits in a TrueType font (matplotlib's
bundled DejaVu / Computer Modern / STIX faces, the system DejaVu faces, or
Pillow's default font) or as hand-drawn pen strokes (jittered polyline
skeletons with round caps), then simulates the photo: paper colour and grain,
a lighting gradient, a soft shadow, blur, JPEG round trip, any Pillow mode,
light chalk on a dark board, or ink on a transparent canvas.  Everything is
deterministic for a given seed.  ``image.info["boxes"]`` holds each digit's
true box (x0, y0, x1, y1), exclusive ends, in the returned picture's pixels.

``render_ink(images, ...)`` photographs digits given as MNIST-style arrays
(real handwriting, e.g. MNIST test digits) the same way.
``realistic_samples(count, seed)`` mixes all of that into (picture, text)
pairs for measuring how well whole pictures are read.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from digits.fonts import find_fonts
from digits.synthetic.strokes import stroke_layers

FONTS = find_fonts(
    [
        "DejaVuSans",
        "DejaVuSans-Bold",
        "DejaVuSans-Oblique",
        "DejaVuSerif",
        "DejaVuSerif-Italic",
        "DejaVuSansMono",
        "cmr10",
        "cmss10",
        "STIXGeneral",
        "DejaVuSansCondensed",
        "DejaVuSans-ExtraLight",
    ]
)
# "default" is Pillow's own scalable font (ImageFont.load_default).
FONT_NAMES = [*FONTS, "default"]

PAPER = (245, 240, 230)
INK = (20, 20, 30)
BOARD = (38, 52, 46)
CHALK = (232, 232, 222)


# --------------------------------------------------------------------------
# Typed digits


def load_font(font: str | Path | None, height: int) -> ImageFont.FreeTypeFont:
    """A font whose digits are about `height` pixels tall."""
    name = font or "DejaVuSans"

    def make(points):
        if name == "default":
            return ImageFont.load_default(size=points)
        path = FONTS.get(str(name), Path(name))
        return ImageFont.truetype(str(path), points)

    probe = make(100)
    box = probe.getbbox("0123456789")
    points = max(4, round(100 * height / max(1, box[3] - box[1])))
    return make(points)


def _glyph_layers(text, font, size, spacing):
    """One L layer per character, all the size of the whole line."""
    face = load_font(font, size)
    advances = [face.getlength(ch) for ch in text]
    extra = spacing * size
    width = math.ceil(sum(advances) + extra * len(text) + size)
    ascent, descent = face.getmetrics()
    height = ascent + descent + size // 2
    layers, x = [], size / 2
    for ch, advance in zip(text, advances, strict=True):
        layer = Image.new("L", (width, height), 0)
        if not ch.isspace():
            ImageDraw.Draw(layer).text((x, size / 4), ch, font=face, fill=255)
        layers.append(layer)
        x += advance + extra
    return layers


# --------------------------------------------------------------------------
# Photographing


def _paper(shape, colour, rng, noise, lighting_gradient, shadow):
    """Paper colour × lighting, plus grain; float HxWx3 in 0..255, and the light."""
    height, width = shape
    light = np.ones(shape, np.float64)
    if lighting_gradient:
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:height, 0:width]
        ramp = (xx * math.cos(angle) + yy * math.sin(angle)).astype(np.float64)
        ramp = (ramp - ramp.min()) / max(1e-9, np.ptp(ramp))
        light *= 1 - lighting_gradient * ramp
    if shadow:
        light *= 1 - shadow * _shadow_mask(shape, rng)
    paper = np.asarray(colour, np.float64)[None, None, :] * light[..., None]
    if noise:
        grain = rng.normal(0, noise, shape)
        coarse = np.asarray(
            Image.fromarray(
                rng.normal(0, 1, (max(2, height // 8), max(2, width // 8))).astype(np.float32), "F"
            ).resize((width, height), Image.Resampling.BICUBIC)
        )
        paper += (grain + 0.5 * noise * coarse)[..., None]
    return paper, light


def _shadow_mask(shape, rng):
    """A soft-edged shadow over one side of the picture (0 = lit, 1 = shadow)."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = rng.uniform(0, 2 * math.pi)
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
    distance = (xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)
    softness = 0.08 * max(height, width)
    return 1 / (1 + np.exp(-distance / softness))


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    if mode == "I;16":
        grey = np.asarray(image.convert("L"), np.uint16) * 257
        return Image.fromarray(grey)  # uint16 → mode I;16
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    if mode == "1":  # a scanner's black-and-white: thresholded, not dithered
        return image.convert("L").convert("1", dither=Image.Dither.NONE)
    return image.convert(mode)


def render_digits(
    text: str,
    *,
    font: str | Path | None = None,
    size: int = 48,
    ink: tuple[int, int, int] | None = None,
    paper: tuple[int, int, int] | None = None,
    mode: str | None = None,
    rotation: float = 0.0,
    noise: float = 0.0,
    lighting_gradient: float = 0.0,
    shadow: float = 0.0,
    blur: float = 0.0,
    jpeg_quality: int | None = None,
    light_on_dark: bool = False,
    transparent: bool = False,
    canvas: tuple[int, int] | None = None,
    margin: float | tuple[float, float] = 0.5,
    position: tuple[float, float] = (0.5, 0.5),
    stroke: bool = False,
    pen: float = 0.11,
    slant: float = 0.0,
    gap: float = 0.0,
    spacing: float | None = None,
    seed: int = 0,
) -> Image.Image:
    """A picture of `text` (digits and spaces) as a camera might see it.

    size: digit height in pixels.  ink/paper: RGB colours (defaults: dark ink on
    off-white paper, or chalk on a green-black board with light_on_dark).
    rotation: degrees, counter-clockwise.  noise: paper grain, standard
    deviation in 0–255 units.  lighting_gradient: 0–1 darkening across the
    picture.  shadow: 0–1 darkening of a soft shadow over part of it.
    blur: Gaussian radius in pixels.  jpeg_quality: JPEG round trip if set.
    transparent: RGBA ink on a fully transparent canvas whose empty pixels
    are black.  canvas: picture size; without it the picture is the text plus
    `margin` × size on each side (one number, or separate x and y margins).
    position: where the text's centre sits in the free space, 0–1 each way.
    stroke: hand-drawn pen strokes instead of a font; pen is their width as
    a fraction of `size`, slant a shear, gap a pen lift at each stroke end
    (fraction of the digit height).  spacing: fraction of `size` added to the
    font's advance between digits, or left between pen-drawn digits' inks
    (defaults 0.08 and 0.2; negative makes digits touch).  mode: any mode
    Pillow converts to, plus "I;16" (default RGB, or RGBA when transparent).
    """
    rng = np.random.default_rng(seed)
    if spacing is None:
        spacing = 0.2 if stroke else 0.08
    if stroke:
        layers = stroke_layers(text, size, rng, max(1.0, pen * size), slant, gap, spacing)
    else:
        layers = _glyph_layers(text, font, size, spacing)
    return _photograph(
        layers,
        rng,
        size=size,
        ink=ink,
        paper=paper,
        mode=mode,
        rotation=rotation,
        noise=noise,
        lighting_gradient=lighting_gradient,
        shadow=shadow,
        blur=blur,
        jpeg_quality=jpeg_quality,
        light_on_dark=light_on_dark,
        transparent=transparent,
        canvas=canvas,
        margin=margin,
        position=position,
    )


def render_ink(
    images: list[np.ndarray], *, size: int = 48, spacing: float = 0.3, seed: int = 0, **photo
) -> Image.Image:
    """A picture of digits given as MNIST-style images (2-D, 1 = ink, e.g. MNIST's own).

    Each image is scaled so that a 20-px-tall digit becomes `size` pixels
    tall, and the digits are set side by side `spacing` × size apart (ink to
    ink; negative overlaps them).  `photo` takes render_digits' photographing
    options (ink, paper, mode, rotation, noise, lighting_gradient, shadow,
    blur, jpeg_quality, light_on_dark, transparent, canvas, margin, position).
    """
    rng = np.random.default_rng(seed)
    scale = size / 20
    inks = []
    for image in images:
        values = np.asarray(image, np.float64)
        values = values / 255 if values.max() > 1 else values
        rows, cols = np.nonzero(values > 0.05)
        values = values[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        shape = (max(1, round(values.shape[1] * scale)), max(1, round(values.shape[0] * scale)))
        big = Image.fromarray((values * 255).astype(np.uint8)).resize(
            shape, Image.Resampling.BICUBIC
        )
        inks.append(big)
    width = sum(ink.width for ink in inks) + round(spacing * size) * len(inks) + 2 * size
    height = max(ink.height for ink in inks) + size
    layers, x = [], size
    for ink in inks:
        layer = Image.new("L", (width, height), 0)
        layer.paste(ink, (x, (height - ink.height) // 2))
        layers.append(layer)
        x += ink.width + round(spacing * size)
    return _photograph(layers, rng, size=size, **photo)


def _photograph(
    layers,
    rng,
    *,
    size,
    ink=None,
    paper=None,
    mode=None,
    rotation=0.0,
    noise=0.0,
    lighting_gradient=0.0,
    shadow=0.0,
    blur=0.0,
    jpeg_quality=None,
    light_on_dark=False,
    transparent=False,
    canvas=None,
    margin=0.5,
    position=(0.5, 0.5),
):
    """Ink layers (one per digit) → the picture a camera would take of them."""
    if rotation:
        layers = [layer.rotate(rotation, Image.Resampling.BICUBIC, expand=True) for layer in layers]
    coverage = np.zeros(layers[0].size[::-1], np.float64)
    for layer in layers:
        coverage = np.maximum(coverage, np.asarray(layer, np.float64) / 255)
    boxes = [layer.getbbox() for layer in layers]
    coverage, boxes = _placed(coverage, boxes, canvas, position, margin, size)

    paper_colour = paper or (BOARD if light_on_dark else PAPER)
    ink_colour = ink or (CHALK if light_on_dark else INK)
    if transparent:
        alpha = np.round(coverage * 255).astype(np.uint8)
        rgba = np.zeros((*coverage.shape, 4), np.uint8)
        rgba[alpha > 0, :3] = ink_colour
        rgba[..., 3] = alpha
        image = Image.fromarray(rgba, "RGBA")
    else:
        background, light = _paper(
            coverage.shape, paper_colour, rng, noise, lighting_gradient, shadow
        )
        ink_layer = np.asarray(ink_colour, np.float64)[None, None, :] * light[..., None]
        mixed = background * (1 - coverage[..., None]) + ink_layer * coverage[..., None]
        image = Image.fromarray(np.clip(np.round(mixed), 0, 255).astype(np.uint8), "RGB")
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    if jpeg_quality is not None:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=jpeg_quality)
        image = Image.open(io.BytesIO(buffer.getvalue()))
        image.load()
    if mode is not None and mode != image.mode:
        image = _to_mode(image, mode)
    image.info["boxes"] = [box for box in boxes if box is not None]
    return image


def _placed(coverage, boxes, canvas, position, margin, size):
    """Crop the text to its ink and put it on the canvas at `position`."""
    rows, cols = np.nonzero(coverage > 0)
    if rows.size == 0:
        top, left, bottom, right = 0, 0, 1, 1
    else:
        top, left, bottom, right = rows.min(), cols.min(), rows.max() + 1, cols.max() + 1
    text = coverage[top:bottom, left:right]
    mx, my = margin if isinstance(margin, tuple) else (margin, margin)
    pad_x, pad_y = max(2, round(mx * size)), max(2, round(my * size))
    width, height = canvas or (text.shape[1] + 2 * pad_x, text.shape[0] + 2 * pad_y)
    out = np.zeros((height, width), np.float64)
    free_x, free_y = width - text.shape[1], height - text.shape[0]
    x = round(max(0, free_x) * position[0]) if free_x >= 0 else free_x // 2
    y = round(max(0, free_y) * position[1]) if free_y >= 0 else free_y // 2
    # Paste with clipping: the text may be larger than the canvas.
    src_y0, src_x0 = max(0, -y), max(0, -x)
    dst_y0, dst_x0 = max(0, y), max(0, x)
    h = min(text.shape[0] - src_y0, height - dst_y0)
    w = min(text.shape[1] - src_x0, width - dst_x0)
    out[dst_y0 : dst_y0 + h, dst_x0 : dst_x0 + w] = text[src_y0 : src_y0 + h, src_x0 : src_x0 + w]
    shift_x, shift_y = x - left, y - top
    moved = []
    for box in boxes:
        if box is None:
            moved.append(None)
            continue
        x0, y0, x1, y1 = box[0] + shift_x, box[1] + shift_y, box[2] + shift_x, box[3] + shift_y
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        moved.append((int(x0), int(y0), int(x1), int(y1)) if x1 > x0 and y1 > y0 else None)
    return out, moved


# --------------------------------------------------------------------------
# A mixed bag of realistic pictures


# Near-black, blue, red, green and grey inks; white, cream, grey and yellowish papers.
INK_COLOURS = [(20, 20, 30), (25, 40, 150), (20, 60, 180), (170, 25, 30), (30, 110, 40)]
INK_COLOURS += [(60, 60, 60), (0, 0, 0)]
PAPER_COLOURS = [(245, 240, 230), (255, 255, 255), (235, 235, 228), (250, 245, 210)]
PAPER_COLOURS += [(225, 228, 232)]


def realistic_samples(
    count: int, seed: int = 0, max_digits: int = 4, mnist=None, single_share: float = 0.5
) -> list[tuple[Image.Image, str]]:
    """`count` (picture, digits) pairs mixing every kind of realism above.

    A share `single_share` are single digits, the others numbers of 2–max_digits digits.  With
    `mnist` = (images, labels), the digits are real handwriting from those
    arrays (render_ink) instead of fonts and pen strokes.
    """
    rng = np.random.default_rng(seed)
    samples = []
    for k in range(count):
        length = 1 if rng.random() < single_share else int(rng.integers(2, max_digits + 1))
        style = _random_style(rng, k + seed * 100_003)
        if mnist is None:
            text = "".join(str(d) for d in rng.integers(0, 10, length))
            samples.append((render_digits(text, **style), text))
            continue
        images, labels = mnist
        chosen = rng.integers(0, len(labels), length)
        text = "".join(str(int(labels[i])) for i in chosen)
        for key in ("stroke", "pen", "slant", "font", "spacing"):
            style.pop(key, None)
        style["spacing"] = float(rng.uniform(0.15, 0.6))
        samples.append((render_ink([images[i] for i in chosen], **style), text))
    return samples


def _random_style(rng: np.random.Generator, seed: int) -> dict:
    size = int(np.exp(rng.uniform(np.log(16), np.log(260))))
    style: dict = {"size": size, "seed": seed}
    if rng.random() < 0.45:
        style.update(
            stroke=True,
            pen=float(rng.uniform(0.06, 0.16)),
            slant=float(rng.normal(0, 0.12)),
            spacing=float(rng.uniform(0.08, 0.4)),
        )
    else:
        style["font"] = FONT_NAMES[int(rng.integers(0, len(FONT_NAMES)))]
    style["rotation"] = float(rng.normal(0, 4))
    kind = rng.random()
    if kind < 0.12:
        style["light_on_dark"] = True
    elif kind < 0.2:
        style["transparent"] = True
    else:
        style["ink"] = INK_COLOURS[int(rng.integers(0, len(INK_COLOURS)))]
        style["paper"] = PAPER_COLOURS[int(rng.integers(0, len(PAPER_COLOURS)))]
    if not style.get("transparent"):
        style["noise"] = float(rng.uniform(0, 12))
        style["lighting_gradient"] = float(rng.uniform(0, 0.4))
        style["shadow"] = float(rng.uniform(0, 0.35)) if rng.random() < 0.4 else 0.0
        style["blur"] = float(rng.uniform(0, 1.2)) if rng.random() < 0.5 else 0.0
        style["jpeg_quality"] = int(rng.integers(40, 95)) if rng.random() < 0.6 else None
    # Small digits usually sit in a wide photo; big ones fill the frame.
    room = float(np.clip(400 / size, 0.3, 6))
    style["margin"] = (float(rng.uniform(0.3, room)), float(rng.uniform(0.3, room)))
    style["position"] = (float(rng.uniform(0, 1)), float(rng.uniform(0, 1)))
    style["mode"] = (
        str(rng.choice(["RGB", "RGB", "RGB", "L"])) if not style.get("transparent") else "RGBA"
    )
    return style
