"""The two trainings the benchmarks compare, on the same data in the same process.

- reference: the Keras example "Simple MNIST convnet" (keras-io examples/vision/mnist_convnet.py,
  fchollet): Conv 32 3×3 relu → MaxPool → Conv 64 3×3 relu → MaxPool → Flatten → Dropout 0.5 →
  Dense 10 softmax; categorical cross-entropy, Adam with its defaults, batch 128, 15 epochs,
  validation_split 0.1. Written out here as the example has it.
- ours: the notebook's recipe, `digits.training.recipe.train` with `TrainingConfig()` (the
  settings the notebook starts from); its test accuracy is that of the calibrated best-validation
  model it saves, as in the notebook.

Both report test accuracy along the way through `TestAccuracyMonitor`, which pauses the clock
while it evaluates, so the evaluations cost the training time nothing.
"""

import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
from keras import layers

from bench.common import PausableClock, progress
from digits.training.config import TrainingConfig
from digits.training.mnist import load_mnist
from digits.training.recipe import prepare_data, to_model_input, train, training_subset

REFERENCE = dict(epochs=15, batch_size=128, validation_split=0.1)
EVALUATION_BATCH = 1024


def benchmark_data(settings):
    """(the recipe's config for the settings, MNIST training arrays, test data)."""
    config = TrainingConfig()
    if settings["train_subset"]:
        config = config.scaled_to(settings["train_subset"])
    if settings.get("epochs"):
        config = replace(config, epochs=settings["epochs"])
    (x_train, y_train), (x_test, y_test) = load_mnist()
    test_subset = settings.get("test_subset")
    return config, (x_train, y_train), (x_test[:test_subset], y_test[:test_subset])


def train_both(settings, monitor_options=None):
    """The reference, then ours, on the same data, each watched by a TestAccuracyMonitor built
    with `monitor_options`; (reference Outcome, ours Outcome, our config, test image count)."""
    config, mnist_train, test = benchmark_data(settings)
    options = monitor_options or {}
    reference = train_reference(
        config,
        mnist_train,
        test,
        TestAccuracyMonitor(test, **options),
        epochs=settings["epochs"] or REFERENCE["epochs"],
    )
    ours = train_ours(config, mnist_train, test, TestAccuracyMonitor(test, **options))
    return reference, ours, config, len(test[0])


def test_accuracy(model, images, labels):
    """Share of `images` (uint8) that `model` classifies as `labels`."""
    probabilities = model.predict(to_model_input(images), batch_size=EVALUATION_BATCH, verbose=0)
    return float((np.argmax(probabilities, axis=1) == labels).mean())


class TestAccuracyMonitor(keras.callbacks.Callback):
    """Measure test accuracy during training, with the training clock paused while it does.

    With `checks_per_epoch` None it checks at the end of each epoch; otherwise that many times per
    epoch, evenly spaced in batches; with `test` None it only keeps the clock. With `stop_at`,
    training stops at the first check that reaches that accuracy. `points` holds (training
    seconds, epochs done, test accuracy). Benchmark-only: the product's training never looks at
    the test set.
    """

    __test__ = False  # a callback, not a test class, whatever its name says to pytest

    def __init__(self, test, checks_per_epoch=None, stop_at=None):
        super().__init__()
        self.label = ""  # set by the training that uses it, for the progress lines
        self.test = test
        self.checks_per_epoch = checks_per_epoch
        self.stop_at = stop_at
        self.clock = PausableClock()
        self.points = []
        self.reached = None  # the first point at or above stop_at
        self.seconds = None
        self._check_after = set()
        self._steps = 1
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.clock.start()
        steps = self.params.get("steps") or 1
        if self.test is not None and self.checks_per_epoch:
            count = min(self.checks_per_epoch, steps)
            self._check_after = {math.ceil(k * steps / count) for k in range(1, count + 1)}
        self._steps = steps

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 in self._check_after:
            self._check(self._epoch + (batch + 1) / self._steps)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.test is not None and not self.checks_per_epoch:
            self._check(epoch + 1)

    def on_train_end(self, logs=None):
        self.seconds = self.clock.elapsed()

    def _check(self, epochs_done):
        now = self.clock.elapsed()
        with self.clock.paused():
            accuracy = test_accuracy(self.model, *self.test)
        self.points.append((now, epochs_done, accuracy))
        progress(f"  {self.label}: {epochs_done:.2f} epochs, {now:.1f} s, test {accuracy:.2%}")
        if self.stop_at is not None and self.reached is None and accuracy >= self.stop_at:
            self.reached = (now, epochs_done, accuracy)
            self.model.stop_training = True


