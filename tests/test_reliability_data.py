"""Reliability of the MNIST cache, end to end with the real files and the real checksums.

tests/test_data.py proves the rebuild with small fake files made the reference (checksums
monkeypatched) and fake routes. This adds the same guarantee for the real thing: one flipped
pixel in a copy of the real cache, a damage that leaves the IDX file well-formed (parsing alone
would accept it), is caught by the reference SHA-256 in digits.training.mnist and rebuilt from the
pristine files, never silently used.
"""

import logging
import shutil

import numpy as np
import pytest

from digits.training import mnist as data
from digits.training.idx import parse_idx


@pytest.mark.mnist
def test_a_single_flipped_pixel_in_the_real_cache_is_caught_and_rebuilt(mnist, tmp_path, caplog):
    pristine = data.default_cache_dir()  # filled by the mnist fixture
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in data.IDX_NAMES:
        shutil.copyfile(pristine / name, cache / name)
    damaged = cache / data.TRAIN_IMAGES
    content = bytearray(damaged.read_bytes())
    middle = len(content) // 2  # a pixel in image ~30000
    content[middle] ^= 0x01
    damaged.write_bytes(content)
    assert parse_idx(content).shape == (60000, 28, 28)  # still a valid IDX file

    with caplog.at_level(logging.WARNING, logger="digits.training.mnist"):
        (x_train, y_train), (x_test, y_test) = data.load_mnist(
            cache_dir=cache, files_dir=pristine, routes=()
        )

    for loaded, reference in zip(
        (x_train, y_train, x_test, y_test), (a for s in mnist for a in s), strict=True
    ):
        np.testing.assert_array_equal(loaded, reference)
    assert str(damaged) in caplog.text and "corrupt" in caplog.text
    assert damaged.read_bytes() == (pristine / data.TRAIN_IMAGES).read_bytes()
