"""Tests for digits.predict: the numpy engine against Keras, the whitelist, bad files, readings.

Most tests write small model files by hand with h5py, in the layout Keras 3 writes; the tests
marked `slow` import TensorFlow once to build real Keras files (every supported layer kind,
a hostile Lambda, wrong shapes) and check the engine against `model.predict`.
"""

import json
import os
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from digits.predict import (
    UNCERTAIN_BELOW,
    Classifier,
    ModelError,
    read_digit_images,
    reading_from,
)

TOLERANCE = 1e-4  # max abs difference allowed between our probabilities and Keras's


# --- model files written by hand ---


def input_layer(shape=(28, 28, 1)) -> dict:
    return {"class_name": "InputLayer", "config": {"name": "input", "batch_shape": [None, *shape]}}


def layer(class_name: str, name: str, **config) -> dict:
    return {"class_name": class_name, "config": {"name": name, **config}}


def write_model(path, layers, weights=None, kind="Sequential", keras2=False, **config) -> Path:
    """A model file laid out as Keras 3's model.save("x.h5") does (see the slow tests), or with
    keras2, as TF 2's Keras did; `config` adds to the model's config (a Functional's outputs)."""
    with h5py.File(path, "w") as file:
        config = {"name": "model", "layers": layers, **config}
        file.attrs["model_config"] = json.dumps({"class_name": kind, "config": config})
        group = file.create_group("model_weights")
        for layer_name, arrays in (weights or {}).items():
            layer_group = group.create_group(layer_name)
            style = "{layer}/{name}:0" if keras2 else "sequential/{layer}/{name}"
            names = [style.format(layer=layer_name, name=name) for name in arrays]
            for full_name, array in zip(names, arrays.values(), strict=True):
                layer_group.create_dataset(full_name, data=array)
            layer_group.attrs["weight_names"] = names
    return Path(path)


