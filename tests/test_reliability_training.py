"""Reliability of training: the checkpoint survives kill -9 at any moment, and runs reproduce.

Kill-safety: a trainer (this file run as a script) trains with digits.training.recipe.train on a
tiny random data set, so that epochs take milliseconds, and an extra BestModelCheckpoint saves after
every epoch (save_atomically, the same code path as the real checkpoint) to the same file as
train's own. It is killed with SIGKILL, restarted on the same path and killed again, KILLS
times: at seeded random moments, and at random moments inside a save (the test waits for the
save's partial file to appear). After every kill the model file is absent (first run, killed
before its first save) or whole: the numpy engine loads it and reads 10 probabilities; at the end
Keras loads it too. Partial files left by a kill are hidden, never named like the model.

Reproducibility: two runs of digits.training.recipe.train with the same seed, each in a fresh
process, on 2,000 MNIST images for 2 epochs, augmentation on as by default, agree bit for bit
(history and weights), in float32 and, where the CPU has bfloat16, mixed_bfloat16: the CPU kernels
and the sequential augmentation map are deterministic here.
"""

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
THIS = Path(__file__).resolve()
TIMEOUT_S = 120
KILLS = 10
KILL_SEED = 20240611
MODEL_NAME = "model.h5"


# --- the trainer (run as `python tests/test_reliability_training.py COMMAND ...`) ----------------


def tiny_data(seed: int = 0):
    """64 training and 32 validation random 'images' with labels: enough to train on, quickly."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (96, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 96).astype(np.uint8)
    return (images[:64], labels[:64]), (images[64:], labels[64:])


def train_until_killed(model_path: str) -> None:
    """Train for ever, saving after every epoch; "saving" and "saved" on stdout around each."""
    from digits.training.checkpoint import BestModelCheckpoint
    from digits.training.config import TrainingConfig
    from digits.training.model import build_model
    from digits.training.recipe import PreparedData, train

    class SaveEveryEpoch(BestModelCheckpoint):
        """The project's checkpoint, with every epoch counted as an improvement."""

        def on_epoch_end(self, epoch, logs=None):
            self.best = None
            print("saving", flush=True)
            super().on_epoch_end(epoch, logs)
            print("saved", flush=True)

    config = TrainingConfig(
        epochs=1_000_000,
        batch_size=32,
        patience=1_000_000,
        dtype_policy="float32",
        augment=False,
        model_path=model_path,
    )
    every_epoch = SaveEveryEpoch(model_path, export_model=build_model(), monitor="loss")
    train(config, PreparedData(*tiny_data(), font_digits=0), [every_epoch], verbose=0)


def train_and_report(data_path: str, dtype: str, augment: str, report_path: str) -> None:
    """One seeded training run; its history and weights go to report_path (.json, .npz)."""
    from digits.training.config import TrainingConfig
    from digits.training.recipe import PreparedData, train

    with np.load(data_path) as data:
        fit = (data["x_fit"], data["y_fit"])
        validation = (data["x_val"], data["y_val"])
    report = Path(report_path)
    config = TrainingConfig(
        epochs=2,
        seed=7,
        dtype_policy=dtype,
        augment=augment == "augment",
        model_path=report.with_suffix(".h5"),
    )
    run = train(config, PreparedData(fit, validation, font_digits=0), verbose=0)
    np.savez(report.with_suffix(".npz"), *run.model.get_weights())
    report.write_text(json.dumps(run.history))


COMMANDS = {"train-until-killed": train_until_killed, "train-and-report": train_and_report}


def trainer(*args: str) -> list[str]:
    return [sys.executable, str(THIS), *args]


def trainer_environment() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}


# --- kill -9 during training ---------------------------------------------------------------------


