"""Everything between the MNIST arrays and a trained `bestmodel.h5`, shared by the notebook,
the benchmarks and the tests: scaling, the validation split, augmentation, the loss, the optimiser
and its schedule, the calibration of the confidences, and one `train()` that ties them together.
"""

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from digits.model import (
    NUM_CLASSES,
    BestModelCheckpoint,
    LearningRateLogger,
    build_model,
    save_atomically,
)


def to_model_input(images):
    """uint8 (N, 28, 28) → float32 (N, 28, 28, 1) in [0, 1], the model's input."""
    return (np.asarray(images, dtype=np.float32) / 255.0)[..., np.newaxis]


def split_validation(images, labels, size, seed):
    """Carve a random, seeded validation set of `size` examples out of the training set."""
    order = np.random.default_rng(seed).permutation(len(images))
    held_out, kept = order[:size], order[size:]
    return (images[kept], labels[kept]), (images[held_out], labels[held_out])


def augmentation(seed):
    """Small rotations, shifts and zooms: real users' digits are not centred MNIST samples."""
    return keras.Sequential(
        [
            # 0.03 of a full turn is about ±11 degrees, the slant range of ordinary handwriting.
            keras.layers.RandomRotation(0.03, fill_mode="constant", seed=seed),
            keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 1),
            keras.layers.RandomZoom((-0.1, 0.1), fill_mode="constant", seed=seed + 2),
        ],
        name="augmentation",
    )


def make_datasets(train, validation, batch_size, seed, augment=True):
    """tf.data pipelines: shuffled, augmented training batches and plain validation batches."""
    x_train, y_train = train
    training = tf.data.Dataset.from_tensor_slices((to_model_input(x_train), y_train))
    training = training.shuffle(len(x_train), seed=seed).batch(batch_size)
    if augment:
        augmenter = augmentation(seed)
        # One map call at a time: the random layers share one seed generator, so parallel calls
        # would draw their randomness in a racy order and seeded runs would differ. A batch takes
        # a few milliseconds, overlapped with training by the prefetch below.
        training = training.map(lambda x, y: (augmenter(x, training=True), y))
    x_val, y_val = validation
    validating = tf.data.Dataset.from_tensor_slices((to_model_input(x_val), y_val))
    return (
        training.prefetch(tf.data.AUTOTUNE),
        validating.batch(1024).prefetch(tf.data.AUTOTUNE),
    )


def fastest_dtype_policy():
    """"mixed_bfloat16" where the CPU has bfloat16 instructions (AVX512_BF16, AMX), else "float32".

    On such CPUs bfloat16 convolutions run about a quarter faster; elsewhere they would be emulated
    and slower, so we only switch where the instructions are there.
    """
    if platform.system() != "Linux":
        return "float32"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
    except OSError:
        return "float32"
    return "mixed_bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


# The target is 0.91 for the label and 0.01 for every other class instead of 1 and 0.
LABEL_SMOOTHING = 0.1


def smoothed_crossentropy(labels, probabilities):
    """Cross-entropy against label-smoothed targets, for integer labels.

    Softer targets keep the network from chasing certainty on every training digit: in our runs the
    last epochs were steadier and the test error lower. Keras's sparse loss cannot smooth, hence
    this one.
    """
    labels = keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32")
    return keras.losses.categorical_crossentropy(
        keras.ops.one_hot(labels, NUM_CLASSES), probabilities, label_smoothing=LABEL_SMOOTHING
    )


def compile_for_training(model, steps_per_epoch, epochs, peak_learning_rate=2e-3):
    """Adam with a one-cycle-like schedule: one epoch of warm-up, then cosine decay to ~0."""
    warmup_steps = steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak_learning_rate / 10,
        warmup_target=peak_learning_rate,
        warmup_steps=warmup_steps,
        decay_steps=max(1, steps_per_epoch * epochs - warmup_steps),
        alpha=0.01,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=smoothed_crossentropy,
        metrics=["accuracy"],
    )


def training_callbacks(model_path, patience, export_model=None):
    """Early stopping, the kill-safe best-epoch checkpoint and learning-rate logging.

    Both the checkpoint and early stopping select on validation accuracy; the test set plays no
    part in training.
    """
    return [
        LearningRateLogger(),
        BestModelCheckpoint(model_path, monitor="val_accuracy", export_model=export_model),
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy", patience=patience, restore_best_weights=True
        ),
    ]


def calibrate_confidence(model_path, validation):
    """Fit a temperature on the validation set and build it into the saved model; return it.

    Label smoothing leaves the network at about 92% on digits it reads perfectly well. Dividing
    its logits by a temperature below 1 — the one that minimises the validation log-loss (Guo et
    al., 2017) — makes the confidences mean what they say again, without changing any prediction.
    The final layer is a dense softmax, so dividing its weights divides the logits.
    """
    model = keras.models.load_model(model_path, compile=False)
    images, labels = validation
    probabilities = model.predict(to_model_input(images), batch_size=1024, verbose=0)
    # Up to a per-row constant, log-probabilities are the logits.
    logits = np.log(np.maximum(probabilities.astype(np.float64), 1e-30))

    def log_loss(temperature):
        scaled = logits / temperature
        scaled -= scaled.max(axis=1, keepdims=True)
        log_normaliser = np.log(np.exp(scaled).sum(axis=1))
        return float((log_normaliser - scaled[np.arange(len(labels)), labels]).mean())

    temperature = min(np.geomspace(0.05, 2.0, 300), key=log_loss)
    output = model.layers[-1]
    output.set_weights([weights / temperature for weights in output.get_weights()])
    save_atomically(model, model_path)
    return float(temperature)


@dataclass
class TrainingRun:
    model: keras.Model
    history: dict
    seconds: float
    epochs_run: int
    best_epoch: int
    temperature: float


def train(
    train_data,
    validation_data,
    model_path,
    *,
    epochs,
    batch_size=128,
    patience=5,
    seed=42,
    dtype=None,
    augment=True,
    extra_callbacks=(),
    verbose="auto",
):
    """Build, compile and fit the model exactly as the notebook does; return the run's record.

    The best validation epoch is written (atomically) to `model_path` as a float32 model, whose
    confidences are calibrated once training ends. The returned model is the trained
    one, uncalibrated (the calibration changes no prediction).
    """
    keras.utils.set_random_seed(seed)
    dtype = dtype or fastest_dtype_policy()
    model = build_model(dtype=dtype)
    export_model = build_model() if dtype != "float32" else None
    training, validating = make_datasets(train_data, validation_data, batch_size, seed, augment)
    compile_for_training(model, steps_per_epoch=len(training), epochs=epochs)
    callbacks = training_callbacks(Path(model_path), patience, export_model)
    started = time.perf_counter()
    history = model.fit(
        training,
        validation_data=validating,
        epochs=epochs,
        callbacks=[*callbacks, *extra_callbacks],
        shuffle=False,  # the dataset shuffles itself, seeded
        verbose=verbose,
    )
    temperature = calibrate_confidence(model_path, validation_data)
    seconds = time.perf_counter() - started
    checkpoint = callbacks[1]
    return TrainingRun(
        model=model,
        history=history.history,
        seconds=seconds,
        epochs_run=len(history.history["loss"]),
        best_epoch=checkpoint.best_epoch,
        temperature=temperature,
    )
