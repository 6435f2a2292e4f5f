"""The ink map: ink told from paper whatever the colours, lighting and transparency."""

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from digits.reading import ink as ink_module
from digits.reading.ink import ink_map
from digits.synthetic.pictures import render_digits
from tests.reading.helpers import assert_found, digits_found, encoded


def ink_inside_and_outside(picture: Image.Image, ink: np.ndarray) -> tuple[float, float]:
    """Mean ink inside the digits' boxes and the 99th percentile outside them."""
    inside = np.zeros(ink.shape, bool)
    for x0, y0, x1, y1 in picture.info["boxes"]:
        inside[y0:y1, x0:x1] = True
    grown = ndimage.binary_dilation(inside, iterations=3)
    return float(ink[inside].mean()), float(np.percentile(ink[~grown], 99))


@pytest.mark.parametrize(
    "style",
    [
        {},
        {"light_on_dark": True},
        {"ink": (30, 60, 200)},
        {"ink": (200, 30, 30)},
        {"ink": (40, 150, 50)},
        {"ink": (225, 190, 0), "paper": (255, 255, 255)},
        {"lighting_gradient": 0.5, "shadow": 0.4, "noise": 8, "seed": 4},
        {"light_on_dark": True, "lighting_gradient": 0.4, "noise": 8},
        {"noise": 10, "jpeg_quality": 40},
        {"transparent": True},
        {"transparent": True, "ink": (255, 255, 255)},
        {"mode": "I;16"},
        {"mode": "CMYK"},
        {"mode": "LA"},
        {"mode": "1"},
    ],
    ids=lambda style: ",".join(f"{k}={v}" for k, v in style.items()) or "plain",
)
def test_ink_map_separates_ink_from_paper(style):
    picture = render_digits("2048", size=50, **style)
    ink = ink_map(picture)
    assert ink.dtype == np.float32 and ink.shape == (picture.height, picture.width)
    assert ink.min() >= 0 and ink.max() <= 1
    inside, outside = ink_inside_and_outside(picture, ink)
    assert inside > 0.2
    assert outside < 0.1
    assert_found(picture)


def test_transparent_canvas_with_black_empty_pixels():
    """RGB of empty pixels is (0, 0, 0) under alpha 0: the alpha is what carries the ink."""
    picture = render_digits("6", size=80, transparent=True, stroke=True, seed=2)
    assert np.asarray(picture)[0, 0].tolist() == [0, 0, 0, 0]
    ink = ink_map(picture)
    assert ink[0, 0] == 0
    assert_found(picture)


def test_mostly_opaque_paper_with_transparent_margin():
    picture = render_digits("4", size=60, canvas=(160, 120)).convert("RGBA")
    pixels = np.asarray(picture).copy()
    pixels[:, :20, 3] = 0  # a transparent strip down the left
    image = Image.fromarray(pixels, "RGBA")
    assert_found(image, picture.info["boxes"])


def _blank_pictures():
    rng = np.random.default_rng(5)
    gradient = np.linspace(120, 250, 320)[None, :].repeat(240, axis=0)
    yield "white", Image.new("RGB", (320, 240), "white")
    yield "grey", Image.new("L", (320, 240), 128)
    yield "black", Image.new("L", (64, 64), 0)
    yield "transparent", Image.new("RGBA", (120, 90), (0, 0, 0, 0))
    yield "gradient", Image.fromarray(gradient.astype(np.uint8))
    yield (
        "gaussian noise",
        Image.fromarray(np.clip(rng.normal(200, 25, (240, 320)), 0, 255).astype(np.uint8)),
    )
    yield "uniform noise", Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    pepper = np.full((240, 320), 235, np.uint8)
    pepper[rng.random((240, 320)) < 0.02] = 20
    yield "salt and pepper", Image.fromarray(pepper)
    paper = render_digits(
        " ", canvas=(400, 300), noise=10, lighting_gradient=0.4, shadow=0.4, seed=7
    )
    yield "photographed blank paper", Image.open(io.BytesIO(encoded(paper, "JPEG", quality=50)))
    yield "tiny", Image.new("L", (1, 1), 0)
    yield "one row", Image.fromarray(rng.integers(0, 256, (1, 300), dtype=np.uint8))


@pytest.mark.parametrize(
    ("name", "picture"), list(_blank_pictures()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_no_digit_in_blank_or_noise(name, picture):
    assert digits_found(picture) == []
    assert float(ink_map(picture).max()) == 0.0 or name in ("uniform noise", "salt and pepper")


def test_empty_picture_and_wrong_type():
    assert digits_found(Image.new("L", (0, 5))) == []
    assert ink_map(Image.new("RGB", (7, 0))).shape == (0, 7)
    with pytest.raises(TypeError, match="PIL image"):
        digits_found(np.zeros((5, 5)))


@pytest.mark.parametrize("shape", [(1, 400), (400, 1), (2, 3), (28, 28), (47, 300)])
def test_the_median_filter_is_scipys(shape, monkeypatch):
    monkeypatch.setattr(ink_module, "MEDIAN_BLOCK_VALUES", 500)  # several blocks of rows
    grid = np.random.default_rng(len(shape)).random(shape, dtype=np.float32)
    for size in (3, 7, 11):
        expected = ndimage.median_filter(grid, size=size, mode="nearest")
        assert np.array_equal(ink_module._median_filter(grid, size), expected)
