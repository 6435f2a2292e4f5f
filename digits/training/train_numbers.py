"""Train the string model on numbers composed from MNIST training digits; write stringmodel.h5.

    python -m digits.training.train_numbers             # the full run: under 10 min on 2 cores
    python -m digits.training.train_numbers --dry-run   # a tiny run, to check that it all works

Steps: split MNIST's training digits as the digit recipe does (`recipe.prepare_data`: the same
validation digits); compose numbers from each part in worker processes and turn them into lines
with `to_line`, exactly as reading does; train with CTC in batches of similar widths, while a
background process composes fresh numbers that replace the oldest between epochs; keep the epoch
with the best exact-match rate on the validation numbers; fit one temperature on them and build
it into the saved float32 model. MNIST's test digits are never read. The run's record goes to
bench/results/number_training.json.
"""

import argparse
import datetime
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from scipy.optimize import minimize_scalar

from digits.cpu import machine
from digits.files import write_atomic
from digits.paths import DEFAULT_STRING_MODEL, REPOSITORY, recorded_path
from digits.reading.ctc import greedy_labels
from digits.training.checkpoint import BestModelCheckpoint, LearningRateLogger, save_atomically
from digits.training.config import TrainingConfig
from digits.training.mnist import load_mnist
from digits.training.number_model import build_model, ctc_loss
from digits.training.number_stream import (
    TrainingLines,
    batches,
    composed_lines,
    composer,
    training_dataset,
)
from digits.training.recipe import fastest_dtype_policy, prepare_data

RESULTS = REPOSITORY / "bench" / "results"
DEFAULT_RECORD = RESULTS / "number_training.json"
VALIDATION_BATCH = 256  # inference only: larger batches are cheaper per line
# What --dry-run changes: a few seconds of everything the full run does.
DRY_RUN = dict(numbers=512, fresh=128, validation_numbers=128, epochs=1)
# Seed streams, so that validation, the first pool and the fresh lines never share numbers.
VALIDATION_STREAM, POOL_STREAM, FRESH_STREAM = 2, 1, 0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m digits.training.train_numbers", description=__doc__.split("\n\n")[0]
    )
    option = parser.add_argument
    option("--output", type=Path, help="model file (default: stringmodel.h5 in the repository)")
    option(
        "--record",
        type=Path,
        help="the run's JSON record (default: bench/results/number_training.json)",
    )
    option(
        "--numbers", type=int, default=40_000, help="lines made before training (default: 40000)"
    )
    option("--fresh", type=int, default=12_288, help="lines replaced every epoch (default: 12288)")
    option("--validation-numbers", type=int, default=3000, help="validation lines (default: 3000)")
    # At about 55 s an epoch on 2 cores, the time limit ends the 10th early (on the committed run,
    # in the 9th); that still read more validation numbers than 8 whole epochs did (95.17 % and
    # 94.73 %).
    option("--epochs", type=int, default=10, help="passes over the training pool (default: 10)")
    option("--batch-size", type=int, default=64, help="lines per training step (default: 64)")
    option("--learning-rate", type=float, default=3e-3, help="peak learning rate (default: 0.003)")
    option("--workers", type=int, default=2, help="processes composing lines up front (default: 2)")
    option("--seed", type=int, default=42, help="seeds the split, lines, training (default: 42)")
    option(
        "--time-limit",
        type=float,
        default=560,
        help="seconds from the start after which training stops; validating, saving and "
        "calibrating take 10–20 s more, so a busy machine cuts the schedule short, not the "
        "budget (default: 560)",
    )
    option(
        "--dry-run",
        action="store_true",
        help="tiny run: "
        + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in DRY_RUN.items())
        + "; writes the model and record to a new temporary folder unless given, never over "
        "the committed ones",
    )
    args = parser.parse_args(argv)
    if args.dry_run:
        vars(args).update(DRY_RUN)
        committed = {DEFAULT_STRING_MODEL.resolve(), DEFAULT_RECORD.resolve()}
        if {path.resolve() for path in (args.output, args.record) if path} & committed:
            parser.error("--dry-run never writes over the committed model or record")
        folder = Path(tempfile.mkdtemp(prefix="train-numbers-dry-run-"))
        args.output = args.output or folder / DEFAULT_STRING_MODEL.name
        args.record = args.record or folder / DEFAULT_RECORD.name
    args.output = args.output or DEFAULT_STRING_MODEL
    args.record = args.record or DEFAULT_RECORD
    return args


