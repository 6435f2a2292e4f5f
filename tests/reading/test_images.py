"""Opening pictures: every mode and format, orientation, size limits, damaged files."""

import io
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from digits.reading import images
from digits.reading.images import ImageError, open_image
from digits.synthetic.pictures import render_digits
from tests.reading.helpers import assert_found, digits_found, encoded


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("L", "PNG"),
        ("RGB", "PNG"),
        ("RGBA", "PNG"),
        ("LA", "PNG"),
        ("P", "PNG"),
        ("P", "GIF"),
        ("1", "PNG"),
        ("I;16", "PNG"),
        ("CMYK", "JPEG"),
        ("CMYK", "TIFF"),
        ("RGB", "WEBP"),
        ("RGB", "BMP"),
    ],
)
def test_every_mode_and_format_is_read(mode, fmt):
    picture = render_digits("407", size=40, mode=mode, seed=3)
    image = open_image(io.BytesIO(encoded(picture, fmt)))
    assert image.mode in ("L", "LA", "RGB", "RGBA")
    assert image.size == picture.size
    assert_found(image, picture.info["boxes"])


def test_palette_with_transparent_background_is_not_a_black_square():
    picture = render_digits("5", size=60, stroke=True, seed=1)
    palette = picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    paper = int(np.bincount(np.asarray(palette).ravel()).argmax())
    image = open_image(encoded(palette, "PNG", transparency=paper))
    assert image.mode == "RGBA"
    assert_found(image, picture.info["boxes"])


def test_grey_png_with_transparency_key():
    picture = render_digits("3", size=40, mode="L")
    paper = int(np.asarray(picture)[0, 0])
    image = open_image(encoded(picture, "PNG", transparency=paper))
    assert image.mode == "LA"
    assert_found(image, picture.info["boxes"])


def test_path_and_bytes_sources(tmp_path):
    picture = render_digits("18", size=30)
    path = tmp_path / "eighteen.png"
    picture.save(path)
    for source in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes())):
        assert_found(open_image(source), picture.info["boxes"])


def test_exif_orientation_is_applied():
    upright = render_digits("7", size=60, canvas=(200, 120), position=(0.1, 0.5))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    image = open_image(encoded(stored, "JPEG", exif=exif.tobytes(), quality=95))
    assert image.size == upright.size
    assert_found(image, upright.info["boxes"])


def test_animated_gif_gives_first_frame():
    first = render_digits("2", size=40, canvas=(100, 80)).convert("L")
    blank = Image.new("L", first.size, 255)
    data = encoded(first, "GIF", save_all=True, append_images=[blank, blank], duration=100)
    image = open_image(data)
    assert len(digits_found(image)) == 1


def test_large_photo_is_reduced_and_boxes_are_in_input_pixels():
    picture = render_digits("2026", size=500, canvas=(4000, 3000), position=(0.3, 0.6), noise=5)
    image = open_image(encoded(picture, "JPEG", quality=90))
    assert max(image.size) <= images.WORKING_SIDE
    assert image.info[images.SOURCE_SIZE_KEY] == (4000, 3000)
    found = assert_found(image, picture.info["boxes"], min_overlap=0.85)
    assert all(0 <= d.box[0] < d.box[2] <= 4000 and 0 <= d.box[1] < d.box[3] <= 3000 for d in found)


def test_large_picture_given_directly_is_reduced_too():
    picture = render_digits("9", size=1800, canvas=(2400, 2400))
    assert_found(picture, min_overlap=0.85)


def test_decompression_bomb_is_refused_from_the_header():
    bomb = encoded(Image.new("1", (20000, 20000)), "PNG")
    assert len(bomb) < 200_000  # tiny file, 400 megapixels
    with pytest.raises(ImageError, match="megapixels"):
        open_image(bomb)


def test_pixel_limit_is_checked_before_decoding(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 100 * 100 - 1)

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels decoded before the size check")

    data = encoded(render_digits("1", canvas=(100, 100)), "PNG")
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match="100×100 pixels; the limit is"):
        open_image(data)


def _truncated(fmt: str) -> bytes:
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8))
    data = encoded(noisy, fmt)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an image"),
        (np.random.default_rng(1).bytes(4000), "not an image"),
        (b"hello, world\n" * 100, "not an image"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect/></svg>',
            "not an image",
        ),
        (_truncated("PNG"), "truncated"),
        (_truncated("JPEG"), "truncated"),
        (encoded(Image.new("RGB", (50, 50)), "PNG")[:40], "not an image|truncated"),
    ],
    ids=["empty", "random", "text", "svg", "truncated-png", "truncated-jpeg", "header-only"],
)
def test_unreadable_input_is_one_clear_line(data, message):
    with pytest.raises(ImageError, match=message) as caught:
        open_image(io.BytesIO(data))
    assert "\n" not in str(caught.value)


def test_damaged_pixel_data_is_an_error_not_a_blank_picture():
    """Valid PNG chunks (CRCs right) around random compressed pixels."""
    png = encoded(render_digits("2"), "PNG")
    start = png.index(b"IDAT") - 4
    length = int.from_bytes(png[start : start + 4], "big")
    junk = np.random.default_rng(4).bytes(length)
    crc = zlib.crc32(b"IDAT" + junk).to_bytes(4, "big")
    damaged = png[:start] + png[start : start + 8] + junk + crc + png[start + 12 + length :]
    with pytest.raises(ImageError, match="damaged|truncated"):
        open_image(damaged)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        open_image(tmp_path / "absent.png")
    with pytest.raises(ImageError, match="directory"):
        open_image(tmp_path)


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


def test_damaged_metadata_is_skipped_without_a_warning(tmp_path):
    # Pillow reads this TIFF (a tag with one value too many) and warns about it; open_image gives
    # the picture and no warning, which would print lines of Python on the board's log.
    from tests.test_reliability_inputs import tiff_with_odd_metadata

    data = (tmp_path / tiff_with_odd_metadata(tmp_path)).read_bytes()
    with pytest.warns(UserWarning, match="Metadata Warning"), Image.open(io.BytesIO(data)) as tiff:
        tiff.load()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_image(data).size == tiff.size
