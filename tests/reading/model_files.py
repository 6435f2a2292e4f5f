"""Small Keras-layout model files written by hand with h5py, for the model-file and engine tests."""

import json
from pathlib import Path

import h5py
import numpy as np


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