class Trainer:
    """A trainer process, and the lines it prints as they arrive."""

    def __init__(self, model: Path):
        self.process = subprocess.Popen(
            trainer("train-until-killed", str(model)),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=trainer_environment(),
            bufsize=0,
        )
        self.deadline = time.monotonic() + TIMEOUT_S
        self.unread = b""
        self.last_line = ""

    def wait_for(self, line: str) -> float:
        """Read lines until `line`; the time it arrived."""
        while True:
            while b"\n" in self.unread:
                text, self.unread = self.unread.split(b"\n", 1)
                self.last_line = text.decode()
                if self.last_line == line:
                    return time.monotonic()
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.process.stdout], [], [], left)[0]:
                self.kill()
                pytest.fail(f"the trainer did not print {line!r} within {TIMEOUT_S} s")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                pytest.fail(f"the trainer stopped (status {self.process.wait()})")
            self.unread += chunk

    def kill(self) -> str:
        """SIGKILL; the last line it printed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.unread += self.process.stdout.read()
        self.process.stdout.close()
        lines = self.unread.decode().splitlines()
        return lines[-1] if lines else self.last_line


def assert_model_reads(path: Path) -> None:
    from digits.reading.keras_file import Classifier

    images = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    probabilities = Classifier.load(path).probabilities(images)
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


@pytest.mark.slow
def test_the_checkpoint_survives_kill_9_at_any_moment(tmp_path):
    model = tmp_path / MODEL_NAME
    rng = random.Random(KILL_SEED)
    landed_in_a_save = 0
    for kill in range(KILLS):
        trainer_process = Trainer(model)
        if kill == 0:  # while it starts up: before its first save, or during it
            time.sleep(rng.uniform(0, 6))
        else:
            trainer_process.wait_for("saved")
            saving = trainer_process.wait_for("saving")
            saved = trainer_process.wait_for("saved")
            if kill % 2:  # anywhere in the next few epochs
                time.sleep(rng.uniform(0, 3 * (saved - saving)) + rng.uniform(0, 0.3))
            else:  # inside a save
                trainer_process.wait_for("saving")
                time.sleep(rng.uniform(0, saved - saving))
        landed_in_a_save += trainer_process.kill() == "saving"

        if model.exists() or kill > 0:
            assert_model_reads(model)
        leftovers = [path.name for path in tmp_path.iterdir() if path != model]
        assert all(name.startswith(".") and MODEL_NAME not in name for name in leftovers), leftovers

    assert landed_in_a_save >= 2, "too few kills landed inside a save to prove anything"
    import keras

    loaded = keras.models.load_model(model)
    probabilities = loaded.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
    assert probabilities.shape == (2, 10)


# --- reproducibility -----------------------------------------------------------------------------


@pytest.fixture
def small_mnist(mnist, tmp_path) -> Path:
    """2,000 MNIST training images and 500 for validation, in a file for the trainer."""
    from digits.training.config import TrainingConfig
    from digits.training.recipe import prepare_data

    (x_train, y_train), _ = mnist
    config = TrainingConfig(train_subset=2500, validation_size=500, seed=0)
    prepared = prepare_data(config, x_train, y_train)
    (x_fit, y_fit), (x_val, y_val) = prepared.fit, prepared.validation
    path = tmp_path / "data.npz"
    np.savez(path, x_fit=x_fit, y_fit=y_fit, x_val=x_val, y_val=y_val)
    return path


def seeded_run(data: Path, dtype: str, augment: bool, name: str) -> tuple[dict, list]:
    """digits.training.recipe.train in a fresh process: (history, weights)."""
    report = data.parent / f"{name}.json"
    flag = "augment" if augment else "plain"
    subprocess.run(
        trainer("train-and-report", str(data), dtype, flag, str(report)),
        env=trainer_environment(),
        check=True,
        timeout=TIMEOUT_S * 3,
        stdout=subprocess.DEVNULL,
    )
    with np.load(report.with_suffix(".npz")) as weights:
        return json.loads(report.read_text()), [weights[key] for key in weights.files]


def assert_two_runs_identical(data: Path, dtype: str, augment: bool) -> None:
    first_history, first_weights = seeded_run(data, dtype, augment, "first")
    second_history, second_weights = seeded_run(data, dtype, augment, "second")
    assert first_history == second_history  # every metric of every epoch, bit for bit
    assert len(first_weights) == len(second_weights) > 0
    for first, second in zip(first_weights, second_weights, strict=True):
        np.testing.assert_array_equal(first, second)


DTYPES = ["float32", "mixed_bfloat16"]


@pytest.mark.slow
@pytest.mark.mnist
@pytest.mark.parametrize("dtype", DTYPES)
def test_default_training_reproduces_bit_for_bit(small_mnist, dtype):
    from digits.training.recipe import fastest_dtype_policy

    if dtype != "float32" and fastest_dtype_policy() != dtype:
        pytest.skip(f"this CPU has no native bfloat16, so train() would not use {dtype}")
    assert_two_runs_identical(small_mnist, dtype, augment=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    COMMANDS[sys.argv[1]](*sys.argv[2:])
