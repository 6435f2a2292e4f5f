"""Model files that try to make their reader open another file, and a FIFO that tells whether
anyone did.

Each maker writes a small model (Input → Flatten → Dense softmax, as model_files.dense_model)
whose Dense kernel, or a group on the way to it, lies outside the file, in `target`: a regular
file (`target_file` makes one that h5py, following the pointer, reads the kernel from) or a FIFO.
Opening a FIFO for reading blocks until someone opens it for writing, so a reader that follows
the pointer stops there; `watched_fifo` sees it waiting, lets it go on (to an empty file) and
reports it. h5py keeps Python's interpreter lock while it opens a file, so the reader must be
another process (the command line) for the watchdog thread to run.
"""

import contextlib
import os
import threading
from pathlib import Path

import h5py
import numpy as np

from tests.reading.model_files import dense_model

KERNEL = "model_weights/dense/sequential/dense/kernel"
KERNEL_SHAPE = (784, 10)
POLL_S = 0.1  # how often the watchdog looks for a reader waiting at the FIFO (not a deadline)


def _replace_kernel(path: Path, make) -> Path:
    """The dense model at `path`, its kernel replaced by make(file, KERNEL)."""
    dense_model(path)
    with h5py.File(path, "r+") as file:
        del file[KERNEL]
        make(file, KERNEL)
    return path


def external_storage(path: Path, target: Path) -> Path:
    """The kernel's bytes live in `target` (HDF5 external storage)."""
    size = int(np.prod(KERNEL_SHAPE)) * 4
    return _replace_kernel(
        path,
        lambda file, name: file.create_dataset(
            name, KERNEL_SHAPE, "<f4", external=[(os.fspath(target), 0, size)]
        ),
    )


def external_link(path: Path, target: Path) -> Path:
    """The kernel is an external link to /kernel in `target`."""

    def link(file, name):
        file[name] = h5py.ExternalLink(os.fspath(target), "/kernel")

    return _replace_kernel(path, link)


def external_link_to_the_weights(path: Path, target: Path) -> Path:
    """The whole model_weights group is an external link into `target`."""
    dense_model(path)
    with h5py.File(path, "r+") as file:
        del file["model_weights"]
        file["model_weights"] = h5py.ExternalLink(os.fspath(target), "/model_weights")
    return path


def soft_link_out_of_the_file(path: Path, target: Path) -> Path:
    """The kernel is a soft link to /elsewhere/kernel, and /elsewhere an external link."""

    def link(file, name):
        file["elsewhere"] = h5py.ExternalLink(os.fspath(target), "/")
        file[name] = h5py.SoftLink("/elsewhere/kernel")

    return _replace_kernel(path, link)


def virtual_dataset(path: Path, target: Path) -> Path:
    """The kernel is a virtual dataset mapping /kernel in `target`."""

    def virtual(file, name):
        layout = h5py.VirtualLayout(KERNEL_SHAPE, "<f4")
        layout[:] = h5py.VirtualSource(os.fspath(target), "kernel", KERNEL_SHAPE, "<f4")
        file.create_virtual_dataset(name, layout, fillvalue=0)

    return _replace_kernel(path, virtual)


# Each maker, and what the one-line refusal says.
REACHING_OUT = {
    "external storage": (external_storage, "keeps its bytes in the file"),
    "external link": (external_link, "goes through an external link"),
    "external link to the weights group": (
        external_link_to_the_weights,
        r"'model_weights/\w+' goes through an external link",
    ),
    "soft link out of the file": (soft_link_out_of_the_file, "goes through a soft link"),
    "virtual dataset": (virtual_dataset, "is a virtual dataset"),
}


def target_file(path: Path, make, kernel: np.ndarray) -> Path:
    """A regular file that `make`'s model, followed, takes `kernel` from: its raw bytes for
    external storage, else an HDF5 file holding it where each pointer leads."""
    if make is external_storage:
        path.write_bytes(kernel.astype("<f4").tobytes())
        return path
    with h5py.File(path, "w") as file:
        file["kernel"] = kernel
        file["model_weights/dense/sequential/dense/kernel"] = kernel
    return path


def unread_hostile_dataset(path: Path, target: Path) -> Path:
    """A good model, plus a dataset with external storage in `target` that no layer needs: listed
    in the Dense layer's weight_names, and an external link beside the layers' groups."""
    dense_model(path)
    with h5py.File(path, "r+") as file:
        group = file["model_weights/dense"]
        group.create_dataset(
            "sequential/dense/extra", (10,), "<f4", external=[(os.fspath(target), 0, 40)]
        )
        group.attrs["weight_names"] = [*group.attrs["weight_names"], "sequential/dense/extra"]
        file["model_weights/unused"] = h5py.ExternalLink(os.fspath(target), "/")
    return path


@contextlib.contextmanager
def watched_fifo(path: Path):
    """Make a FIFO at `path`; yields a list that holds a note once anyone opened it to read.

    A watchdog thread tries, every POLL_S, to open the FIFO for writing without blocking: that
    succeeds only while a reader has it open (or waits in open()), so it finds any reader that
    would otherwise wait for ever, and its opening lets that reader go on (to an empty file).
    """
    os.mkfifo(path)
    opened, finished = [], threading.Event()

    def watch():
        while not finished.wait(POLL_S):
            try:
                handle = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody has it open for reading
                continue
            opened.append(f"{path} was opened for reading")
            os.close(handle)

    watchdog = threading.Thread(target=watch, name="fifo-watchdog", daemon=True)
    watchdog.start()
    try:
        yield opened
    finally:
        finished.set()
        watchdog.join()