# --- reading the validation lines -----------------------------------------------------------


def predicted_frames(model, validation_batches):
    """(frames (n, T, 11), targets) for each batch: the model's outputs on its lines."""
    for x, targets in validation_batches:
        yield np.asarray(model.predict_on_batch(x), np.float64)[:, 0], targets


def exact_match(frames_and_targets) -> float:
    """Share of lines whose greedy reading is their number, from `predicted_frames`."""
    right = total = 0
    for frames, targets in frames_and_targets:
        for line_frames, target in zip(frames, targets, strict=True):
            digits = [int(d) for d in target[2 : 2 + target[1]]]
            right += greedy_labels(line_frames[: target[0]]) == digits
            total += 1
    return right / total


class ExactMatch(keras.callbacks.Callback):
    """Adds `val_exact` to each epoch's logs: the share of validation numbers read exactly."""

    def __init__(self, validation_batches):
        super().__init__()
        self.validation_batches = validation_batches

    def on_epoch_end(self, epoch, logs=None):
        logs["val_exact"] = exact_match(predicted_frames(self.model, self.validation_batches))


class TimeLimit(keras.callbacks.Callback):
    """Stops training at the first step that ends past `deadline` (a time.perf_counter() value),
    so that a run slowed down by a busy machine still saves in time. The epoch cut short is
    validated as usual and the checkpoint keeps the best epoch."""

    def __init__(self, deadline: float):
        super().__init__()
        self.deadline = deadline
        self.stopped_training = False

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() > self.deadline:
            self.model.stop_training = self.stopped_training = True


# --- calibration ----------------------------------------------------------------------------


def fit_temperature(frames_and_targets) -> float:
    """The temperature that minimises the mean CTC loss of the validation numbers.

    As the digit model's minimises its validation log-loss: then the probability of a whole
    reading means what it says. Frames past a line's own end are padding the loss ignores.
    """
    frames_and_targets = list(frames_and_targets)
    targets = np.concatenate([t for _, t in frames_and_targets])
    widest = max(frames.shape[1] for frames, _ in frames_and_targets)
    logits = np.zeros((len(targets), 1, widest, frames_and_targets[0][0].shape[2]), np.float32)
    row = 0
    for frames, batch_targets in frames_and_targets:
        # Up to a per-frame constant, log-probabilities are the logits.
        logits[row : row + len(batch_targets), 0, : frames.shape[1]] = np.log(
            np.maximum(frames, 1e-30)
        )
        row += len(batch_targets)

    def mean_loss(log_temperature):
        return float(np.mean(ctc_loss(targets, logits / np.exp(log_temperature))))

    # One CTC loss over all the validation numbers takes about half a second: a bounded scalar
    # search needs a dozen where a fine grid would need a hundred.
    best = minimize_scalar(mean_loss, bounds=(np.log(0.25), np.log(4.0)), method="bounded")
    return float(np.exp(best.x))


def build_in_temperature(model, temperature: float) -> None:
    """Divide the final Dense layer's weights and bias, hence the logits, by `temperature`; no
    frame's arg-max changes, so no reading does."""
    output = model.layers[-1]
    output.set_weights([weights / temperature for weights in output.get_weights()])


# --- the run --------------------------------------------------------------------------------


def training_and_validation_lines(args):
    """The validation lines and the training lines (pool and background composer), composed
    from MNIST's training digits only, split as the digit recipe splits them."""
    (images, labels), _ = load_mnist()  # the test split is never used here
    prepared = prepare_data(TrainingConfig(seed=args.seed), images, labels)
    with composer(*prepared.validation, args.workers) as pool:
        seeds = [(args.seed, VALIDATION_STREAM, k) for k in range(args.workers)]
        validation = composed_lines(pool, args.validation_numbers, seeds)
    # Forked now, while TensorFlow is still idle; it composes during training.
    background = composer(*prepared.fit, 1)
    with composer(*prepared.fit, args.workers) as pool:
        seeds = [(args.seed, POOL_STREAM, k) for k in range(args.workers)]
        lines, targets = composed_lines(pool, args.numbers, seeds)
    training = TrainingLines(lines, targets, background, args.fresh, (args.seed, FRESH_STREAM))
    return list(batches(*validation, VALIDATION_BATCH)), training


