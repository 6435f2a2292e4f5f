"""Saving models so that a kill at any moment leaves a loadable file: the atomic save and the
best-epoch checkpoint."""

import logging

import keras

from digits.files import replacing

# Ends in .h5 because Keras picks the file format from the name.
PARTIAL_SUFFIX = ".partial.h5"


def save_atomically(model, path):
    """Write `model` to `path` so that a kill at any moment leaves the old file or the new one.

    Keras writes HDF5 in place, so a kill mid-save would leave a truncated file; we save to a
    hidden temporary file beside it and rename that over the target (`digits.files.replacing`).
    A kill mid-save leaves only that temporary file, `.<stem>.<random>.partial.h5`.
    """
    # HDF5 is our choice (the product's file is bestmodel.h5): silence Keras's "legacy format"
    # warning, which it logs through absl on every save.
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        with replacing(path, suffix=PARTIAL_SUFFIX) as temporary:
            # A file for reading digits: no optimizer state, and no training configuration, whose
            # loss (our own function) Keras could not load without this package.
            model.save(temporary, include_optimizer=False)
    finally:
        absl_logger.setLevel(level)


class BestModelCheckpoint(keras.callbacks.Callback):
    """After each epoch that improves `monitor`, copy the weights into `export_model` and save it.

    `export_model` is a float32 twin of the trained network, so the file always computes in full
    precision, even when training runs in mixed precision; after training it holds the best
    epoch's weights, exactly as the file does.
    """

    def __init__(self, path, export_model, monitor="val_accuracy"):
        super().__init__()
        self.path = path
        self.export_model = export_model
        self.monitor = monitor
        self.best = None
        self.best_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or (self.best is not None and value <= self.best):
            return
        self.best, self.best_epoch = value, epoch + 1
        self.export_model.set_weights(self.model.get_weights())
        save_atomically(self.export_model, self.path)


class LearningRateLogger(keras.callbacks.Callback):
    """Record the learning rate in each epoch's logs, so the history can plot the schedule."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            rate = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))
