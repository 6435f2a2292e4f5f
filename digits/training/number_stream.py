"""Feeding composed lines to Keras: worker processes that compose them, a training pool refreshed
with fresh numbers every epoch, and batches of lines of similar width.

Composing a number costs about as much CPU as a training step spends on it, so lines are composed
by worker processes: a pool of them before training, and one in the background during it.
Workers are forked (Linux) and inherit the digits they compose from, instead of receiving them
through a pipe; they must be forked before TensorFlow has run anything, while the parent has no
threads yet.
"""

import itertools
import multiprocessing

import numpy as np
import tensorflow as tf

from digits.reading.mnist_style import FIELD
from digits.training.number_lines import MAX_DIGITS, number_lines

# The digits a worker process composes from, set in each worker when its pool starts.
_worker_digits = None


def _keep_digits(images, labels):
    global _worker_digits
    _worker_digits = images, labels


def _compose_in_worker(job):
    count, seed = job
    return number_lines(*_worker_digits, count, seed)


def composer(images, labels, processes: int):
    """A pool of worker processes that compose lines from these digits only."""
    context = multiprocessing.get_context("fork")
    return context.Pool(processes, initializer=_keep_digits, initargs=(images, labels))


def composed_lines(pool, count: int, seeds) -> tuple[list[np.ndarray], np.ndarray]:
    """`count` lines shared out over the pool's processes, one seed each: (lines, targets)."""
    shares = [count // len(seeds) + (k < count % len(seeds)) for k in range(len(seeds))]
    parts = pool.map(_compose_in_worker, zip(shares, seeds, strict=True))
    return [line for part in parts for line in part[0]], np.concatenate([p[1] for p in parts])


class TrainingLines:
    """The training lines: a pool composed up front, then refreshed at each epoch's start with
    lines that a background process composed while the network trained.

    Training alone leaves the two cores partly idle: measured in the prototype, one process
    composing alongside slows the steps by a third and supplies fresh numbers at about a third of
    the training speed. So a run sees some 150,000 distinct numbers where composing them all up
    front would have taken two of its ten minutes. Each epoch takes exactly `fresh` lines,
    waiting for them if need be, so what the network sees does not depend on timing.
    `seed` is a tuple of ints; background job k is seeded with (*seed, k).
    """

    CHUNK = 2048  # lines per background job

    def __init__(self, lines, targets, background, fresh: int, seed):
        self.lines, self.targets, self.background = lines, targets, background
        self.chunk = min(self.CHUNK, fresh)
        self.chunks_per_epoch = -(-fresh // self.chunk)
        self.seeds = ((*seed, k) for k in itertools.count())
        # Twice an epoch's worth queued, so that the background process never runs dry.
        self.pending = [self._submit() for _ in range(2 * self.chunks_per_epoch)]
        self.oldest = 0

    def _submit(self):
        return self.background.apply_async(_compose_in_worker, ((self.chunk, next(self.seeds)),))

    def refresh(self):
        """Replace the oldest lines with an epoch's worth of fresh ones."""
        for _ in range(self.chunks_per_epoch):
            lines, targets = self.pending.pop(0).get()
            self.pending.append(self._submit())
            for line, target in zip(lines, targets, strict=True):
                self.lines[self.oldest], self.targets[self.oldest] = line, target
                self.oldest = (self.oldest + 1) % len(self.lines)


def batches(lines, targets, batch_size: int, rng=None):
    """Batches of lines of similar width, each padded with blank columns to its widest line.

    With `rng`, widths are jittered before sorting and the batch order is shuffled, so every
    epoch groups the lines differently; without it the order is fixed (validation).
    """
    widths = np.array([line.shape[1] for line in lines], np.float64)
    if rng is not None:
        widths += rng.uniform(0, 12, len(widths))
    order = np.argsort(widths, kind="stable")
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(groups)
    for group in groups:
        widest = max(lines[i].shape[1] for i in group)
        x = np.zeros((len(group), FIELD, widest, 1), np.float32)
        for row, i in enumerate(group):
            x[row, :, : lines[i].shape[1], 0] = lines[i]
        yield x, targets[group]


def training_dataset(training_lines: TrainingLines, batch_size: int, seed):
    """A tf.data pipeline over `batches` of the training lines, refreshed and regrouped every
    epoch, with batches prefetched. The first epoch uses the lines as composed."""
    rng = np.random.default_rng(seed)
    epochs = itertools.count()

    def epoch():
        if next(epochs):
            training_lines.refresh()
        return batches(training_lines.lines, training_lines.targets, batch_size, rng)

    signature = (
        tf.TensorSpec((None, FIELD, None, 1), tf.float32),
        tf.TensorSpec((None, 2 + MAX_DIGITS), tf.int32),
    )
    dataset = tf.data.Dataset.from_generator(epoch, output_signature=signature)
    # Declaring the batch count lets Keras know where an epoch ends (a generator's is unknown).
    steps = -(-len(training_lines.lines) // batch_size)
    return dataset.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2)
