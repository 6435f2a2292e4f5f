"""The numpy engine against Keras's own `model.predict`: every supported layer kind, a string
model's lines of several widths, and the committed model over the 10,000 MNIST test digits
(these tests import TensorFlow); and against itself: a batch read whole or one by one."""

import numpy as np
import pytest

from digits.reading.engine import Activation, Affine, Conv2D, Flatten, Linear, Network, Pool
from digits.reading.keras_file import STRING_MODEL, Classifier, load_network

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


def string_model(keras):
    """A line of any width → one frame of 11 classes per 4 columns, as STRING_MODEL wants."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, None, 1)),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.Conv2D(12, 3, padding="same"),
            layers.MaxPooling2D(),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(11, (7, 1), padding="valid", activation="softmax"),
        ]
    )


@pytest.mark.slow
def test_a_string_model_matches_keras_at_every_width(keras, tmp_path):
    model = with_random_batch_statistics(keras, string_model(keras))
    model.save(tmp_path / "string.h5")
    network = load_network(tmp_path / "string.h5", STRING_MODEL)
    rng = np.random.default_rng(5)
    for width, count in ((4, 3), (28, 70), (60, 9), (256, 5)):
        lines = rng.random((count, 28, width, 1), dtype=np.float32)

        expected = model.predict(lines, verbose=0)

        assert np.abs(network(lines) - expected).max() <= TOLERANCE, f"width {width}"


def small_network(rng) -> Network:
    """Every kind of convolution the engine runs (3×3 by Winograd, others by patches), batch
    normalisations folded through a max pooling or left alone, on lines of any width."""

    def conv(window, channels, filters, strides=(1, 1), padding="same"):
        kernel = rng.normal(0, 0.3, (*window, channels, filters)).astype(np.float32)
        return Conv2D(kernel, rng.normal(0, 0.1, filters).astype(np.float32), strides, padding)

    def batch_norm(channels, low):
        scale = rng.uniform(low, 1.5, channels).astype(np.float32)
        return Affine(scale, rng.normal(0, 0.2, channels).astype(np.float32))

    ops = [
        conv((3, 3), 1, 8),
        Activation("relu"),
        conv((3, 3), 8, 16),
        Pool("max", (2, 2), (2, 2), "valid"),
        batch_norm(16, 0.5),
        Activation("relu"),
        conv((5, 3), 16, 12, strides=(2, 1)),
        batch_norm(12, -1.0),
        Pool("average", (3, 3), (2, 2), "same"),
        conv((3, 3), 12, 10, padding="valid"),
        Activation("softmax"),
    ]
    return Network(ops, (28, None, 1))


@pytest.mark.parametrize("width", [12, 28, 100])
def test_a_batch_reads_as_its_examples_one_by_one(width):
    # A batch runs in chunks on threads, by Winograd where a chunk is large enough; one example
    # runs alone, by patches: both must give the same answers.
    rng = np.random.default_rng(width)
    network = small_network(rng)
    lines = rng.random((150, 28, width, 1), dtype=np.float32)

    whole = network(lines)

    one_by_one = np.concatenate([network(lines[i : i + 1]) for i in range(len(lines))])
    assert whole.shape == one_by_one.shape == (150, *network.output_shape((28, width, 1)))
    assert np.abs(whole - one_by_one).max() <= 1e-5


def test_the_network_leaves_its_input_and_its_ops_alone():
    rng = np.random.default_rng(1)
    dense = Linear(rng.normal(size=(784, 10)).astype(np.float32), np.zeros(10, np.float32))
    scale, shift = np.full(10, 2.0, np.float32), np.ones(10, np.float32)
    kernel = dense.kernel.copy()
    network = Network([Flatten(), dense, Affine(scale, shift), Activation("relu")], (28, 28))
    images = rng.random((5, 28, 28), dtype=np.float32)
    before = images.copy()

    outputs = network(images)

    assert np.array_equal(images, before)
    assert np.array_equal(dense.kernel, kernel)  # the batch normalisation folded into a copy
    expected = np.maximum((images.reshape(5, -1) @ kernel) * scale + shift, 0)
    assert np.allclose(outputs, expected, atol=1e-4)


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