def dense_model(path, units=10, activation="softmax", shape=(28, 28, 1), seed=0):
    """Input → Flatten → Dense: (path, kernel, bias)."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 0.3, (784, units)).astype(np.float32)
    bias = rng.normal(0, 0.3, units).astype(np.float32)
    layers = [
        input_layer(shape),
        layer("Flatten", "flatten"),
        layer("Dense", "dense", units=units, activation=activation, use_bias=True),
    ]
    write_model(path, layers, {"dense": {"kernel": kernel, "bias": bias}})
    return Path(path), kernel, bias


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_dense_model_gives_softmax_of_its_weights(tmp_path):
    path, kernel, bias = dense_model(tmp_path / "dense.h5")
    images = np.random.default_rng(1).random((600, 28, 28), dtype=np.float32)  # several chunks
    expected = softmax(images.reshape(-1, 784).astype(np.float64) @ kernel + bias)

    classifier = Classifier.load(path)
    flat = classifier.probabilities(images)
    with_channel = classifier.probabilities(images[..., None])

    assert flat.dtype == np.float32 and flat.shape == (600, 10)
    np.testing.assert_allclose(flat, expected, atol=1e-5)  # float32 sums
    np.testing.assert_array_equal(flat, with_channel)


def test_probabilities_refuses_images_of_another_size(tmp_path):
    classifier = Classifier.load(dense_model(tmp_path / "dense.h5")[0])
    with pytest.raises(ValueError, match="28, 28"):
        classifier.probabilities(np.zeros((2, 32, 32)))


def test_probabilities_leave_the_callers_images_alone(tmp_path):
    # A model starting with a ReLU: the engine computes in place, but never in the caller's array.
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(784, 10)).astype(np.float32)
    layers = [
        input_layer(),
        layer("Activation", "relu", activation="relu"),
        layer("Flatten", "flatten"),
        layer("Dense", "dense", units=10, activation="softmax", use_bias=False),
    ]
    path = write_model(tmp_path / "relu.h5", layers, {"dense": {"kernel": kernel}})
    images = rng.normal(size=(3, 28, 28, 1)).astype(np.float32)
    before = images.copy()
    Classifier.load(path).probabilities(images)
    np.testing.assert_array_equal(images, before)


# --- refusing files: hostile, wrong shape, damaged ---

LAMBDA_CONFIG = {
    "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAA", "defaults": None}},
    "function_type": "lambda",
    "arguments": {},
}
HOSTILE_LAYERS = {
    "Lambda": {"class_name": "Lambda", "config": {"name": "evil", **LAMBDA_CONFIG}},
    "unknown class": layer("TFOpLambda", "evil", function="os.system"),
    "custom class with a built-in name": {
        "module": "my_package",
        "class_name": "Dense",
        "registered_name": "my_package>Dense",
        "config": {"name": "evil", "units": 10},
    },
    "nested model": layer("Sequential", "evil", layers=[layer("Lambda", "inner")]),
    "custom activation": layer(
        "Dense", "evil", units=10, activation={"class_name": "my>act", "config": {}}
    ),
}


@pytest.mark.parametrize("hostile", HOSTILE_LAYERS.values(), ids=HOSTILE_LAYERS.keys())
def test_layers_off_the_whitelist_are_refused_by_name(tmp_path, hostile):
    layers = [input_layer(), layer("Flatten", "flatten"), hostile]
    path = write_model(tmp_path / "hostile.h5", layers)
    with pytest.raises(ModelError, match="evil"):
        Classifier.load(path)


def test_a_subclassed_model_is_refused(tmp_path):
    with h5py.File(tmp_path / "custom.h5", "w") as file:
        file.attrs["model_config"] = json.dumps({"class_name": "MyNet", "config": {}})
    with pytest.raises(ModelError, match="MyNet"):
        Classifier.load(tmp_path / "custom.h5")


def fed_by(entry: dict, source: str) -> dict:
    """A Functional model's layer entry fed by layer `source`, in Keras 2's notation."""
    return {**entry, "name": entry["config"]["name"], "inbound_nodes": [[[source, 0, 0, {}]]]}


def test_a_keras_2_functional_chain_runs(tmp_path):
    rng = np.random.default_rng(5)
    kernel, bias = rng.normal(size=(784, 10)), rng.normal(size=10)
    first = layer("InputLayer", "input_1", batch_input_shape=[None, 28, 28])
    layers = [
        {**first, "name": "input_1", "inbound_nodes": []},
        fed_by(layer("Flatten", "flatten"), "input_1"),
        fed_by(layer("Dense", "dense", units=10, activation="softmax"), "flatten"),
    ]
    weights = {"dense": {"kernel": kernel, "bias": bias}}
    path = write_model(
        tmp_path / "k2.h5", layers, weights, "Model", keras2=True, output_layers=[["dense", 0, 0]]
    )
    images = rng.random((5, 28, 28))
    expected = softmax(images.reshape(5, 784) @ kernel + bias)
    np.testing.assert_allclose(Classifier.load(path).probabilities(images), expected, atol=1e-5)


def test_a_functional_model_that_is_not_a_chain_is_refused(tmp_path):
    layers = [
        {**input_layer(), "name": "input", "inbound_nodes": []},
        fed_by(layer("Flatten", "flatten"), "input"),
        fed_by(layer("Dense", "side", units=5), "flatten"),  # a branch the output ignores
        fed_by(layer("Dense", "dense", units=10, activation="softmax"), "flatten"),
    ]
    path = write_model(
        tmp_path / "branch.h5", layers, kind="Functional", output_layers=[["dense", 0, 0]]
    )
    with pytest.raises(ModelError, match="chain"):
        Classifier.load(path)


@pytest.mark.parametrize(
    ("shape", "units", "activation", "message"),
    [
        ((32, 32, 3), 10, "softmax", "model expects input 32×32×3; this program needs 28×28×1"),
        ((28, 28, 1), 12, "softmax", "model gives 12 outputs; this program needs 28×28×1 → 10"),
        ((28, 28, 1), 10, "linear", "no softmax"),
    ],
)
def test_models_of_the_wrong_shape_are_refused(tmp_path, shape, units, activation, message):
    layers = [
        input_layer(shape),
        layer("Flatten", "flatten"),
        layer("Dense", "dense", units=units, activation=activation),
    ]
    size = int(np.prod(shape))
    weights = {"dense": {"kernel": np.zeros((size, units)), "bias": np.zeros(units)}}
    path = write_model(tmp_path / "wrong.h5", layers, weights)
    with pytest.raises(ModelError, match=message):
        Classifier.load(path)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({}, "'dense': weight 'kernel' is missing"),
        ({"dense": {"kernel": np.zeros((784, 9)), "bias": np.zeros(10)}}, "'dense': weight 'ke"),
        ({"dense": {"kernel": np.full((784, 10), b"x"), "bias": np.zeros(10)}}, "expected float"),
    ],
    ids=["missing", "wrong shape", "not numbers"],
)
def test_weights_that_do_not_fit_the_layers_are_refused(tmp_path, weights, message):
    layers = [input_layer(), layer("Flatten", "flatten"), layer("Dense", "dense", units=10)]
    with pytest.raises(ModelError, match=message):
        Classifier.load(write_model(tmp_path / "bad.h5", layers, weights))


def test_damaged_and_missing_files_give_one_clear_line(tmp_path):
    good, _, _ = dense_model(tmp_path / "good.h5")
    data = good.read_bytes()
    cases = {
        tmp_path / "missing.h5": "no such model file",
        tmp_path: "is a folder",
        tmp_path / "text.h5": "not a model file (not HDF5)",
        tmp_path / "empty.h5": "not a model file (not HDF5)",
        tmp_path / "truncated.h5": "truncated",
        tmp_path / "weights_only.h5": "no model_config",
        tmp_path / "bad_json.h5": "not valid JSON",
    }
    (tmp_path / "text.h5").write_text("hello, I am not a model\n")
    (tmp_path / "empty.h5").write_bytes(b"")
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 2])
    with h5py.File(tmp_path / "weights_only.h5", "w") as file:
        file.create_dataset("dense/kernel", data=np.zeros((784, 10)))
    with h5py.File(tmp_path / "bad_json.h5", "w") as file:
        file.attrs["model_config"] = '{"class_name": "Sequential", '
    for path, message in cases.items():
        with pytest.raises(ModelError) as caught:
            Classifier.load(path)
        assert message in str(caught.value), path
        assert "\n" not in str(caught.value)


# --- readings ---


def fake_digit(box):
    return SimpleNamespace(pixels=np.zeros((28, 28), np.float32), box=box)


def probabilities_row(digit: int, confidence: float) -> np.ndarray:
    row = np.full(10, (1 - confidence) / 9, np.float32)
    row[digit] = confidence
    return row


def test_reading_json_has_the_documented_fields():
    rows = np.stack([probabilities_row(4, 0.99), probabilities_row(2, 0.6)])
    reading = reading_from([fake_digit((1, 2, 30, 40)), fake_digit((35, 2, 60, 41))], rows)

    answer = json.loads(json.dumps(reading.to_json("number.png")))

    assert set(answer) == {"file", "prediction", "confidence", "uncertain", "digits"}
    assert answer["file"] == "number.png"
    assert answer["prediction"] == "42"
    assert answer["confidence"] == pytest.approx(0.99 * 0.6)
    assert answer["uncertain"] is True
    first, second = answer["digits"]
    assert set(first) == {"digit", "confidence", "probabilities", "box", "uncertain"}
    assert (first["digit"], first["box"], first["uncertain"]) == (4, [1, 2, 30, 40], False)
    assert first["confidence"] == pytest.approx(0.99)
    assert len(first["probabilities"]) == 10 and sum(first["probabilities"]) == pytest.approx(1)
    assert (second["digit"], second["uncertain"]) == (2, True)


def test_uncertain_means_top_probability_below_the_documented_threshold():
    assert UNCERTAIN_BELOW == 0.80
    for confidence, uncertain in [(0.79, True), (0.81, False)]:
        reading = reading_from([fake_digit((0, 0, 1, 1))], probabilities_row(3, confidence)[None])
        assert reading.digits[0].uncertain is uncertain
        assert reading.uncertain is uncertain


def test_a_picture_without_digits_reads_as_empty():
    reading = reading_from([], np.empty((0, 10)))
    assert reading.to_json("blank.png") == {
        "file": "blank.png",
        "prediction": "",
        "confidence": 0,
        "uncertain": False,
        "digits": [],
    }


def test_read_digit_images_answers_each_picture_in_one_batch(tmp_path):
    classifier = Classifier.load(dense_model(tmp_path / "dense.h5")[0])
    rng = np.random.default_rng(3)
    pictures = [
        [SimpleNamespace(pixels=rng.random((28, 28), dtype=np.float32), box=(i, 0, i + 1, 1))]
        * count
        for i, count in enumerate([2, 0, 3])
    ]
    readings = read_digit_images(classifier, pictures)

    assert [len(reading.digits) for reading in readings] == [2, 0, 3]
    for picture, reading in zip(pictures, readings, strict=True):
        for digit_image, digit in zip(picture, reading.digits, strict=True):
            expected = classifier.probabilities(digit_image.pixels[None])[0]
            np.testing.assert_allclose(digit.probabilities, expected, atol=1e-7)
            assert digit.digit == int(np.argmax(expected))
            assert digit.box == digit_image.box


# --- against Keras itself (imports TensorFlow, once for the module) ---


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(0)
    return keras


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
    assert np.abs(expected).max() > 0  # the model computes something


@pytest.mark.slow
def test_a_hostile_lambda_model_is_refused_without_running_its_code(keras, tmp_path):
    marker = tmp_path / "the_lambda_ran"
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Lambda(
                lambda x, path: (open(path, "w").close(), x)[1],  # noqa: SIM115 - the payload
                arguments={"path": str(marker)},
            ),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.save(tmp_path / "hostile.h5")
    marker.unlink()  # building the model above ran the lambda once

    with pytest.raises(ModelError, match="'lambda' is a 'Lambda'"):
        Classifier.load(tmp_path / "hostile.h5")
    assert not marker.exists()

    # The file really is hostile: Keras, told to trust it, runs the code.
    keras.models.load_model(tmp_path / "hostile.h5", safe_mode=False)
    assert marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shape", "units", "message"),
    [((32, 32, 3), 10, "expects input 32×32×3"), ((28, 28, 1), 12, "gives 12 outputs")],
)
def test_keras_models_of_the_wrong_shape_are_refused(keras, tmp_path, shape, units, message):
    model = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv2D(2, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation="softmax"),
        ]
    )
    model.save(tmp_path / "wrong.h5")
    with pytest.raises(ModelError, match=message):
        Classifier.load(tmp_path / "wrong.h5")


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
