"""The thread count of the OpenBLAS that numpy uses, set through its C interface (ctypes), since
numpy has no call for it: the engine's own threads need OpenBLAS to run each product on the
calling thread alone."""

import os
import threading

import numpy as np


class BlasThreads:
    """OpenBLAS's thread count, pinned to one while any caller is inside `pinned()`.

    The library is found, on first use, among those mapped into the process (/proc/self/maps);
    where it is not found (another BLAS, another system), the engine still uses its threads when
    the environment pins OpenBLAS to one thread, else runs alone."""

    NAMES = ("scipy_openblas_{}64_", "openblas_{}64_", "openblas_{}")  # numpy wheels: the first

    def __init__(self):
        self.lock = threading.Lock()
        self.functions = None  # (get, set) once looked up; () when not found
        self.users, self.saved = 0, None

    def lookup(self):
        if self.functions is None:
            self.functions = _find_openblas(self.NAMES) or ()
        return self.functions

    def can_pin(self) -> bool:
        if os.environ.get("OPENBLAS_NUM_THREADS", os.environ.get("OMP_NUM_THREADS")) == "1":
            return True
        return bool(self.lookup())

    def pinned(self):
        """A context in which OpenBLAS runs every call on its caller's thread only."""
        return _Pinned(self)

    def enter(self):
        with self.lock:
            functions = self.lookup()
            if functions and self.users == 0:
                self.saved = functions[0]()
                if self.saved > 1:
                    functions[1](1)
            self.users += 1

    def leave(self):
        with self.lock:
            self.users -= 1
            if self.functions and self.users == 0 and self.saved > 1:
                self.functions[1](self.saved)


class _Pinned:
    def __init__(self, blas: BlasThreads):
        self.blas = blas

    def __enter__(self):
        self.blas.enter()

    def __exit__(self, *exc):
        self.blas.leave()


def _find_openblas(names):
    """(get_num_threads, set_num_threads) of numpy's OpenBLAS, or None."""
    try:
        import ctypes

        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except (OSError, ImportError):
        return None
    numpy_home = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(paths, key=lambda path: not path.startswith(numpy_home)):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            get = getattr(library, name.format("get_num_threads"), None)
            set_ = getattr(library, name.format("set_num_threads"), None)
            if get and set_:
                get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                return get, set_
    return None


BLAS_THREADS = BlasThreads()
