"""Writing files so that a crash or a kill at any moment leaves the old file or the new one."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A hidden temporary path beside `path` to write to; when the block succeeds, the file
    written there is flushed to disk and renamed over `path`, else it is removed.

    The temporary file is in the same folder, hence on the same file system, so the rename is
    atomic. Its name is unique (`.<stem>.<random><suffix>`): concurrent writers never share one,
    and only a process killed mid-write leaves its own behind. `suffix` lets writers that choose
    the format from the name (Keras: ".h5") see the right one.
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; these are ordinary readable files
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_folder(path.parent)


def write_atomic(path: str | os.PathLike, data: bytes | bytearray) -> None:
    """Write `data` to `path` so that readers find the old file or the whole new one, never part."""
    with replacing(path) as temporary:
        temporary.write_bytes(data)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable; a no-op where folders cannot be opened (Windows)."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
