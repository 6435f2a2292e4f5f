"""The training recipe: data preparation, the loss, calibration, and train() end to end."""

from dataclasses import replace

import keras
import numpy as np
import pytest

from digits.reading.keras_file import Classifier
from digits.training import recipe
from digits.training.config import TrainingConfig
from digits.training.recipe import (
    calibrate_confidence,
    prepare_data,
    smoothed_crossentropy,
    to_model_input,
    train,
)


def numbered_images(count):
    """Images whose first pixel encodes their index (as labels do), to trace where each went."""
    images = np.zeros((count, 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(count) % 256
    images[:, 0, 1] = np.arange(count) // 256
    return images, np.arange(count)


def index_of(images):
    return images[:, 0, 0].astype(int) + 256 * images[:, 0, 1].astype(int)


def test_validation_set_is_seeded_and_disjoint_from_the_fit_images():
    images, labels = numbered_images(100)
    config = TrainingConfig(validation_size=20, seed=1)
    prepared = prepare_data(config, images, labels)
    (fit_x, fit_y), (held_x, held_y) = prepared.fit, prepared.validation
    assert (len(fit_y), len(held_y)) == (80, 20)
    assert not set(fit_y) & set(held_y)
    np.testing.assert_array_equal(index_of(fit_x), fit_y)
    np.testing.assert_array_equal(index_of(held_x), held_y)
    again = prepare_data(config, images, labels)
    np.testing.assert_array_equal(again.validation[1], held_y)
    other_seed = prepare_data(replace(config, seed=2), images, labels)
    assert set(other_seed.validation[1]) != set(held_y)


def test_a_subset_is_seeded_and_split_within_itself():
    images, labels = numbered_images(1000)
    config = TrainingConfig(train_subset=300, validation_size=50, seed=3)
    prepared = prepare_data(config, images, labels)
    used = set(prepared.fit[1]) | set(prepared.validation[1])
    assert len(used) == 300 and len(prepared.validation[1]) == 50
    other_seed = prepare_data(replace(config, seed=4), images, labels)
    assert used != set(other_seed.fit[1]) | set(other_seed.validation[1])


@pytest.mark.parametrize(
    ("subset", "validation_size", "font_digits"),
    [(6000, 500, 400), (512, 43, 34), (None, 5000, 4000)],
)
def test_scaled_to_keeps_the_validation_share_and_the_font_share(
    subset, validation_size, font_digits
):
    config = TrainingConfig(validation_size=5000, font_digits=4000).scaled_to(subset)
    assert (config.train_subset, config.validation_size, config.font_digits) == (
        subset,
        validation_size,
        font_digits,
    )
    assert TrainingConfig(font_digits=0).scaled_to(512).font_digits == 0


def test_smoothed_crossentropy_aims_at_091_for_the_label_and_001_elsewhere():
    probabilities = np.array([[0.7, 0.2, 0.1] + [0.0] * 7, [0.1] * 10], np.float32)
    labels = np.array([0, 3])
    clipped = np.clip(probabilities, 1e-7, 1)
    targets = np.full((2, 10), 0.01)
    targets[[0, 1], labels] = 0.91
    expected = -(targets * np.log(clipped)).sum(axis=1)
    loss = keras.ops.convert_to_numpy(smoothed_crossentropy(0.1)(labels, probabilities))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_bfloat16_is_chosen_only_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(recipe, "has_bfloat16", lambda: False)
    assert recipe.fastest_dtype_policy() == "float32"
    monkeypatch.setattr(recipe, "has_bfloat16", lambda: True)
    assert recipe.fastest_dtype_policy() == "mixed_bfloat16"


def timid_model():
    """A tiny model, and validation digits labelled with its own (unsure) readings."""
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    )
    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 0.02, (784, 10)).astype(np.float32)
    model.layers[-1].set_weights([kernel, np.zeros(10, np.float32)])
    images = (rng.random((200, 28, 28)) * 255).astype(np.uint8)
    labels = model.predict(to_model_input(images), verbose=0).argmax(axis=1)
    return model, (images, labels)


def test_calibration_sharpens_confidences_and_changes_no_prediction():
    model, (images, labels) = timid_model()
    inputs = to_model_input(images)
    before = model.predict(inputs, verbose=0)
    temperature = calibrate_confidence(model, (images, labels))
    after = model.predict(inputs, verbose=0)
    # Every validation digit is read right, so the log-loss falls as the temperature does.
    assert temperature < 0.5
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))
    assert after.max(axis=1).min() > before.max(axis=1).max()
    np.testing.assert_allclose(after.sum(axis=1), 1, rtol=1e-5)


def test_calibration_leaves_honest_confidences_alone():
    model, (images, _) = timid_model()
    before = model.predict(to_model_input(images), verbose=0)
    # Labels drawn from the model's own probabilities: its confidences are calibrated already.
    rng = np.random.default_rng(1)
    labels = np.array([rng.choice(10, p=row / row.sum()) for row in before.astype(np.float64)])
    temperature = calibrate_confidence(model, (images, labels))
    assert 0.5 < temperature < 2.0


@pytest.mark.slow
@pytest.mark.mnist
def test_short_training_learns_and_returns_exactly_the_model_it_saved(tmp_path, mnist):
    (x_train, y_train), _ = mnist
    config = TrainingConfig(
        epochs=2, train_subset=3000, validation_size=500, seed=0, model_path=tmp_path / "best.h5"
    )
    prepared = prepare_data(config, x_train, y_train)
    run = train(config, prepared, verbose=0)
    assert run.epochs_run == 2 and run.best_epoch in (1, 2)
    assert set(run.history) >= {"loss", "val_accuracy", "learning_rate"}
    assert max(run.history["val_accuracy"]) > 0.85
    saved = keras.models.load_model(config.model_path, compile=False)
    for in_memory, in_file in zip(run.model.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(in_memory, in_file)
    images = to_model_input(prepared.validation[0][:50])
    np.testing.assert_allclose(
        Classifier.load(config.model_path).probabilities(images),
        run.model.predict(images, verbose=0),
        atol=1e-5,
    )
