"""The operations a network is made of, as `digits.reading.keras_file` builds them from a file.

Each op knows its per-example output shape for an input shape, and binds, for one input shape and
chunk size n, a Step (digits.reading.engine.core) that computes it on a batch. Image batches
(4-D) are pixel-major, (height, width, n, channels); any other batch has the examples first.
Sizes are worked out per input shape, so a string model's layers take a line of any width.
"""

import math

import numpy as np

from digits.reading.engine.convolution import (
    PatchConvolution,
    WinogradConvolution,
    winograd_kernel,
)
from digits.reading.engine.core import ACTIVATIONS, Step, geometry, put

# Winograd pays with enough input channels for its products not to be too thin, and with
# enough images per chunk to be worth its transformed kernel's memory: a command-line call on
# one picture then needs no more memory than patches do.
WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_CHUNK = 8, 4


class Linear:
    """y = x @ kernel + bias over the last axis (Dense)."""

    def __init__(self, kernel, bias):
        self.kernel = np.asarray(kernel, np.float32)  # (inputs, outputs)
        self.bias = np.asarray(bias, np.float32)

    def fold(self, scale, shift):
        """Absorb a following per-output affine map (a batch normalisation)."""
        self.kernel = (self.kernel * scale).astype(np.float32)
        self.bias = (self.bias * scale + shift).astype(np.float32)

    def output_shape(self, shape):
        return (*shape[:-1], self.kernel.shape[1])

    def bind(self, shape, n, workspace):
        def run(x, out):
            flat = x.reshape(-1, x.shape[-1]) @ self.kernel
            flat += self.bias
            return put(flat.reshape(*x.shape[:-1], -1), out)

        return Step(run, self.output_shape(shape))


class Conv2D(Linear):
    """A 2-D convolution, optionally finishing with a ReLU and a 2×2 max pooling (fused: see
    digits.reading.engine.network); its output size follows each input's."""

    def __init__(self, kernel, bias, strides, padding):
        kh, kw, channels, filters = kernel.shape
        super().__init__(np.reshape(kernel, (kh * kw * channels, filters)), bias)
        self.window, self.strides, self.padding = (kh, kw), tuple(strides), padding
        self.relu = False
        self.pool = False  # a 2×2 stride-2 'valid' max pooling after the ReLU
        self._winograd = None  # (kernel, its transform), made on first use

    @property
    def filters(self) -> int:
        return self.kernel.shape[1]

    def fold(self, scale, shift):
        super().fold(scale, shift)
        self._winograd = None

    def winograd_kernel(self) -> np.ndarray:
        """The kernel in Winograd's domain, made once (threads making it together agree)."""
        if self._winograd is None or self._winograd[0] is not self.kernel:
            self._winograd = self.kernel, winograd_kernel(self.kernel)
        return self._winograd[1]

    def uses_winograd(self, shape, n) -> bool:
        return (
            (self.window, self.strides) == ((3, 3), (1, 1))
            and shape[2] >= WINOGRAD_MIN_CHANNELS
            and n >= WINOGRAD_MIN_CHUNK
        )

    def output_shape(self, shape):
        (height, width), _ = geometry(shape, self.window, self.strides, self.padding)
        if self.pool:
            height, width = height // 2, width // 2
        return height, width, self.filters

    def bind(self, shape, n, workspace):
        if self.uses_winograd(shape, n):
            return WinogradConvolution(self, shape, n, workspace).step
        return PatchConvolution(self, shape, n, workspace).step


class Affine:
    """A batch normalisation that could not be folded into a preceding layer."""

    def __init__(self, scale, shift):
        self.scale, self.shift = np.asarray(scale, np.float32), np.asarray(shift, np.float32)

    def output_shape(self, shape):
        return shape

    def bind(self, shape, n, workspace):
        def run(x, out):
            target = out if out is not None else np.empty(x.shape, np.float32)
            np.multiply(x, self.scale, out=target)
            target += self.shift
            return target

        return Step(run, shape)


