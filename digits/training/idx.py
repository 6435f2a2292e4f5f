"""The IDX file format of the MNIST files: a big-endian header (magic number, dimensions), then
the values, here unsigned bytes."""

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

UNSIGNED_BYTE = 0x08  # the only IDX data type MNIST uses


def parse_idx(data: bytes | bytearray) -> np.ndarray:
    """Parse one IDX file of unsigned bytes, checking its header against its size.

    Returns a view of `data` (writable when `data` is a bytearray); raises ValueError saying what
    is wrong with a malformed file.
    """
    if len(data) < 4:
        raise ValueError(f"IDX header truncated: {len(data)} bytes, the magic number alone needs 4")
    if data[0] != 0 or data[1] != 0:
        magic = bytes(data[:4]).hex()
        raise ValueError(f"bad IDX magic number 0x{magic}: its first two bytes must be zero")
    if data[2] != UNSIGNED_BYTE:
        raise ValueError(
            f"unsupported IDX data type 0x{data[2]:02x}: only 0x08 (unsigned byte) is supported"
        )
    ndim = data[3]
    if ndim == 0:
        raise ValueError("IDX magic number declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(
            f"IDX header truncated: {ndim} dimensions need {header_size} bytes, "
            f"the file has {len(data)}"
        )
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    needed = math.prod(shape)
    present = len(data) - header_size
    dims = "x".join(map(str, shape))
    if present < needed:
        raise ValueError(f"IDX data truncated: shape {dims} needs {needed} bytes, found {present}")
    if present > needed:
        raise ValueError(f"IDX file has {present - needed} extra bytes after the {dims} data")
    return np.frombuffer(data, dtype=np.uint8, count=needed, offset=header_size).reshape(shape)


def to_idx(array: np.ndarray) -> bytearray:
    """Encode a uint8 array as an IDX file: the inverse of parse_idx."""
    if array.dtype != np.uint8:
        raise ValueError(f"IDX encoding needs uint8 data, got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX encoding needs 1 to 255 dimensions, got {array.ndim}")
    data = bytearray((0, 0, UNSIGNED_BYTE, array.ndim))
    data += struct.pack(f">{array.ndim}I", *array.shape)
    data += np.ascontiguousarray(array).tobytes()
    return data


def read_bytes(path: Path) -> bytearray:
    """A file's content, gunzipped when its name ends in .gz; ValueError for a broken gzip file."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise ValueError(f"{path.name} is not a valid gzip file: {error}") from error
    return bytearray(data)  # arrays parsed from a bytearray are writable, like Keras's


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file, plain or gzipped (.gz); ValueError names the file and what is wrong."""
    path = Path(path)
    try:
        return parse_idx(read_bytes(path))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
