"""The numpy engine that runs a digit network: its operations on float32 NHWC batches.

Importing TensorFlow alone takes seconds, so the command line runs the trained networks itself:
convolutions as one matrix product over image patches (im2col), batch normalisation folded into
the preceding layer's weights when the network is built, and batches cut into chunks so that the
working memory stays small. `digits.reading.keras_file` builds these operations from a Keras
.h5 file; its answers match Keras's `model.predict` to about 1e-6.
"""

import math

import numpy as np

ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0, out=x),  # in place: every op's input is a fresh array
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softmax": lambda x: _softmax(x),
}
WORKING_MEMORY = 64 * 2**20  # bytes of patches per batch chunk: keeps the cache warm, memory small
MAX_CHUNK = 256


class ModelError(Exception):
    """A model file that cannot be used; str(e) is one user-facing line."""


# --- the operations ---


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _same_padding(size: int, window: int, stride: int) -> tuple[int, int, int]:
    """(output size, padding before, padding after) of Keras's 'same' padding along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2, total - total // 2


def geometry(shape, window, strides, padding):
    """Output height, width and the (before, after) padding of both axes for a sliding window."""
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


def _pad(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    """The batch padded along height and width (no copy when there is nothing to pad)."""
    if not any(before or after for before, after in pads):
        return x
    return np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def _window_slices(x: np.ndarray, window, strides, out_size):
    """Each window offset's view of the (already padded) batch, strided to the output grid."""
    (kh, kw), (sh, sw), (oh, ow) = window, strides, out_size
    for i in range(kh):
        for j in range(kw):
            yield x[:, i : i + (oh - 1) * sh + 1 : sh, j : j + (ow - 1) * sw + 1 : sw, :]


class Linear:
    """y = x @ kernel + bias over the last axis (Dense), or over image patches (Conv2D)."""

    def __init__(self, kernel, bias):
        self.kernel = kernel  # (inputs, outputs), for a convolution (kh·kw·channels, filters)
        self.bias = bias

    def fold(self, scale, shift):
        """Absorb a following per-output affine map (a batch normalisation)."""
        self.kernel = (self.kernel * scale).astype(np.float32)
        self.bias = (self.bias * scale + shift).astype(np.float32)

    def __call__(self, x):
        flat = x.reshape(-1, x.shape[-1]) @ self.kernel
        flat += self.bias
        return flat.reshape(*x.shape[:-1], -1)


class Conv2D(Linear):
    """A 2-D convolution; its output size follows each input's (a string model takes any width)."""

    def __init__(self, kernel, bias, strides, padding):
        kh, kw, channels, filters = kernel.shape
        super().__init__(kernel.reshape(kh * kw * channels, filters), bias)
        self.window, self.strides, self.padding = (kh, kw), strides, padding

    def __call__(self, x):
        out_size, pads = geometry(x.shape[1:], self.window, self.strides, self.padding)
        x = _pad(x, pads)
        # im2col: every patch as one row, in the kernel's (kh, kw, channels) order, so the whole
        # convolution is one matrix product (BLAS); copying contiguous slices builds it fastest.
        patches = np.concatenate(
            list(_window_slices(x, self.window, self.strides, out_size)), axis=-1
        )
        return super().__call__(patches)


class Affine:
    """A batch normalisation that could not be folded into a preceding layer."""

    def __init__(self, scale, shift):
        self.scale, self.shift = scale, shift

    def __call__(self, x):
        return x * self.scale + self.shift


class Pool:
    """MaxPooling2D or AveragePooling2D, as a maximum or sum over the window's strided views."""

    def __init__(self, kind, window, strides, padding):
        self.kind, self.window, self.strides, self.padding = kind, window, strides, padding

    def _sum(self, padded, out_size):
        slices = _window_slices(padded, self.window, self.strides, out_size)
        total = next(slices).copy()
        for part in slices:
            total += part
        return total

    def __call__(self, x):
        out_size, pads = geometry(x.shape[1:], self.window, self.strides, self.padding)
        if self.kind == "average":
            # Keras averages over the window's part inside the image, so count those pixels.
            ones = np.ones((1, *x.shape[1:3], 1), np.float32)
            counts = self._sum(_pad(ones, pads), out_size)
            return self._sum(_pad(x, pads), out_size) / counts
        padded = _pad(x, pads, -np.inf)
        slices = _window_slices(padded, self.window, self.strides, out_size)
        peak = next(slices).copy()
        for part in slices:
            np.maximum(peak, part, out=peak)
        return peak


class Activation:
    def __init__(self, name):
        self.name, self.function = name, ACTIVATIONS[name]

    def __call__(self, x):
        return self.function(x)


class ReLU:
    """Keras's ReLU layer with its options (same formula as keras.activations.relu)."""

    def __init__(self, max_value, negative_slope, threshold):
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def __call__(self, x):
        y = np.where(x > self.threshold, x, 0) if self.threshold else np.maximum(x, 0)
        if self.max_value is not None:
            y = np.clip(y, 0, self.max_value)
        if self.negative_slope:
            y = y - self.negative_slope * np.maximum(self.threshold - x, 0)
        return y.astype(np.float32)


class Flatten:
    def __call__(self, x):
        return x.reshape(len(x), -1)


class GlobalAveragePool:
    def __init__(self, keepdims):
        self.keepdims = keepdims

    def __call__(self, x):
        return x.mean(axis=(1, 2), keepdims=self.keepdims)


# --- a network: the operations in a chain ---


def fold_batch_normalization(ops: list) -> list:
    """Merge each batch normalisation into the Conv2D/Dense right before it (exact at inference)."""
    folded = []
    for op in ops:
        if isinstance(op, Affine) and folded and isinstance(folded[-1], Linear):
            folded[-1].fold(op.scale, op.shift)
        else:
            folded.append(op)
    return folded


def chunk_size(ops: list, input_shape: tuple) -> int:
    """Images per batch chunk, so that the largest patch matrix stays within WORKING_MEMORY."""
    x = np.zeros((1, *input_shape), np.float32)
    largest = x.nbytes
    for op in ops:
        if isinstance(op, Conv2D):
            out_size, _ = geometry(x.shape[1:], op.window, op.strides, op.padding)
            largest = max(largest, math.prod(out_size) * op.kernel.shape[0] * 4)
        x = op(x)
        largest = max(largest, x.nbytes)
    return int(np.clip(WORKING_MEMORY // largest, 1, MAX_CHUNK))


class Network:
    """A chain of operations and the per-example input shape it takes (None: any size there,
    as a string model's width).

    Read-only once built, so threads may share it.
    """

    def __init__(self, ops: list, input_shape: tuple):
        self.ops = fold_batch_normalization(ops)
        self.input_shape = input_shape
        self._chunks = {}  # examples per pass, by input shape: bounds the working memory

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The outputs for a batch of shape (N, *input_shape), computed chunk by chunk."""
        shape = batch.shape[1:]
        if shape not in self._chunks:
            self._chunks[shape] = chunk_size(self.ops, shape)
        chunk = self._chunks[shape]
        outputs = []
        for start in range(0, len(batch), chunk):
            # astype copies: the ops may work in place, but never in the caller's array
            x = batch[start : start + chunk].astype(np.float32)
            for op in self.ops:
                x = op(x)
            outputs.append(x)
        return np.concatenate(outputs)
