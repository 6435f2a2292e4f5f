"""Property-based tests of the reading pipeline: whatever the picture, only the documented outcomes.

Pictures of every mode Pillow has for photos and scans (1, L, LA, P, RGB, RGBA, CMYK, I;16, I, F),
1×1 to 300×300, holding noise, flat colour, gradients, blocks, pen strokes or extreme values
(NaN, ±inf, huge integers). find_digits and ink_map must return well-formed results (28×28
float32 digits in [0, 1], boxes inside the picture, left to right; [] for no digit) and raise
nothing; open_image, given such pictures encoded, random bytes or damaged files, must return a
canonical picture or raise ImageError, nothing else; to_mnist must turn any finite 2-D array
into an MNIST image and refuse non-finite ones with ValueError. (tests/test_preprocess.py fuzzes
find_digits on small noise pictures of five modes and checks to_mnist's refusal of other shapes.)

Hypothesis runs derandomized (the same examples on every run, so CI is stable) and without an
example database (nothing written into the repository).
"""

import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

from digits.reading.images import SOURCE_SIZE_KEY, ImageError, open_image
from digits.reading.ink import ink_map
from digits.reading.mnist_style import to_mnist
from digits.reading.segment import DigitImage
from tests.reading.helpers import digits_found

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]
CONTENTS = ["noise", "flat", "gradient", "blocks", "strokes", "extremes"]
CANONICAL_MODES = {"L", "LA", "RGB", "RGBA"}
MAX_SIDE = 300  # pictures are 1×1 to MAX_SIDE×MAX_SIDE
# Formats that store each mode as it is (JPEG only for its own modes).
FORMATS = {
    "1": ["PNG", "BMP", "TIFF"],
    "L": ["PNG", "JPEG", "GIF", "TIFF", "WEBP"],
    "LA": ["PNG", "TIFF"],
    "P": ["PNG", "GIF", "BMP"],
    "RGB": ["PNG", "JPEG", "BMP", "TIFF", "WEBP"],
    "RGBA": ["PNG", "TIFF", "WEBP"],
    "CMYK": ["JPEG", "TIFF"],
    "I;16": ["PNG", "TIFF"],
    "I": ["TIFF"],
    "F": ["TIFF"],
}


# --- pictures ------------------------------------------------------------------------------------


