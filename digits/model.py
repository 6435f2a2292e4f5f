"""The CNN, and the checkpoint that survives a kill at any moment.

The network is a small VGG-style stack sized for a laptop CPU: two 3×3 convolutions at each of
three resolutions (28×28, 14×14, 7×7), batch normalisation, then dropout and a dense softmax over
the 7×7 feature maps. Most of the cost sits at full resolution, so the 28×28 convolutions are narrow
and normalised only after pooling, and the width is spent at 7×7 where it is cheap.
"""

import logging
import os
from pathlib import Path

import keras
from keras import layers

from digits.data import fsync_folder

INPUT_SHAPE = (28, 28, 1)
# Ends in .h5 because Keras picks the file format from the name.
PARTIAL_SUFFIX = ".partial.h5"
NUM_CLASSES = 10


def build_model(dropout=0.3, dtype="float32"):
    """Return the uncompiled classifier: (28, 28, 1) floats in [0, 1] → 10 probabilities.

    `dtype` is a Keras dtype policy; "mixed_bfloat16" trains about a quarter faster on CPUs with
    bfloat16 instructions (see `training.fastest_dtype_policy`). The softmax always runs in float32.
    """

    def convolution(filters):
        # No bias: batch normalisation, which follows, adds its own shift.
        return layers.Conv2D(filters, 3, padding="same", use_bias=False, dtype=dtype)

    def normalise_and_activate():
        # The statistics follow the batches faster than Keras's default (momentum 0.99), which would
        # lag behind the weights in a run of only a few thousand steps and spoil validation.
        return [
            layers.BatchNormalization(momentum=0.9, dtype=dtype),
            layers.Activation("relu", dtype=dtype),
        ]

    def pool():
        return layers.MaxPooling2D(dtype=dtype)

    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            # Batch normalisation at 28×28 would take a quarter of the step time: the first
            # convolution goes without, the second is normalised after pooling, on a quarter of
            # the values.
            layers.Conv2D(16, 3, padding="same", activation="relu", dtype=dtype),
            convolution(32),
            pool(),
            *normalise_and_activate(),
            convolution(64),
            *normalise_and_activate(),
            convolution(64),
            pool(),
            *normalise_and_activate(),
            convolution(128),
            *normalise_and_activate(),
            convolution(128),
            *normalise_and_activate(),
            layers.Flatten(dtype=dtype),
            layers.Dropout(dropout, dtype=dtype),
            layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32"),
        ],
        name="digit_cnn",
    )


def save_atomically(model, path):
    """Write `model` to `path` so that a kill at any moment leaves the old file or the new one.

    Keras writes HDF5 in place, so a kill mid-save would leave a truncated file. We write a
    temporary file in the same folder (same file system, so the rename is atomic), flush it to disk,
    then rename it over the target.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}{PARTIAL_SUFFIX}")
    try:
        # HDF5 is our choice (the product's file is bestmodel.h5): silence Keras's "legacy format"
        # warning, which it logs through absl on every save.
        absl_logger = logging.getLogger("absl")
        level = absl_logger.level
        absl_logger.setLevel(logging.ERROR)
        try:
            # A file for reading digits: no optimizer state, and no training configuration, whose
            # loss (our own function) Keras could not load without this package.
            model.save(temporary, include_optimizer=False)
        finally:
            absl_logger.setLevel(level)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_folder(path.parent)


def remove_partial_saves(path):
    """Delete the hidden temporary files that saves killed part-way left beside `path`."""
    path = Path(path)
    for leftover in path.parent.glob(f".{path.stem}.*{PARTIAL_SUFFIX}"):
        leftover.unlink(missing_ok=True)


class BestModelCheckpoint(keras.callbacks.Callback):
    """Save the model after each epoch that improves `monitor`, atomically (see `save_atomically`).

    The file is always a float32 model: when training runs in mixed precision, the weights are
    copied into `export_model`, a float32 twin of the trained network, so that whoever loads the
    file computes in full precision.
    """

    def __init__(self, path, monitor="val_accuracy", export_model=None):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.export_model = export_model
        self.best = None
        self.best_epoch = None

    def on_train_begin(self, logs=None):
        remove_partial_saves(self.path)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or (self.best is not None and value <= self.best):
            return
        self.best, self.best_epoch = value, epoch + 1
        exported = self.model
        if self.export_model is not None:
            self.export_model.set_weights(self.model.get_weights())
            exported = self.export_model
        save_atomically(exported, self.path)


class LearningRateLogger(keras.callbacks.Callback):
    """Record the learning rate in each epoch's logs, so the history can plot the schedule."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            rate = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))