def compile_model(model, steps_per_epoch: int, epochs: int, peak_learning_rate: float):
    """Adam with half an epoch of warm-up, then cosine decay to ~0 (like the digit recipe's)."""
    warmup = max(1, steps_per_epoch // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak_learning_rate / 10,
        warmup_target=peak_learning_rate,
        warmup_steps=warmup,
        decay_steps=max(1, steps_per_epoch * epochs - warmup),
        alpha=0.01,
    )
    # clipnorm: CTC gradients spike on the odd impossible-looking line early in training.
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=5.0), loss=ctc_loss)


def train(args, started: float) -> dict:
    """The whole run from `started` (a time.perf_counter() value); returns its results."""
    validation_batches, training_lines = training_and_validation_lines(args)
    composed = time.perf_counter() - started
    keras.utils.set_random_seed(args.seed)
    dtype_policy = fastest_dtype_policy()
    model = build_model(dtype=dtype_policy, softmax=False)
    saved = build_model(softmax=True)  # the float32 twin that receives the best weights
    steps = -(-len(training_lines.lines) // args.batch_size)
    compile_model(model, steps, args.epochs, args.learning_rate)
    checkpoint = BestModelCheckpoint(args.output, export_model=saved, monitor="val_exact")
    time_limit = TimeLimit(started + args.time_limit)
    try:
        history = model.fit(
            training_dataset(training_lines, args.batch_size, args.seed),
            epochs=args.epochs,
            callbacks=[
                LearningRateLogger(),
                ExactMatch(validation_batches),
                checkpoint,
                time_limit,
            ],
            shuffle=False,  # the dataset regroups and shuffles its batches itself
            verbose=2,
        )
    finally:
        training_lines.background.terminate()
    frames = list(predicted_frames(saved, validation_batches))
    temperature = fit_temperature(frames)
    build_in_temperature(saved, temperature)
    save_atomically(saved, args.output)
    return {
        # From main()'s start, once Python and TensorFlow are imported (about 4 s), to the file.
        "seconds": round(time.perf_counter() - started, 1),
        "seconds_composing_before_training": round(composed, 1),
        "epochs_run": len(history.history["loss"]),
        "stopped_by_time_limit": time_limit.stopped_training,
        "best_epoch": checkpoint.best_epoch,
        "validation_exact": exact_match(frames),  # the saved float32 model's own reading
        "validation_numbers": sum(len(targets) for _, targets in validation_batches),
        "distinct_training_numbers": args.numbers + args.fresh * (len(history.history["loss"]) - 1),
        "temperature": temperature,
        "dtype_policy": dtype_policy,
        "parameters": saved.count_params(),
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
    }


def run_record(args, argv, results: dict) -> dict:
    """The JSON record of a run: the command, where it ran, its settings, what it made."""
    settings = {key: value for key, value in vars(args).items() if key not in ("output", "record")}
    return {
        "command": " ".join(["python -m digits.training.train_numbers", *argv]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": {
            "python": sys.version.split()[0],
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "settings": settings,
        "results": results,
        "model": {
            "path": recorded_path(args.output),
            "sha256": hashlib.sha256(args.output.read_bytes()).hexdigest(),
            "bytes": args.output.stat().st_size,
        },
    }


def main(argv=None) -> dict:
    """Train, write the model and the record; return the record."""
    started = time.perf_counter()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    results = train(args, started)
    record = run_record(args, argv, results)
    write_atomic(args.record, (json.dumps(record, indent=2) + "\n").encode())
    print(
        f"saved {recorded_path(args.output)} after {results['seconds']} s: "
        f"{results['epochs_run']} epochs (best {results['best_epoch']}), validation exact "
        f"{results['validation_exact']:.2%}, temperature {results['temperature']:.3f}; "
        f"record in {recorded_path(args.record)}"
    )
    return record


if __name__ == "__main__":
    main()
