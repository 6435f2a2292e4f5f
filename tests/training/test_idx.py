"""The IDX format: parsing, writing, gzipped files, and what a malformed file is told."""

import gzip
import struct

import numpy as np
import pytest

from digits.training.idx import parse_idx, read_idx, to_idx


def idx_header(shape, dtype_code=0x08, ndim=None):
    """An IDX header written by hand, independently of the code under test."""
    ndim = len(shape) if ndim is None else ndim
    return bytes([0, 0, dtype_code, ndim]) + struct.pack(f">{len(shape)}I", *shape)


def idx_file(array):
    return idx_header(array.shape) + array.astype(np.uint8).tobytes()


def test_parse_idx_reads_images_and_labels():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)

    np.testing.assert_array_equal(parse_idx(idx_file(images)), images)
    np.testing.assert_array_equal(parse_idx(idx_file(labels)), labels)
    assert parse_idx(idx_file(images)).dtype == np.uint8


def test_parse_idx_of_a_bytearray_gives_a_writable_array():
    array = parse_idx(bytearray(idx_file(np.zeros((2, 2), np.uint8))))
    array[0, 0] = 9
    assert array[0, 0] == 9


def test_to_idx_is_the_inverse_of_parse_idx():
    array = np.random.default_rng(1).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    encoded = to_idx(array)
    assert bytes(encoded) == idx_file(array)
    np.testing.assert_array_equal(parse_idx(encoded), array)


def test_to_idx_refuses_other_dtypes():
    with pytest.raises(ValueError, match="uint8"):
        to_idx(np.zeros(3, np.float32))


@pytest.mark.parametrize("file_name", ["labels.idx1-ubyte", "labels-idx1-ubyte.gz"])
def test_read_idx_reads_plain_and_gzipped_files(tmp_path, file_name):
    labels = np.array([7, 2, 1, 0], dtype=np.uint8)
    blob = idx_file(labels)
    path = tmp_path / file_name
    path.write_bytes(gzip.compress(blob) if file_name.endswith(".gz") else blob)

    np.testing.assert_array_equal(read_idx(path), labels)


MALFORMED = {
    "too short for a magic number": (b"\x00\x00\x08", "header truncated"),
    "bad magic": (b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00", "magic number 0x01020801"),
    "wrong dtype": (idx_header((2,), dtype_code=0x0D) + b"\x00" * 8, "data type 0x0d"),
    "no dimensions": (bytes([0, 0, 8, 0]), "0 dimensions"),
    "truncated header": (bytes([0, 0, 8, 3]) + struct.pack(">I", 2), "header truncated"),
    "truncated data": (idx_header((2, 3)) + b"\x01" * 5, "needs 6 bytes, found 5"),
    "size mismatch": (idx_header((60000, 28, 28)) + b"\x01" * 784, "needs 47040000 bytes"),
    "extra bytes": (idx_header((2, 3)) + b"\x01" * 8, "2 extra bytes"),
}


@pytest.mark.parametrize("blob, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_parse_idx_says_what_is_wrong_with_a_malformed_file(blob, message):
    with pytest.raises(ValueError, match=message):
        parse_idx(blob)


def test_read_idx_names_the_malformed_file(tmp_path):
    path = tmp_path / "broken.idx1-ubyte"
    path.write_bytes(idx_header((4,)) + b"\x00")
    with pytest.raises(ValueError, match="broken.idx1-ubyte: IDX data truncated"):
        read_idx(path)


@pytest.mark.parametrize("damage", ["not gzip at all", "truncated gzip"])
def test_read_idx_refuses_a_broken_gzip_file(tmp_path, damage):
    packed = gzip.compress(idx_file(np.arange(100, dtype=np.uint8)))
    path = tmp_path / "labels.idx1-ubyte.gz"
    path.write_bytes(b"plain text" if damage == "not gzip at all" else packed[:-10])
    with pytest.raises(ValueError, match="labels.idx1-ubyte.gz"):
        read_idx(path)
