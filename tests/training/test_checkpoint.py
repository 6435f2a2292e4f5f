"""The atomic save and the best-epoch checkpoint."""

from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from digits.reading.keras_file import Classifier
from digits.training.checkpoint import BestModelCheckpoint, save_atomically
from digits.training.config import TrainingConfig
from digits.training.model import build_model
from digits.training.recipe import compile_for_training


def tiny_model():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def test_save_atomically_replaces_the_file_with_a_loadable_model(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"an older file")
    save_atomically(tiny_model(), path)
    assert h5py.is_hdf5(path)
    assert Classifier.load(path).probabilities(np.zeros((1, 28, 28))).shape == (1, 10)
    assert [p.name for p in tmp_path.iterdir()] == ["model.h5"]


def test_a_saved_model_loads_without_its_training_configuration(tmp_path):
    model = tiny_model()
    compile_for_training(model, TrainingConfig(epochs=1), steps_per_epoch=1)
    save_atomically(model, tmp_path / "model.h5")
    # Keras's HDF5 loader cannot resolve our own loss function, so none may be stored.
    with h5py.File(tmp_path / "model.h5") as saved:
        assert "training_config" not in saved.attrs
    assert keras.models.load_model(tmp_path / "model.h5").output_shape == (None, 10)


def test_a_save_interrupted_part_way_leaves_the_previous_model(tmp_path, monkeypatch):
    path = tmp_path / "model.h5"
    save_atomically(tiny_model(), path)
    before = path.read_bytes()

    def save_half_then_die(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(before[: len(before) // 2])
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(keras.Model, "save", save_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_atomically(tiny_model(), path)
    assert path.read_bytes() == before
    assert Classifier.load(path).probabilities(np.zeros((1, 28, 28))).shape == (1, 10)
    assert [p.name for p in tmp_path.iterdir()] == ["model.h5"]


def test_checkpoint_saves_only_improving_epochs(tmp_path):
    path = tmp_path / "best.h5"
    checkpoint = BestModelCheckpoint(path, export_model=tiny_model())
    checkpoint.set_model(tiny_model())
    checkpoint.on_epoch_end(0, {"val_accuracy": 0.5})
    first = path.stat().st_mtime_ns
    checkpoint.on_epoch_end(1, {"val_accuracy": 0.4})
    assert path.stat().st_mtime_ns == first
    checkpoint.on_epoch_end(2, {"val_accuracy": 0.6})
    assert (checkpoint.best, checkpoint.best_epoch) == (0.6, 3)


def test_checkpoint_of_mixed_precision_training_is_a_float32_model(tmp_path):
    trained = build_model(dtype="mixed_bfloat16")
    checkpoint = BestModelCheckpoint(tmp_path / "best.h5", export_model=build_model())
    checkpoint.set_model(trained)
    checkpoint.on_epoch_end(0, {"val_accuracy": 0.9})
    saved = keras.models.load_model(tmp_path / "best.h5")
    assert {layer.compute_dtype for layer in saved.layers} == {"float32"}
    for saved_weights, trained_weights in zip(
        saved.get_weights(), trained.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(saved_weights, trained_weights)


def test_other_runs_partial_files_are_left_alone(tmp_path):
    # A hidden partial file of another run saving to the same path (it may be alive) is not ours
    # to delete; only a save's own temporary file is ever removed.
    other_run = tmp_path / ".best.abc123.partial.h5"
    other_run.write_bytes(b"another run's save in progress")
    checkpoint = BestModelCheckpoint(tmp_path / "best.h5", export_model=tiny_model())
    checkpoint.set_model(tiny_model())
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"val_accuracy": 0.5})
    assert other_run.read_bytes() == b"another run's save in progress"
    assert sorted(p.name for p in tmp_path.iterdir()) == [other_run.name, "best.h5"]
