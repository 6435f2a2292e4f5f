"""The string model's training: a dry run end to end from MNIST's training digits only, and the
saved models read by the numpy engine exactly as Keras computes them."""

import json

import keras
import numpy as np
import pytest

from digits.paths import DEFAULT_STRING_MODEL
from digits.reading.ctc import greedy_labels
from digits.reading.keras_file import STRING_MODEL, load_network
from digits.reading.mnist_style import FIELD, MAX_LINE_WIDTH
from digits.training import train_numbers
from digits.training.checkpoint import save_atomically
from digits.training.config import TrainingConfig
from digits.training.number_lines import number_lines
from digits.training.number_model import FRAME_STRIDE, NUM_CLASSES, build_model
from digits.training.recipe import prepare_data


class Untouchable:
    """Stands in for MNIST's test arrays: any use of it fails the run, and is noted."""

    def __init__(self, touched):
        object.__setattr__(self, "touched", touched)

    def _refuse(self, *args, **kwargs):
        self.touched.append(True)
        raise AssertionError("training read MNIST's test digits")

    __getattr__ = __setattr__ = __getitem__ = __len__ = __iter__ = __array__ = _refuse
    __bool__ = __eq__ = _refuse


@pytest.mark.mnist
@pytest.mark.slow
def test_a_dry_run_trains_from_training_digits_only_and_saves_a_model_the_engine_reads(
    mnist, monkeypatch, tmp_path
):
    (x_train, y_train), _ = mnist
    touched = []
    untouchable = Untouchable(touched)
    monkeypatch.setattr(
        train_numbers,
        "load_mnist",
        lambda: ((x_train, y_train), (untouchable, untouchable)),
    )
    model, record = tmp_path / "tiny.h5", tmp_path / "tiny.json"
    written = train_numbers.main(["--dry-run", "--output", str(model), "--record", str(record)])
    assert not touched
    assert json.loads(record.read_text()) == written
    results = written["results"]
    assert results["epochs_run"] == results["best_epoch"] == 1
    assert results["validation_numbers"] == train_numbers.DRY_RUN["validation_numbers"]
    assert 0 <= results["validation_exact"] <= 1 and results["temperature"] > 0
    assert written["model"]["path"] == f"(outside the repository)/{model.name}"
    frames = load_network(model, STRING_MODEL)(np.zeros((1, FIELD, 40, 1), np.float32))
    assert frames.shape == (1, 1, 40 // FRAME_STRIDE, NUM_CLASSES)
    np.testing.assert_allclose(frames.sum(axis=-1), 1, atol=1e-5)


def test_a_dry_run_never_writes_over_the_committed_model():
    with pytest.raises(SystemExit):
        train_numbers.parse_args(["--dry-run", "--output", str(DEFAULT_STRING_MODEL)])
    args = train_numbers.parse_args(["--dry-run"])
    assert args.output != DEFAULT_STRING_MODEL and args.record != train_numbers.DEFAULT_RECORD


def random_statistics(model, seed=0):
    """Random batch-normalisation parameters (negative scales too), as training would leave."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.normal(0, 1, gamma.shape),
                    rng.normal(0, 0.5, beta.shape),
                    rng.normal(0, 0.5, mean.shape),
                    rng.uniform(0.5, 2, variance.shape),
                ]
            )
    return model


def assert_engine_matches_keras(path, model, rng):
    network = load_network(path, STRING_MODEL)
    for width in (12, 44, 100, MAX_LINE_WIDTH):
        lines = rng.random((2, FIELD, width, 1)).astype(np.float32)
        expected = np.asarray(model.predict_on_batch(lines))
        frames = network(lines)
        assert frames.shape == (2, 1, width // FRAME_STRIDE, NUM_CLASSES)
        np.testing.assert_allclose(frames, expected, atol=1e-4)


def test_a_string_model_saved_by_our_code_runs_on_the_engine_as_in_keras(tmp_path):
    model = random_statistics(build_model())
    path = tmp_path / "stringmodel.h5"
    save_atomically(model, path)
    assert_engine_matches_keras(path, model, np.random.default_rng(2))


@pytest.fixture(scope="module")
def committed_string_model():
    if not DEFAULT_STRING_MODEL.is_file():
        pytest.fail(f"{DEFAULT_STRING_MODEL} is missing: train it with the README's command")
    return DEFAULT_STRING_MODEL


def test_the_committed_string_model_runs_on_the_engine_as_in_keras(committed_string_model):
    model = keras.models.load_model(committed_string_model, compile=False)
    assert_engine_matches_keras(committed_string_model, model, np.random.default_rng(3))


@pytest.mark.mnist
def test_the_committed_string_model_reads_validation_numbers(committed_string_model, mnist):
    (x_train, y_train), _ = mnist
    validation = prepare_data(TrainingConfig(), x_train, y_train).validation
    lines, targets = number_lines(*validation, 60, seed=(7, 7))
    network = load_network(committed_string_model, STRING_MODEL)
    right = 0
    for line, target in zip(lines, targets, strict=True):
        (frames,) = network(line.astype(np.float32)[None, ..., None])[:, 0]
        right += greedy_labels(frames) == list(target[2 : 2 + target[1]])
    assert right >= 0.85 * len(lines)
