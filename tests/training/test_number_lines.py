"""The number composer: it reads only the digits it is given, places neighbours at the gap kind
named, and turns numbers into the lines and CTC targets that training uses."""

import numpy as np
import pytest
from scipy import ndimage

from digits.reading.mnist_style import FIELD
from digits.training import number_lines
from digits.training.number_lines import GAP_KINDS, INK, MAX_DIGITS, compose
from digits.training.number_model import FRAME_STRIDE


class Watched:
    """Digit images that note which ones were read (the composer may only index them)."""

    def __init__(self, images):
        self.images = images
        self.read = set()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        self.read.add(int(index))
        return self.images[index]


def bar_digits(count, label):
    """`count` fake MNIST digits (a bar with a cap, shifted by one column each), all `label`."""
    images = np.zeros((count, FIELD, FIELD), np.uint8)
    for k, image in enumerate(images):
        image[4:24, 10 + k : 14 + k] = 255
        image[4:8, 6:22] = 255
    return images, np.full(count, label, np.uint8)


def test_lines_are_composed_only_from_the_digits_given():
    images, labels = bar_digits(3, 7)
    watched = Watched(images)
    lines, targets = number_lines.number_lines(watched, labels, 40, seed=0)
    assert watched.read == {0, 1, 2}
    for line, target in zip(lines, targets, strict=True):
        digits = target[2 : 2 + target[1]]
        assert 1 <= target[1] <= MAX_DIGITS and set(digits) == {7}
        assert not target[2 + target[1] :].any()
        assert line.dtype == np.float16 and line.shape[0] == FIELD
        assert target[0] == line.shape[1] // FRAME_STRIDE
        assert line.min() >= 0 and line.max() <= 1


def test_lines_are_seeded():
    images, labels = bar_digits(3, 4)
    first, first_targets = number_lines.number_lines(images, labels, 5, seed=(1, 2))
    again, again_targets = number_lines.number_lines(images, labels, 5, seed=(1, 2))
    other, _ = number_lines.number_lines(images, labels, 5, seed=(1, 3))
    np.testing.assert_array_equal(first_targets, again_targets)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, other, strict=True)
    )


@pytest.mark.parametrize("kind", GAP_KINDS)
def test_gap_kinds_place_neighbours_as_named(kind):
    images, labels = bar_digits(3, 1)
    rng = np.random.default_rng(1)
    for _ in range(10):
        number = compose(images, labels, rng, 2, kind)
        (_, right), (left, _) = number.spans
        width = np.mean([x1 - x0 for x0, x1 in number.spans])
        pieces = ndimage.label(number.ink > INK)[1]
        if kind == "spaced":
            assert left > right and pieces == 2
        elif kind == "overlapping":
            assert -0.01 <= (right - left) / width <= 0.36
        else:  # touching: the two digits' inks make one piece
            assert pieces == 1
