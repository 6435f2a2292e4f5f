"""The numpy engine against Keras's own `model.predict`: every supported layer kind, and the
committed model over the 10,000 MNIST test digits. These tests import TensorFlow."""

import numpy as np
import pytest

from digits.reading.keras_file import Classifier

TOLERANCE = 1e-4  # max abs difference allowed between our probabilities and Keras's


def with_random_batch_statistics(keras, model):
    """Give every BatchNormalization non-trivial scale, shift and moving statistics."""
    rng = np.random.default_rng(0)
    for model_layer in model.layers:
        if isinstance(model_layer, keras.layers.BatchNormalization):
            model_layer.set_weights(
                [
                    rng.uniform(0.3, 2.0, w.shape)
                    if w.name in ("gamma", "moving_variance")
                    else rng.normal(0, 0.5, w.shape)
                    for w in model_layer.weights
                ]
            )
    return model


def every_layer_kind(keras):
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.Conv2D(6, (5, 3), strides=2, padding="valid", use_bias=False),
            layers.BatchNormalization(center=False),
            layers.Activation("relu"),
            layers.MaxPooling2D(),
            layers.Dropout(0.3),
            layers.SpatialDropout2D(0.2),
            layers.GaussianNoise(0.1),
            layers.Conv2D(5, 3, strides=(2, 1), padding="same"),
            layers.ReLU(max_value=6.0, negative_slope=0.1),
            layers.AveragePooling2D(pool_size=3, strides=2, padding="same"),
            layers.BatchNormalization(scale=False),
            layers.MaxPooling2D(pool_size=2, strides=1, padding="same"),
            layers.Flatten(),
            layers.Dense(16, activation="tanh"),
            layers.BatchNormalization(),
            layers.ReLU(threshold=0.1),
            layers.Dense(10, activation="softmax"),
        ]
    )


def functional_chain(keras):
    layers = keras.layers
    inputs = keras.Input((28, 28))
    x = layers.Dense(12, activation="sigmoid")(layers.Flatten()(inputs))
    x = layers.Dense(10)(layers.BatchNormalization()(x))
    return keras.Model(inputs, layers.Activation("softmax")(x))


def global_pooling(keras):
    layers = keras.layers
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(4, 3, padding="valid", activation="relu")(inputs)
    x = layers.GlobalAveragePooling2D()(layers.ReLU()(layers.BatchNormalization()(x)))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


@pytest.mark.slow
@pytest.mark.parametrize("build", [every_layer_kind, functional_chain, global_pooling])
def test_engine_matches_keras_predict(keras, tmp_path, build):
    model = with_random_batch_statistics(keras, build(keras))
    model.save(tmp_path / "model.h5")
    images = np.random.default_rng(4).random((300, 28, 28, 1), dtype=np.float32)
    keras_images = images if model.input_shape[-1] == 1 else images[..., 0]

    expected = model.predict(keras_images, verbose=0)
    ours = Classifier.load(tmp_path / "model.h5").probabilities(images)

    assert np.abs(ours - expected).max() <= TOLERANCE
    # Keras's probabilities change from image to image by far more than the tolerance, so the
    # agreement above is not that of two engines that ignore their input.
    assert np.ptp(expected, axis=0).max() > 10 * TOLERANCE


@pytest.mark.slow
@pytest.mark.mnist
def test_committed_model_matches_keras_on_the_mnist_test_set(
    keras, mnist, committed_model, classifier
):
    (_, _), (x_test, _) = mnist
    images = x_test.astype(np.float32) / 255

    expected = keras.models.load_model(committed_model, compile=False).predict(images, verbose=0)
    ours = classifier.probabilities(images)

    assert np.abs(ours - expected).max() <= TOLERANCE
    assert (ours.argmax(axis=1) == expected.argmax(axis=1)).all()
