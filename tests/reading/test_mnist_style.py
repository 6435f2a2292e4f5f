"""to_mnist: one digit's ink made the MNIST way (box, centre of mass, stroke width)."""

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from digits.reading import mnist_style
from digits.reading.mnist_style import to_mnist


def mass_centre(pixels: np.ndarray) -> tuple[float, float]:
    return ndimage.center_of_mass(pixels)


def ink_box(pixels: np.ndarray, level: float = 0.1) -> tuple[int, int]:
    rows, cols = np.nonzero(pixels > level)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def random_blob(rng, shape) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.random(shape), 3)
    return (field > np.percentile(field, 80)).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_to_mnist_shape_range_centre_and_box(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(10, 300, 2))
    ink = np.zeros((shape[0] + 40, shape[1] + 60), np.float32)
    ink[10 : 10 + shape[0], 50 : 50 + shape[1]] = random_blob(rng, shape)
    pixels = to_mnist(ink)
    assert pixels.shape == (28, 28) and pixels.dtype == np.float32
    assert pixels.min() >= 0 and pixels.max() == pytest.approx(1.0)
    cy, cx = mass_centre(pixels)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    assert max(ink_box(pixels)) in (19, 20, 21)


def test_to_mnist_keeps_a_one_narrow_and_tall():
    ink = np.zeros((300, 200), np.float32)
    ink[20:280, 95:112] = 1  # a plain "1": 260 tall, 17 wide
    pixels = to_mnist(ink)
    height, width = ink_box(pixels)
    assert height in (19, 20, 21)
    assert 1 <= width <= 5
    assert abs(mass_centre(pixels)[1] - 14) <= 1


def test_to_mnist_keeps_aspect_of_a_wide_shape():
    ink = np.zeros((200, 300), np.float32)
    ink[50:150, 20:280] = 1
    ink[60:140, 30:270] = 0  # a wide frame, 100 × 260
    height, width = ink_box(to_mnist(ink))
    assert width in (19, 20, 21)
    assert 6 <= height <= 10  # 20 × 100 / 260 ≈ 7.7 (plus stroke)


@pytest.mark.parametrize("size", [15, 60, 400, 3000])
def test_stroke_width_is_normalised_at_every_scale(size):
    """A 1-px pen line in a big photo and a small digit both end up with MNIST-like strokes."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    draw.ellipse((size * 0.2, 0, size * 0.8, size - 1), outline=255, width=max(1, size // 60))
    pixels = to_mnist(np.asarray(canvas, np.float32) / 255)
    width = mnist_style.stroke_width(pixels)
    assert 1.6 <= width <= 3.5, width
    assert max(ink_box(pixels)) in (19, 20, 21)


def test_bloated_strokes_are_thinned():
    ink = np.zeros((200, 200), np.float32)
    yy, xx = np.mgrid[0:200, 0:200]
    radius = np.hypot(yy - 100, (xx - 100) * 1.4)
    ink[(radius > 30) & (radius < 95)] = 1  # a "0" drawn with a marker
    assert 1.6 <= mnist_style.stroke_width(to_mnist(ink)) <= 3.5


def test_to_mnist_of_mnist_style_input_stays_mnist_like():
    digit = np.zeros((28, 28), np.float32)
    digit[4:24, 12:16] = 1  # a 1 already MNIST-shaped
    pixels = to_mnist(digit)
    assert ink_box(pixels)[0] in (19, 20, 21)
    assert np.abs(np.array(mass_centre(pixels)) - 14).max() <= 1


def test_to_mnist_accepts_bool_and_uint8_and_blank():
    shape = np.zeros((40, 30), bool)
    shape[5:35, 10:20] = True
    assert to_mnist(shape).max() == pytest.approx(1.0)
    assert to_mnist(shape.astype(np.uint8) * 255).max() == pytest.approx(1.0)
    assert not to_mnist(np.zeros((10, 10))).any()


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((0, 5)),
        np.zeros(5),
        np.zeros((3, 3, 3)),
        np.full((4, 4), np.nan),
        "text",
        np.array([[1j]]),
    ],
    ids=["empty", "1-d", "3-d", "nan", "text", "complex"],
)
def test_to_mnist_refuses_wrong_arrays(bad):
    with pytest.raises(ValueError):
        to_mnist(bad)
