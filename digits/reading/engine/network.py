"""A network: its operations fused, bound to buffers per input shape, and run over a batch in
chunks on one thread per usable core."""

import copy
import threading

import numpy as np

from digits.cpu import usable_cores
from digits.reading.engine.blas import BLAS_THREADS
from digits.reading.engine.core import Workspace
from digits.reading.engine.layers import Activation, Affine, Conv2D, Linear, Pool

WORKSPACE_BYTES = 16 * 2**20  # one thread's buffers: 20 MNIST digits at a time, cache-friendly
MAX_CHUNK = 64
# Chunks this large get every algorithm they will run with (Winograd needs WINOGRAD_MIN_CHUNK
# examples): their buffers per example are what a chunk of any usual size needs.
PROBE_CHUNK = 8
# Programs (buffers) kept per thread, by input shape and chunk size: a line of a width met
# recently is read without building its buffers again.
PROGRAMS_KEPT = 8


def fuse(ops: list) -> list:
    """Copies of the ops with batch normalisations folded and convolution epilogues fused
    (the ops given are left as they are); results are unchanged up to rounding."""
    return _fuse_epilogues(_fold_batch_normalization([copy.copy(op) for op in ops]))


def _fold_batch_normalization(ops: list) -> list:
    """Merge each batch normalisation into the Conv2D/Dense right before it, or into the Conv2D
    right before a pooling that commutes with it (average pooling always; max pooling when every
    scale is positive, since max(s·y + b) = s·max(y) + b then)."""
    result = []
    for op in ops:
        last = result[-1] if result else None
        before = result[-2] if len(result) > 1 else None
        if isinstance(op, Affine) and isinstance(last, Linear):
            last.fold(op.scale, op.shift)
        elif (
            isinstance(op, Affine)
            and isinstance(last, Pool)
            and isinstance(before, Conv2D)
            and (last.kind == "average" or bool((op.scale > 0).all()))
        ):
            before.fold(op.scale, op.shift)
        else:
            result.append(op)
    return result


def _fuse_epilogues(ops: list) -> list:
    """Let each convolution apply the ReLU and 2×2 max pooling that follow it, in any order
    (they commute: max(relu(a), relu(b)) = relu(max(a, b)))."""
    result = []
    for op in ops:
        last = result[-1] if result else None
        if isinstance(last, Conv2D) and isinstance(op, Activation) and op.name == "relu":
            last.relu = True
        elif (
            isinstance(last, Conv2D) and isinstance(op, Pool) and op.is_pair_max() and not last.pool
        ):
            last.pool = True
        else:
            result.append(op)
    return result


class Program:
    """The ops bound to buffers for one per-example input shape and chunk size (one thread's)."""

    def __init__(self, ops, shape, n):
        self.workspace = Workspace()
        self.steps, shapes = [], [shape]
        for op in ops:
            self.steps.append(op.bind(shapes[-1], n, self.workspace))
            shapes.append(self.steps[-1].output_shape)
        self.workspace.allocate()
        self.targets = [step.input for step in self.steps[1:]] + [None]
        for step, target in zip(self.steps, self.targets, strict=True):
            step.prepare(target)
        self.first = self.steps[0].input if self.steps else None
        self.shape, self.n = shape, n

    def __call__(self, examples: np.ndarray) -> np.ndarray:
        """(n, *shape) examples → (n, *output) results (a view of a buffer reused next call)."""
        x = examples.astype(np.float32, copy=False)
        if x.ndim == 4:  # images: pixel-major inside the engine
            x = x.transpose(1, 2, 0, 3)
            if self.first is not None:
                np.copyto(self.first, x)
                x = self.first
        for step, target in zip(self.steps, self.targets, strict=True):
            x = step.run(x, target)
        return x.transpose(2, 0, 1, 3) if x.ndim == 4 else x


class Network:
    """A chain of operations and the per-example input shape it takes (None: any size there,
    as a string model's width).

    A batch runs in chunks, on one thread per usable core: numpy releases the GIL inside matrix
    products and array arithmetic, where nearly all the time goes, so threads share the cores
    well; each keeps its own buffers (Program). OpenBLAS must then run each product on the
    calling thread alone (two callers sharing its threads wait for each other), so BLAS_THREADS
    pins it to one thread meanwhile.
    Threads may share a network."""

    def __init__(self, ops: list, input_shape: tuple, threads: int | None = None):
        self.ops = fuse(list(ops))
        self.input_shape = input_shape
        self.threads = threads or usable_cores()
        self.local = threading.local()
        self.bytes_per_example = {}  # by input shape: one example's share of the buffers
        self.pool = None

    def chunk_size(self, shape) -> int:
        """Examples per chunk, so that one thread's buffers stay within WORKSPACE_BYTES."""
        if shape not in self.bytes_per_example:
            probe = Program(self.ops, shape, PROBE_CHUNK).workspace.nbytes
            self.bytes_per_example[shape] = max(probe // PROBE_CHUNK, 1)
        return int(np.clip(WORKSPACE_BYTES // self.bytes_per_example[shape], 1, MAX_CHUNK))

    def output_shape(self, shape) -> tuple:
        for op in self.ops:
            shape = op.output_shape(shape)
        return tuple(shape)

    def program(self, shape, n) -> Program:
        """This thread's program for the shape and chunk size (the PROGRAMS_KEPT latest are kept:
        the string model reads lines of many widths, one picture after another)."""
        programs = self.local.__dict__.setdefault("programs", {})
        program = programs.pop((shape, n), None)
        if program is None:
            if len(programs) >= PROGRAMS_KEPT:
                del programs[next(iter(programs))]  # the least recently used, before the new one
            program = Program(self.ops, shape, n)
        programs[(shape, n)] = program
        return program

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The float32 outputs for a batch of shape (N, *input_shape)."""
        batch = np.asarray(batch)
        count, shape = len(batch), tuple(batch.shape[1:])
        out = np.empty((count, *self.output_shape(shape)), np.float32)
        n = min(self.chunk_size(shape), max(count, 1))
        workers = min(self.threads, -(-count // n))
        if workers > 1 and count < workers * n:
            n = -(-count // workers)  # a small batch: an equal share per thread
        if workers > 1 and not BLAS_THREADS.can_pin():
            workers = 1  # OpenBLAS might share its threads between ours (see above)

        def run(start):
            part = batch[start : start + n]
            if len(part) < n:  # the last, short chunk: padded to fill the buffers
                part = np.concatenate([part, np.zeros((n - len(part), *shape), part.dtype)])
            out[start : start + n] = self.program(shape, n)(part)[: count - start]

        starts = range(0, count, n)
        if workers <= 1:
            for start in starts:
                run(start)
        else:
            with BLAS_THREADS.pinned():
                for _ in self.executor().map(run, starts):
                    pass
        return out

    def executor(self):
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor  # only when threads are used

            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="digits-engine")
        return self.pool
