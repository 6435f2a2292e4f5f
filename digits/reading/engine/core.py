"""What every operation of the engine shares: errors, activations, sliding-window geometry, and
the buffers and steps an operation binds to for one input shape and chunk size."""

import numpy as np
from numpy.lib.stride_tricks import as_strided

F32 = np.dtype(np.float32).itemsize


class ModelError(Exception):
    """A model file that cannot be used; str(e) is one user-facing line."""


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softmax": _softmax,
}


def _same_padding(size: int, window: int, stride: int) -> tuple[int, int, int]:
    """(output size, padding before, padding after) of Keras's 'same' padding along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2, total - total // 2


def geometry(shape, window, strides, padding):
    """Output height, width and the (before, after) padding of both axes for a sliding window
    over an input of `shape` (height, width, …)."""
    sizes, pads = [], []
    for size, win, stride in zip(shape[:2], window, strides, strict=True):
        if padding == "same":
            out, before, after = _same_padding(size, win, stride)
        else:
            out, before, after = (size - win) // stride + 1, 0, 0
        if out < 1:
            raise ModelError(f"a {win}-wide window does not fit a {size}-wide input")
        sizes.append(out)
        pads.append((before, after))
    return tuple(sizes), tuple(pads)


def strided(base: np.ndarray, shape, strides) -> np.ndarray:
    """A view of `base` with strides counted in float32 elements (writeable when base is)."""
    return as_strided(base, shape, [s * F32 for s in strides])


def put(result: np.ndarray, out):
    """`result`, copied into `out` when the next step wants its input there."""
    if out is None:
        return result
    np.copyto(out, result)
    return out


class Workspace:
    """One thread's buffers for one input shape and chunk size, created once and reused.

    Buffers start zeroed, and the engine keeps the padding of every padded buffer at zero (it
    only ever writes their interiors), so they need no clearing between chunks. Scratch buffers
    are shared by all layers (they run one after the other): steps reserve their sizes while
    binding, and take their views of them in `prepare`, once all are allocated."""

    def __init__(self):
        self.nbytes = 0
        self.sizes, self.shared = {}, {}

    def zeros(self, shape) -> np.ndarray:
        array = np.zeros(shape, np.float32)
        self.nbytes += array.nbytes
        return array

    def reserve(self, name: str, size: int) -> None:
        self.sizes[name] = max(self.sizes.get(name, 0), size)

    def allocate(self) -> None:
        for name, size in self.sizes.items():
            self.shared[name] = self.zeros(max(size, 1))

    def scratch(self, name: str, size: int) -> np.ndarray:
        """The first `size` floats of shared buffer `name` (after allocate)."""
        return self.shared[name][:size]


class Step:
    """An operation bound to one input shape and chunk size.

    run(x, out) computes it on a batch x, writing into `out` when that is given (a view of the
    next step's input buffer) and returning the result. `input`, when not None, is where the
    step wants its input (the previous step writes it there). `prepare(dest)` is called once
    all buffers exist, with the next step's input (or None)."""

    def __init__(self, run, output_shape, input=None, prepare=None):
        self.run, self.output_shape, self.input = run, output_shape, input
        self.prepare = prepare or (lambda dest: None)
