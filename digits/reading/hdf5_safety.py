"""Reading arrays from an HDF5 model file without ever leaving the file.

HDF5 has several ways to make whoever reads a file open something else, and none of them appears
in a file Keras writes:

- an external link names an object in another file, which HDF5 opens as soon as the link is
  followed, and a soft link may lead through one;
- a dataset with external storage keeps its bytes in a named file: any file, so a 12 KB .h5
  could load the bytes of some local file as its weights;
- a virtual dataset maps regions of datasets in other files;
- a filter that is not built into HDF5 is loaded, when the data is read, as a plugin: a shared
  library found on HDF5_PLUGIN_PATH.

`SealedFile` follows hard links only, checks a dataset's storage, filters and chunks before it
reads a byte of it, and counts every array it reads against a budget, so that a small file
cannot claim gigabytes (HDF5 stores unwritten chunks as nothing). Each refusal is a `ModelError`
with one line that names the object.
"""

import math

import h5py
import numpy as np

from digits.reading.engine import ModelError

# All the weights of one model together, as float32: a digit model needs a few megabytes.
MAX_WEIGHT_BYTES = 200 * 2**20
# Filters built into HDF5 itself (no plugin is loaded for them) that h5py users apply.
BUILT_IN_FILTERS = {
    h5py.h5z.FILTER_DEFLATE: "gzip",
    h5py.h5z.FILTER_SHUFFLE: "shuffle",
    h5py.h5z.FILTER_FLETCHER32: "fletcher32",
}
# HDF5 decompresses a whole chunk to read any part of it, so a chunk may be no larger than the
# data it holds (or this, for small arrays).
MAX_CHUNK_BYTES = 2**20


class SealedFile:
    """An open HDF5 file whose objects are reached through hard links only and whose datasets are
    read only when stored inside it, within a byte budget."""

    def __init__(self, file: h5py.File, max_bytes: int = MAX_WEIGHT_BYTES):
        self.file = file
        self.max_bytes = max_bytes
        self.bytes_left = max_bytes

    def get(self, path: str) -> h5py.Group | h5py.Dataset | None:
        """The object at `path` from the file's root, or None when there is none; refuses a path
        that passes through any link other than a hard one."""
        node = self.file
        for name in filter(None, path.split("/")):
            if not isinstance(node, h5py.Group):
                return None
            link = node.get(name, getlink=True)
            if link is None:
                return None
            if not isinstance(link, h5py.HardLink):
                raise ModelError(f"refused: {path!r} goes through {_link_text(link)}")
            node = node[name]
        return node

    def read(self, dataset: h5py.Dataset, what: str) -> np.ndarray:
        """The dataset's values as float32, after its storage, filters, chunks and size pass."""
        _check_storage(dataset, what)
        needed = dataset.size * max(dataset.dtype.itemsize, np.dtype(np.float32).itemsize)
        if needed > self.bytes_left:
            raise ModelError(
                f"refused: {what} would take the weights over {self.max_bytes // 2**20} MB, "
                f"far more than a digit classifier needs"
            )
        self.bytes_left -= needed
        return np.asarray(dataset, dtype=np.float32)


def _link_text(link) -> str:
    if isinstance(link, h5py.ExternalLink):
        return (
            f"an external link to {link.path!r} in the file {link.filename!r}; "
            "a model file may not reach into other files"
        )
    if isinstance(link, h5py.SoftLink):
        return f"a soft link to {link.path!r}; only objects stored at their own path are read"
    return "a user-defined link; only objects stored at their own path are read"


def _check_storage(dataset: h5py.Dataset, what: str) -> None:
    """Refuse a dataset whose bytes are elsewhere, or need a plugin or an outsized chunk to read."""
    if dataset.is_virtual:
        raise ModelError(f"refused: {what} is a virtual dataset, made of data in other files")
    external = dataset.external
    if external:
        raise ModelError(
            f"refused: {what} keeps its bytes in the file {external[0][0]!r}; "
            "a model file may not reach into other files"
        )
    properties = dataset.id.get_create_plist()
    for index in range(properties.get_nfilters()):
        code, _flags, _values, name = properties.get_filter(index)
        if code not in BUILT_IN_FILTERS:
            shown = name.decode(errors="replace")[:40] if name else "unnamed"
            raise ModelError(
                f"refused: {what} is stored with the HDF5 filter {code} ({shown!r}); only "
                f"{', '.join(BUILT_IN_FILTERS.values())} are read, no plugin is loaded"
            )
    if dataset.chunks is not None:
        chunk_bytes = math.prod(dataset.chunks) * dataset.dtype.itemsize
        if chunk_bytes > max(MAX_CHUNK_BYTES, dataset.size * dataset.dtype.itemsize):
            raise ModelError(
                f"refused: {what} is stored in chunks of {chunk_bytes:,} bytes, larger than "
                "the data it holds"
            )
