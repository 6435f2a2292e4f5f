"""The one training recipe, from MNIST arrays to a calibrated `bestmodel.h5`.

    prepared = prepare_data(config, x_train, y_train)   # subset, validation split, font digits
    run = train(config, prepared)                       # build, compile, fit, checkpoint, calibrate

The notebook shows this code and calls it; the benchmarks and the tests call the same functions
with the same `TrainingConfig`, so they train exactly what the notebook trains.
"""

import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from digits.cpu import has_bfloat16
from digits.training.checkpoint import BestModelCheckpoint, LearningRateLogger, save_atomically
from digits.training.config import TrainingConfig
from digits.training.model import NUM_CLASSES, build_model

VALIDATION_BATCH = 1024  # inference only: larger batches are cheaper per image


def to_model_input(images):
    """uint8 (N, 28, 28) → float32 (N, 28, 28, 1) in [0, 1], the model's input."""
    return (np.asarray(images, dtype=np.float32) / 255.0)[..., np.newaxis]


@dataclass
class PreparedData:
    """What training sees: the images it fits and the validation set that picks the epoch."""

    fit: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    font_digits: int  # how many of the fit images are printed digits rendered from fonts


def training_subset(config: TrainingConfig, images, labels):
    """The seeded random subset of `config.train_subset` training images (all when None)."""
    if not config.train_subset:
        return images, labels
    rng = np.random.default_rng(config.seed)
    keep = rng.choice(len(images), config.train_subset, replace=False)
    return images[keep], labels[keep]


def prepare_data(config: TrainingConfig, images, labels) -> PreparedData:
    """The training images as the recipe uses them: the subset, a seeded validation set carved
    out of it, then rendered font digits mixed into the rest."""
    images, labels = training_subset(config, images, labels)
    order = np.random.default_rng(config.seed).permutation(len(images))
    held_out, kept = order[: config.validation_size], order[config.validation_size :]
    x_fit, y_fit = images[kept], labels[kept]
    if config.font_digits:
        from digits.synthetic.glyphs import font_digits

        x_font, y_font = font_digits(config.font_digits, seed=config.seed)
        x_fit, y_fit = np.concatenate([x_fit, x_font]), np.concatenate([y_fit, y_font])
    return PreparedData((x_fit, y_fit), (images[held_out], labels[held_out]), config.font_digits)


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


def make_datasets(config: TrainingConfig, prepared: PreparedData):
    """tf.data pipelines: shuffled, augmented training batches and plain validation batches."""
    x_fit, y_fit = prepared.fit
    training = tf.data.Dataset.from_tensor_slices((to_model_input(x_fit), y_fit))
    training = training.shuffle(len(x_fit), seed=config.seed).batch(config.batch_size)
    if config.augment:
        augmenter = augmentation(config.seed)
        # One map call at a time: the random layers share one seed generator, so parallel calls
        # would draw their randomness in a racy order and seeded runs would differ. A batch takes
        # a few milliseconds, overlapped with training by the prefetch below.
        training = training.map(lambda x, y: (augmenter(x, training=True), y))
    x_val, y_val = prepared.validation
    validating = tf.data.Dataset.from_tensor_slices((to_model_input(x_val), y_val))
    return (
        training.prefetch(tf.data.AUTOTUNE),
        validating.batch(VALIDATION_BATCH).prefetch(tf.data.AUTOTUNE),
    )


def fastest_dtype_policy():
    """ "mixed_bfloat16" where the CPU has bfloat16 instructions (AVX512_BF16, AMX), else "float32".

    Elsewhere bfloat16 would be emulated and slower, so we only switch where the instructions are.
    """
    return "mixed_bfloat16" if has_bfloat16() else "float32"


def smoothed_crossentropy(label_smoothing):
    """Cross-entropy against label-smoothed targets, for integer labels.

    Softer targets keep the network from chasing certainty on every training digit: in our runs the
    last epochs were steadier and the test error lower. Keras's sparse loss cannot smooth, hence
    this one.
    """

    def loss(labels, probabilities):
        labels = keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32")
        targets = keras.ops.one_hot(labels, NUM_CLASSES)
        return keras.losses.categorical_crossentropy(
            targets, probabilities, label_smoothing=label_smoothing
        )

    return loss


def compile_for_training(model, config: TrainingConfig, steps_per_epoch):
    """Adam with a one-cycle-like schedule: one epoch of warm-up, then cosine decay to ~0."""
    warmup_steps = steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.peak_learning_rate / 10,
        warmup_target=config.peak_learning_rate,
        warmup_steps=warmup_steps,
        decay_steps=max(1, steps_per_epoch * config.epochs - warmup_steps),
        alpha=0.01,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=smoothed_crossentropy(config.label_smoothing),
        metrics=["accuracy"],
    )


def calibrate_confidence(model, validation):
    """Fit a temperature on the validation set and build it into `model`; return it.

    Label smoothing leaves the network at about 92% on digits it reads perfectly well. Dividing
    its logits by a temperature below 1 — the one that minimises the validation log-loss (Guo et
    al., 2017) — makes the confidences mean what they say again, without changing any prediction.
    The final layer is a dense softmax, so dividing its weights divides the logits.
    """
    images, labels = validation
    probabilities = model.predict(to_model_input(images), batch_size=VALIDATION_BATCH, verbose=0)
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
    return float(temperature)


@dataclass
class TrainingRun:
    model: keras.Model  # float32, best validation epoch, calibrated: exactly what the file holds
    history: dict
    seconds: float  # fit and calibration, wall time
    epochs_run: int
    best_epoch: int
    temperature: float
    dtype_policy: str


def train(config: TrainingConfig, prepared: PreparedData, extra_callbacks=(), verbose="auto"):
    """Build, compile and fit the model; save the best validation epoch to `config.model_path`,
    calibrated; return the run's record, whose model is exactly the one saved.

    The file is written atomically after every improving epoch (a kill leaves the last best
    epoch, uncalibrated) and once more after calibration. Seeded: the same config and data give
    the same weights on the same machine.
    """
    keras.utils.set_random_seed(config.seed)
    dtype_policy = config.dtype_policy or fastest_dtype_policy()
    model = build_model(config.dropout, dtype=dtype_policy)
    saved = build_model(config.dropout)  # the float32 twin that receives the best weights
    training, validating = make_datasets(config, prepared)
    compile_for_training(model, config, steps_per_epoch=len(training))
    checkpoint = BestModelCheckpoint(config.model_path, export_model=saved)
    # Both the checkpoint and early stopping select on validation accuracy; the test set plays
    # no part in training.
    early_stopping = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience)
    started = time.perf_counter()
    history = model.fit(
        training,
        validation_data=validating,
        epochs=config.epochs,
        callbacks=[LearningRateLogger(), checkpoint, early_stopping, *extra_callbacks],
        shuffle=False,  # the dataset shuffles itself, seeded
        verbose=verbose,
    )
    temperature = calibrate_confidence(saved, prepared.validation)
    save_atomically(saved, config.model_path)
    return TrainingRun(
        model=saved,
        history=history.history,
        seconds=time.perf_counter() - started,
        epochs_run=len(history.history["loss"]),
        best_epoch=checkpoint.best_epoch,
        temperature=temperature,
        dtype_policy=dtype_policy,
    )