class Pool:
    """MaxPooling2D or AveragePooling2D, as a maximum or sum over the window's strided views."""

    def __init__(self, kind, window, strides, padding):
        self.kind, self.window, self.strides, self.padding = kind, window, strides, padding

    def is_pair_max(self) -> bool:
        """A 2×2 stride-2 'valid' max pooling, which a convolution can fuse."""
        shape = (self.kind, tuple(self.window), tuple(self.strides), self.padding)
        return shape == ("max", (2, 2), (2, 2), "valid")

    def output_shape(self, shape):
        (height, width), _ = geometry(shape, self.window, self.strides, self.padding)
        return height, width, shape[2]

    def bind(self, shape, n, workspace):
        out_size, pads = geometry(shape, self.window, self.strides, self.padding)
        if self.kind == "max":
            return Step(
                lambda x, out: put(self._reduce(x, pads, -np.inf, out_size), out),
                self.output_shape(shape),
            )
        # Keras averages over the window's part inside the image: count those pixels once.
        ones = np.ones((*shape[:2], 1, 1), np.float32)
        counts = self._reduce(ones, pads, 0.0, out_size, np.add)

        def run(x, out):
            return put(self._reduce(x, pads, 0.0, out_size, np.add) / counts, out)

        return Step(run, self.output_shape(shape))

    def _reduce(self, x, pads, border, out_size, combine=np.maximum):
        """The windows of a pixel-major batch combined, its border padded with `border`."""
        if any(before or after for before, after in pads):
            x = np.pad(x, (*pads, (0, 0), (0, 0)), constant_values=border)
        (kh, kw), (sh, sw), (oh, ow) = self.window, self.strides, out_size
        result = None
        for i in range(kh):
            for j in range(kw):
                part = x[i : i + (oh - 1) * sh + 1 : sh, j : j + (ow - 1) * sw + 1 : sw]
                result = part.copy() if result is None else combine(result, part, out=result)
        return result


class Activation:
    def __init__(self, name):
        self.name, self.function = name, ACTIVATIONS[name]

    def output_shape(self, shape):
        return shape

    def bind(self, shape, n, workspace):
        if self.name == "relu":
            return Step(lambda x, out: np.maximum(x, 0, out=out), shape)
        return Step(lambda x, out: put(self.function(x), out), shape)


class ReLU:
    """Keras's ReLU layer with its options (same formula as keras.activations.relu)."""

    def __init__(self, max_value, negative_slope, threshold):
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def output_shape(self, shape):
        return shape

    def __call__(self, x):
        y = np.where(x > self.threshold, x, 0) if self.threshold else np.maximum(x, 0)
        if self.max_value is not None:
            y = np.clip(y, 0, self.max_value)
        if self.negative_slope:
            y = y - self.negative_slope * np.maximum(self.threshold - x, 0)
        return y.astype(np.float32)

    def bind(self, shape, n, workspace):
        return Step(lambda x, out: put(self(x), out), shape)


class Flatten:
    """Each example's values in one row, in Keras's order (row, column, channel)."""

    def output_shape(self, shape):
        return (math.prod(shape),)

    def bind(self, shape, n, workspace):
        def run(x, out):
            if x.ndim != 4:
                return put(x.reshape(len(x), -1), out)
            target = out if out is not None else np.empty((n, math.prod(shape)), np.float32)
            np.copyto(target.reshape(n, *x.shape[:2], x.shape[3]), x.transpose(2, 0, 1, 3))
            return target

        return Step(run, self.output_shape(shape))


class GlobalAveragePool:
    def __init__(self, keepdims):
        self.keepdims = keepdims

    def output_shape(self, shape):
        return (1, 1, shape[2]) if self.keepdims else (shape[2],)

    def bind(self, shape, n, workspace):
        def run(x, out):
            return put(x.mean(axis=(0, 1), keepdims=self.keepdims, dtype=np.float32), out)

        return Step(run, self.output_shape(shape))
