"""A convolution bound to its buffers: Winograd F(4×4, 3×3) for 3×3 stride-1 windows, one matrix
product over image patches (im2col) for any other, and the fused ReLU and 2×2 max pooling.

Batches inside the engine are "pixel-major", (height, width, N, channels): each pixel holds a
contiguous N × channels block, so every spatial shift, window and padding is a slice along the
two outer axes whose rows are long contiguous runs, and every transform below is a matrix
product (BLAS) with big operands.
"""

import numpy as np

from digits.reading.engine.core import F32, Step, geometry, strided

# Winograd F(4, 3) (Lavin & Gray; interpolation points 0, ±1, ±2, ∞): y = A^T [(G g) ⊙ (B^T d)].
WINOGRAD_BT = np.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    np.float32,
)
WINOGRAD_G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    np.float64,
)
WINOGRAD_AT = np.array(
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    np.float32,
)
WINOGRAD_GG = np.kron(WINOGRAD_G, WINOGRAD_G).astype(np.float32)  # (36, 9): kernel transform
# The output transform along rows takes a 7th input row, the bias, added to all 4 outputs.
WINOGRAD_AT_BIAS = np.hstack([WINOGRAD_AT, np.ones((4, 1), np.float32)])
TILE, WINDOW = 4, 6  # outputs and inputs per tile and axis


def winograd_kernel(kernel: np.ndarray) -> np.ndarray:
    """A (9·C, K) 3×3 kernel transformed, U[a, b] = (G g G^T)[a, b] per (channel, filter), as
    one product (G ⊗ G) @ g: (36, C, K), 4× the kernel's size."""
    channels, filters = kernel.shape[0] // 9, kernel.shape[1]
    return (WINOGRAD_GG @ kernel.reshape(9, channels * filters)).reshape(36, channels, filters)