@dataclass
class Outcome:
    """One training run, as the benchmarks report it."""

    name: str
    seconds: float  # training wall time, test evaluations left out
    fit_seconds: float  # the same with the evaluations in
    epochs_run: int
    test_accuracy: float
    parameters: int
    dtype_policy: str
    points: list  # (seconds, epochs, test accuracy) from TestAccuracyMonitor
    reached: tuple | None
    details: dict = field(default_factory=dict)

    def to_json(self):
        return {
            "seconds": self.seconds,
            "fit_seconds": self.fit_seconds,
            "epochs_run": self.epochs_run,
            "test_accuracy": self.test_accuracy,
            "test_error": 1 - self.test_accuracy,
            "parameters": self.parameters,
            "dtype_policy": self.dtype_policy,
            "points": [{"seconds": s, "epochs": e, "test_accuracy": a} for s, e, a in self.points],
            "reached": (
                None
                if self.reached is None
                else dict(zip(("seconds", "epochs", "test_accuracy"), self.reached, strict=True))
            ),
            **self.details,
        }


def reference_model(num_classes=10, input_shape=(28, 28, 1)):
    """The Keras example's network, layer for layer."""
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )


def train_reference(config, mnist_train, test, monitor, epochs=REFERENCE["epochs"], verbose=0):
    """Train the Keras example as it is written, on the images `config` trains ours on (uint8,
    before ours carves out its validation set); an Outcome."""
    progress("training the reference (Keras example) ...")
    monitor.label = "reference"
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)  # the example does not seed; seeding changes nothing
    images, labels = training_subset(config, *mnist_train)
    x_train = to_model_input(images)
    y_train = keras.utils.to_categorical(labels, 10)
    model = reference_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=REFERENCE["batch_size"],
        epochs=epochs,
        validation_split=REFERENCE["validation_split"],
        callbacks=[monitor],
        verbose=verbose,
    )
    fit_seconds = time.perf_counter() - started
    return Outcome(
        name="reference",
        seconds=monitor.seconds,
        fit_seconds=fit_seconds,
        epochs_run=len(history.history["loss"]),
        test_accuracy=test_accuracy(model, *test),
        parameters=model.count_params(),
        dtype_policy="float32",
        points=monitor.points,
        reached=monitor.reached,
    )


def train_ours(config, mnist_train, test, monitor, model_path=None, verbose=0):
    """Train with the notebook's recipe and `config`, saving to `model_path` (None: a temporary
    file); test the model it saves."""
    progress("training ours (the notebook's recipe) ...")
    monitor.label = "ours"
    keras.backend.clear_session()
    prepared = prepare_data(config, *mnist_train)
    with tempfile.TemporaryDirectory(prefix="bench-model-") as folder:
        config = replace(config, model_path=model_path or Path(folder) / "model.h5")
        run = train(config, prepared, extra_callbacks=[monitor], verbose=verbose)
    return Outcome(
        name="ours",
        seconds=monitor.seconds,
        fit_seconds=run.seconds,
        epochs_run=run.epochs_run,
        test_accuracy=test_accuracy(run.model, *test),
        parameters=run.model.count_params(),
        dtype_policy=run.dtype_policy,
        points=monitor.points,
        reached=monitor.reached,
        details={
            "best_epoch": run.best_epoch,
            "temperature": run.temperature,
            "font_digits": prepared.font_digits,
            "training_images": len(prepared.fit[0]),
            "validation_images": len(prepared.validation[0]),
        },
    )