def unit_values(content: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """HxW float64 in [0, 1] of the given kind of content."""
    if content == "noise":
        return rng.random((height, width))
    if content == "flat":
        return np.full((height, width), rng.random())
    if content == "gradient":
        ys, xs = np.mgrid[0:height, 0:width]
        angle = rng.uniform(0, 2 * math.pi)
        ramp = np.cos(angle) * xs + np.sin(angle) * ys
        return (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    if content == "blocks":
        values = np.full((height, width), rng.random())
        for _ in range(rng.integers(1, 6)):
            y0, x0 = rng.integers(0, height), rng.integers(0, width)
            y1, x1 = y0 + rng.integers(1, height + 1), x0 + rng.integers(1, width + 1)
            values[y0:y1, x0:x1] = rng.random()
        return values
    # strokes (and the base of extremes): pen lines like handwriting on paper, maybe with grain
    canvas = Image.new("L", (width, height), int(rng.integers(150, 256)))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(1, 8)):
        points = [tuple(rng.uniform(0, (width, height))) for _ in range(rng.integers(2, 6))]
        pen = int(rng.integers(1, max(2, min(width, height) // 6) + 1))
        draw.line(points, fill=int(rng.integers(0, 120)), width=pen, joint="curve")
    values = np.asarray(canvas, np.float64) / 255
    return np.clip(values + rng.normal(0, rng.uniform(0, 0.1), values.shape), 0, 1)


def colour_channels(values: np.ndarray, content: str, rng) -> np.ndarray:
    """HxWx4 uint8: the content in every channel (noise: independent noise in each)."""
    channels = [values]
    for _ in range(3):
        channels.append(
            rng.permutation(values.ravel()).reshape(values.shape) if content == "noise" else values
        )
    return np.round(np.stack(channels, axis=-1) * 255).astype(np.uint8)


def wide_picture(mode: str, values: np.ndarray, content: str, rng) -> Image.Image:
    """Mode I (int32) or F (float32), at a random full scale; extremes add huge, negative,
    NaN and infinite pixels."""
    if content != "extremes":
        scale = rng.choice([1.0, 255.0, 65535.0, 2.0**31 - 1])
        if mode == "F":
            return Image.fromarray((values * scale).astype(np.float32))
        return Image.fromarray(np.round(values * scale).astype(np.int32))
    wide = values * rng.choice([1.0, 255.0, 65535.0, 1e30, -1e30])
    spots = rng.random(values.shape)
    wide[spots < 0.05] = -wide.max()
    if mode == "I":
        return Image.fromarray(np.clip(wide, -(2**31), 2**31 - 1).astype(np.int32))
    wide[spots > 0.95] = np.nan
    wide[(spots > 0.9) & (spots <= 0.95)] = np.inf
    return Image.fromarray(wide.astype(np.float32))


def picture_of(mode: str, width: int, height: int, content: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    values = unit_values(content, height, width, rng)
    if mode == "1":
        return Image.fromarray(values > rng.random())
    if mode in ("I", "F"):
        return wide_picture(mode, values, content, rng)
    if mode == "I;16":
        return Image.fromarray(np.round(values * rng.choice([255, 4095, 65535])).astype(np.uint16))
    channels = colour_channels(values, content, rng)
    if mode == "CMYK":
        return Image.frombytes("CMYK", (width, height), channels.tobytes())
    if mode == "P":
        picture = Image.fromarray(channels[..., 0]).convert("P")
        picture.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
        if rng.random() < 0.5:
            picture.info["transparency"] = int(rng.integers(0, 256))
        return picture
    layers = channels[..., : len(mode)] if len(mode) > 1 else channels[..., 0]
    if mode in ("LA", "RGBA") and content != "noise":  # transparent where there is no ink
        layers[..., -1] = np.round(rng.random() * 255 * (values > rng.random()))
    return Image.fromarray(np.ascontiguousarray(layers))


@st.composite
def pictures(draw):
    mode = draw(st.sampled_from(MODES))
    width, height = draw(st.integers(1, MAX_SIDE)), draw(st.integers(1, MAX_SIDE))
    content = draw(st.sampled_from(CONTENTS))
    seed = draw(st.integers(0, 2**32 - 1))
    picture = picture_of(mode, width, height, content, seed)
    assert picture.mode == mode and picture.size == (width, height)
    return picture


# --- the properties ------------------------------------------------------------------------------


def assert_well_formed(digits, size: tuple[int, int]) -> None:
    width, height = size
    assert isinstance(digits, list)
    for digit in digits:
        assert isinstance(digit, DigitImage)
        assert digit.pixels.shape == (28, 28) and digit.pixels.dtype == np.float32
        assert np.isfinite(digit.pixels).all()
        assert digit.pixels.min() >= 0 and digit.pixels.max() <= 1
        x0, y0, x1, y1 = digit.box
        assert all(isinstance(v, int) for v in digit.box), digit.box
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, (digit.box, size)
    centres = [digit.box[0] + digit.box[2] for digit in digits]
    assert centres == sorted(centres), "digits are not left to right"


@FUZZ
@given(pictures())
def test_find_digits_on_any_picture_gives_well_formed_digits_or_none(picture):
    assert_well_formed(digits_found(picture), picture.size)


@FUZZ
@given(pictures())
def test_ink_map_of_any_picture_is_a_map_in_0_1(picture):
    ink = ink_map(picture)
    assert ink.shape == (picture.height, picture.width) and ink.dtype == np.float32
    assert np.isfinite(ink).all() and ink.min() >= 0 and ink.max() <= 1


@st.composite
def encoded_pictures(draw):
    picture = draw(pictures())
    file_format = draw(st.sampled_from(FORMATS[picture.mode]))
    buffer = io.BytesIO()
    picture.save(buffer, file_format, **({"lossless": True} if file_format == "WEBP" else {}))
    return picture.size, buffer.getvalue()


@FUZZ
@given(encoded_pictures())
def test_open_image_then_find_digits_on_any_saved_picture(size_and_data):
    size, data = size_and_data
    picture = open_image(data)
    assert picture.mode in CANONICAL_MODES
    assert picture.size == size and picture.info[SOURCE_SIZE_KEY] == size
    assert_well_formed(digits_found(picture), size)


def opened_or_refused(data: bytes) -> None:
    """open_image either refuses with ImageError or gives a picture find_digits can read."""
    try:
        picture = open_image(data)
    except ImageError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert picture.mode in CANONICAL_MODES
    assert_well_formed(digits_found(picture), picture.info.get(SOURCE_SIZE_KEY, picture.size))


@FUZZ
@given(st.binary(max_size=4096))
def test_open_image_on_random_bytes_raises_only_image_error(data):
    opened_or_refused(data)


@st.composite
def damaged_files(draw):
    """A saved picture with bytes flipped, cut off or spliced in (headers survive more often
    than not, so the decoders see damaged data, not just unknown formats)."""
    _, data = draw(encoded_pictures())
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        damage = draw(st.sampled_from(["flip", "cut", "splice"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if damage == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif damage == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        if not data:
            break
    return bytes(data)


@FUZZ
@given(damaged_files())
def test_open_image_on_damaged_files_raises_only_image_error(data):
    opened_or_refused(data)


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=32)
ink_arrays = st.one_of(
    hnp.arrays(
        np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40), elements=finite_or_not
    ),
    hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40), elements=st.floats(-2, 3)
    ),
    hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40)),
    hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40)),
    st.builds(
        lambda h, w, seed, power: np.random.default_rng(seed).random((h, w)) ** power,
        st.integers(1, 300),
        st.integers(1, 300),
        st.integers(0, 2**32 - 1),
        st.sampled_from([1, 8, 40]),
    ),
)


@FUZZ
@given(ink_arrays)
def test_to_mnist_gives_an_mnist_image_or_refuses_non_finite_ink(ink):
    if not np.isfinite(ink.astype(np.float32)).all():
        with pytest.raises(ValueError, match="NaN or infinite"):
            to_mnist(ink)
        return
    digit = to_mnist(ink)
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert np.isfinite(digit).all() and digit.min() >= 0
    assert digit.max() == 0 or digit.max() == pytest.approx(1)
