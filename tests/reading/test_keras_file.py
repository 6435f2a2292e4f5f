"""Reading model files safely: the whitelist, hostile and damaged files, wrong shapes.

Most tests write small model files by hand with h5py, in the layout Keras 3 writes; the tests
marked `slow` import TensorFlow once to build real Keras files (a hostile Lambda, wrong shapes).
"""

import json

import h5py
import numpy as np
import pytest

from digits.reading.engine import ModelError
from digits.reading.keras_file import Classifier
from tests.reading.model_files import dense_model, input_layer, layer, softmax, write_model

TOLERANCE = 1e-4  # max abs difference allowed between our probabilities and Keras's


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