class Epilogue:
    """A convolution's fused ReLU and/or 2×2 max pooling, from its output y (H, W, n, K) into
    the next step's input buffer (or a buffer of its own); the row maxima go through a shared
    scratch buffer. All views are made once, in prepare."""

    def __init__(self, conv, out_hw, n, workspace):
        self.conv, self.workspace = conv, workspace
        height, width = out_hw
        self.size = (height // 2) * width * n * conv.filters if conv.pool else 0
        workspace.reserve("pool", self.size)

    def prepare(self, y, dest):
        """Bind to the convolution's output view y and the destination (None: own buffer)."""
        conv = self.conv
        height, width, n, filters = y.shape
        block = n * filters
        if conv.pool:
            height, width = height // 2, width // 2
        if dest is None:
            dest = self.workspace.zeros((height, width, n, filters))
        self.dest, self.calls = dest, []
        if conv.pool:
            rows = y[: 2 * height].reshape(height, 2, y.shape[1], block)
            row_max = self.workspace.scratch("pool", self.size).reshape(height, y.shape[1], block)
            pairs = row_max[:, : 2 * width].reshape(height, width, 2, block)
            self.calls.append((rows[:, 0], rows[:, 1], row_max))
            self.calls.append((pairs[:, :, 0], pairs[:, :, 1], dest.reshape(height, width, block)))
            if conv.relu:
                self.calls.append((dest, 0, dest))
        else:
            self.calls.append((y, 0 if conv.relu else y, dest))  # max(y, y) copies

    def __call__(self):
        for a, b, out in self.calls:
            np.maximum(a, b, out=out)
        return self.dest


class PatchConvolution:
    """Any convolution as one matrix product over image patches (im2col).

    The input sits in a zero-bordered buffer; a strided view of it presents every patch, and one
    copy lays the patches out as rows, with a trailing 1 that multiplies the bias row."""

    def __init__(self, conv, shape, n, workspace):
        height, width, channels = shape
        (out_h, out_w), ((top, bottom), (left, right)) = geometry(
            shape, conv.window, conv.strides, conv.padding
        )
        padded = workspace.zeros((height + top + bottom, width + left + right, n, channels))
        (kh, kw), (sh, sw) = conv.window, conv.strides
        row, col = padded.strides[0] // F32, padded.strides[1] // F32
        self.patch_view = strided(
            padded, (out_h, out_w, n, kh, kw, channels), (sh * row, sw * col, channels, row, col, 1)
        )
        count = kh * kw * channels
        self.patches = workspace.zeros((out_h, out_w * n, count + 1))
        self.patches[..., count] = 1
        self.patch_rows = strided(
            self.patches,
            (out_h, out_w, n, kh, kw, channels),
            (out_w * n * (count + 1), n * (count + 1), count + 1, kw * channels, channels, 1),
        )
        self.weights = np.vstack([conv.kernel, conv.bias[None]])
        self.y = workspace.zeros((out_h, out_w, n, conv.filters))
        self.epilogue = Epilogue(conv, (out_h, out_w), n, workspace)
        interior = padded[top : top + height, left : left + width]
        self.step = Step(self.run, conv.output_shape(shape), interior, self.prepare)

    def prepare(self, dest):
        self.epilogue.prepare(self.y, dest)

    def run(self, x, out):
        np.copyto(self.patch_rows, self.patch_view)
        np.matmul(self.patches, self.weights, out=self.y.reshape(len(self.y), -1, self.y.shape[3]))
        return self.epilogue()


class WinogradConvolution:
    """A 3×3 stride-1 convolution as Winograd F(4×4, 3×3): 2.25 multiplies per output and input
    channel instead of 9, every transform a matrix product.

    With Th × Tw tiles of 4×4 outputs, a and b indexing the 6×6 input tile, and each pixel an
    (n × C) or (n × K) block (shapes per chunk of n images):
      input buffer   X (4·Th + 2, 4·Tw + 2, n, C), zero-bordered
      along columns  Vw[b, h, j]           = Σq B^T[b, q] X[h, 4j + q]
      along rows     V[a, b, i, j]         = Σq B^T[a, q] Vw[b, 4i + q, j]
      products       M[a, b] (tiles·n × K) = V[a, b] (tiles·n × C) @ U[a, b] (C × K)
      back, rows     Z[b, i, r, j]         = Σa A^T[r, a] M[a, b, i, j]    (Z[6] holds the bias)
      back, columns  Y[4i + r, 4j + c]     = Σb A^T[c, b] Z[b, i, r, j] + bias
    The passes along rows multiply whole rows of tiles at once; those along columns, one
    pixel's block. The scratch buffers "a" (Vw, M, Y) and "b" (V, Z) serve all layers.
    """

    def __init__(self, conv, shape, n, workspace):
        height, width, channels = shape
        (out_h, out_w), ((top, _), (left, _)) = geometry(shape, (3, 3), (1, 1), conv.padding)
        filters = conv.filters
        tiles_h, tiles_w = -(-out_h // TILE), -(-out_w // TILE)
        rows, cols = TILE * tiles_h + 2, TILE * tiles_w + 2
        self.buffer = workspace.zeros((rows, cols, n, channels))
        self.conv = conv  # its transformed kernel is made on the first run, not when binding
        self.bias = conv.bias
        self.out_hw = out_h, out_w
        self.shape = tiles_h, tiles_w, n, channels, filters
        tiles = tiles_h * tiles_w
        self.sizes = {
            "a": max(WINDOW * rows * tiles_w * n * channels, 36 * tiles * n * filters),
            "b": max(36 * tiles * n * channels, 7 * TILE * tiles * n * filters),
        }
        for name, size in self.sizes.items():
            workspace.reserve(name, size)
        self.workspace = workspace
        self.epilogue = Epilogue(conv, self.out_hw, n, workspace)
        interior = self.buffer[top : top + height, left : left + width]
        self.step = Step(self.run, conv.output_shape(shape), interior, self.prepare)

    def prepare(self, dest):
        """The strided views through which each matrix product reads and writes (strides in
        floats; c_block and k_block are one pixel's n × C and n × K values)."""
        tiles_h, tiles_w, n, channels, filters = self.shape
        c_block, k_block = n * channels, n * filters
        tiles, rows, cols = tiles_h * tiles_w, TILE * tiles_h + 2, TILE * tiles_w + 2
        c_row, k_row = tiles_w * c_block, tiles_w * k_block  # one row of tiles
        a, b = (self.workspace.scratch(name, size) for name, size in self.sizes.items())
        self.x_cols = strided(
            self.buffer,
            (rows, tiles_w, WINDOW, c_block),
            (cols * c_block, TILE * c_block, c_block, 1),
        )
        self.vw_out = strided(
            a, (rows, tiles_w, WINDOW, c_block), (c_row, c_block, rows * c_row, 1)
        )
        self.vw_rows = strided(
            a, (WINDOW, tiles_h, WINDOW, c_row), (rows * c_row, TILE * c_row, c_row, 1)
        )
        self.v_out = strided(
            b,
            (WINDOW, tiles_h, WINDOW, c_row),
            (tiles * c_block, c_row, WINDOW * tiles * c_block, 1),
        )
        self.v = b[: 36 * tiles * c_block].reshape(36, tiles * n, channels)
        self.m = a[: 36 * tiles * k_block].reshape(36, tiles * n, filters)
        self.m_rows = strided(
            a,
            (WINDOW, tiles_h, WINDOW, k_row),
            (tiles * k_block, k_row, WINDOW * tiles * k_block, 1),
        )
        z = b[: 7 * TILE * tiles * k_block]
        self.z_out = z[: 6 * TILE * tiles * k_block].reshape(WINDOW, tiles_h, TILE, k_row)
        self.z_bias = z[6 * TILE * tiles * k_block :].reshape(-1, filters)
        self.z_cols = strided(
            z,
            (tiles_h, TILE, tiles_w, 7, k_block),
            (TILE * k_row, k_row, k_block, TILE * tiles * k_block, 1),
        )
        y = a[: 16 * tiles * k_block]
        self.y_out = y.reshape(tiles_h, TILE, tiles_w, TILE, k_block)
        out_h, out_w = self.out_hw
        y_image = y.reshape(TILE * tiles_h, TILE * tiles_w, n, filters)[:out_h, :out_w]
        self.epilogue.prepare(y_image, dest)

    def run(self, x, out):
        np.matmul(WINOGRAD_BT, self.x_cols, out=self.vw_out)
        np.matmul(WINOGRAD_BT, self.vw_rows, out=self.v_out)
        np.matmul(self.v, self.conv.winograd_kernel(), out=self.m)
        np.matmul(WINOGRAD_AT, self.m_rows, out=self.z_out)
        self.z_bias[...] = self.bias  # "b" also held V: the bias row is refilled every time
        np.matmul(WINOGRAD_AT_BIAS, self.z_cols, out=self.y_out)
        return self.epilogue()
