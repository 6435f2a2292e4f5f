"""The layers a Keras .h5 model file may hold, each turned into the numpy engine's operations.

`LAYER_BUILDERS` is the whitelist: for each layer class, a builder that reads the layer's settings
from the file's `model_config` and only the weights it needs (through `keras_file`'s sealed file),
checks them against the shape flowing in, and returns the engine's operations and the shape that
flows out. Anything unexpected raises `ModelError`, naming the layer.
"""

import math

import h5py
import numpy as np

from digits.reading import engine
from digits.reading.engine import ACTIVATIONS, ModelError, geometry
from digits.reading.hdf5_safety import SealedFile

IDENTITY_LAYERS = {"Dropout", "SpatialDropout2D", "GaussianNoise"}
MAX_VALUES_PER_IMAGE = 20_000_000  # the largest array one image may need on its way through
# A size the model leaves open (a string model's width) counts as this many pixels in the checks.
NOMINAL_SIZE = 256


def _config_ints(value, count: int, what: str) -> tuple[int, ...]:
    """A kernel size, strides … as `count` positive ints (Keras also writes one int for all)."""
    values = [value] * count if isinstance(value, int) else value
    if (
        not isinstance(values, list | tuple)
        or len(values) != count
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)
    ):
        raise ModelError(f"{what} {value!r} is not {count} positive whole numbers")
    return tuple(values)


def _config_choice(config: dict, key: str, allowed, default=None):
    value = config.get(key, default)
    if isinstance(value, list):
        value = tuple(value)
    if value not in allowed:
        raise ModelError(
            f"{config.get('name', '?')!r}: {key} {value!r} is not supported (only {list(allowed)})"
        )
    return value


def _activation(config: dict) -> list:
    """The op for a layer's `activation` setting ([] for linear); custom activations are refused."""
    name = config.get("activation", "linear")
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ModelError(f"layer {config.get('name', '?')!r}: activation {name!r} is not supported")
    return [] if name == "linear" else [engine.Activation(name)]


class Weights:
    """One layer's arrays in the file, found through the layer group's `weight_names` attribute.

    Only the paths are noted here; an array is looked up and read when a layer asks for it, so
    the file's other datasets are never touched (see hdf5_safety)."""

    def __init__(self, file: SealedFile, layer_name: str):
        self.file = file
        self.layer_name = layer_name
        self.paths = {}
        group_path = f"model_weights/{layer_name}"
        group = file.get(group_path) if layer_name else None
        if isinstance(group, h5py.Group):
            for full_name in group.attrs.get("weight_names", []):
                full_name = full_name.decode() if isinstance(full_name, bytes) else str(full_name)
                # Keras 3: "sequential/conv2d/kernel"; Keras 2: "conv2d/kernel:0".
                short_name = full_name.rsplit("/", 1)[-1].split(":")[0]
                self.paths[short_name] = f"{group_path}/{full_name}"

    def read(self, name: str, shape: tuple) -> np.ndarray:
        path = self.paths.get(name)
        dataset = self.file.get(path) if path else None
        if not isinstance(dataset, h5py.Dataset):
            raise ModelError(f"layer {self.layer_name!r}: weight {name!r} is missing from the file")
        if dataset.shape != shape or dataset.dtype.kind != "f":
            raise ModelError(
                f"layer {self.layer_name!r}: weight {name!r} is {dataset.dtype} {dataset.shape}, "
                f"expected float {shape}"
            )
        values = self.file.read(dataset, f"layer {self.layer_name!r}: weight {name!r}")
        if not np.isfinite(values).all():
            raise ModelError(f"layer {self.layer_name!r}: weight {name!r} holds NaN or infinity")
        return values


def _sliding(shape, window, strides, padding) -> tuple:
    """Output height and width of a sliding window over `shape`; an open size stays open."""
    known = tuple(NOMINAL_SIZE if size is None else size for size in shape[:2])
    out_size, _ = geometry(known, window, strides, padding)
    sizes = zip(shape[:2], out_size, strict=True)
    return tuple(None if size is None else out for size, out in sizes)


def values_per_example(shape) -> int:
    """How many values an array of `shape` holds, an open size counted as NOMINAL_SIZE."""
    return math.prod(NOMINAL_SIZE if size is None else size for size in shape)


def _bias(config: dict, weights: Weights, size: int) -> np.ndarray:
    if config.get("use_bias", True):
        return weights.read("bias", (size,))
    return np.zeros(size, np.float32)


def _conv2d(config, weights, shape):
    if len(shape) != 3:
        raise ModelError(
            f"Conv2D {config.get('name')!r} needs height×width×channels input, gets {shape}"
        )
    _config_choice(config, "data_format", ("channels_last",), "channels_last")
    _config_choice(config, "dilation_rate", ((1, 1), 1), (1, 1))
    _config_choice(config, "groups", (1,), 1)
    filters = _config_ints(config.get("filters"), 1, "filters")[0]
    window = _config_ints(config.get("kernel_size"), 2, "kernel_size")
    strides = _config_ints(config.get("strides", 1), 2, "strides")
    padding = _config_choice(config, "padding", ("same", "valid"), "valid")
    out_size = _sliding(shape, window, strides, padding)
    if values_per_example(out_size) * math.prod(window) * shape[2] > MAX_VALUES_PER_IMAGE:
        raise ModelError(
            f"refused: Conv2D {config.get('name')!r} is far too large for a digit classifier"
        )
    kernel = weights.read("kernel", (*window, shape[2], filters))
    conv = engine.Conv2D(kernel, _bias(config, weights, filters), strides, padding)
    return [conv, *_activation(config)], (*out_size, filters)


def _dense(config, weights, shape):
    units = _config_ints(config.get("units"), 1, "units")[0]
    kernel = weights.read("kernel", (shape[-1], units))
    return [engine.Linear(kernel, _bias(config, weights, units)), *_activation(config)], (
        *shape[:-1],
        units,
    )


def _batch_normalization(config, weights, shape):
    if config.get("axis", -1) not in (-1, len(shape), [-1], [len(shape)]):
        raise ModelError(
            f"BatchNormalization {config.get('name')!r}: only the last (channel) axis is supported"
        )
    if config.get("renorm"):
        raise ModelError(f"BatchNormalization {config.get('name')!r}: renorm is not supported")
    channels = (shape[-1],)
    mean = weights.read("moving_mean", channels).astype(np.float64)
    variance = weights.read("moving_variance", channels).astype(np.float64)
    gamma = weights.read("gamma", channels).astype(np.float64) if config.get("scale", True) else 1.0
    beta = weights.read("beta", channels).astype(np.float64) if config.get("center", True) else 0.0
    epsilon = config.get("epsilon", 1e-3)
    if not isinstance(epsilon, int | float) or epsilon < 0:
        raise ModelError(
            f"BatchNormalization {config.get('name')!r}: epsilon {epsilon!r} is not a number ≥ 0"
        )
    scale = gamma / np.sqrt(variance + epsilon)
    shift = (beta - mean * scale).astype(np.float32)
    return [engine.Affine(scale.astype(np.float32), shift)], shape


def _pooling(kind):
    def build(config, _weights, shape):
        if len(shape) != 3:
            raise ModelError(
                f"pooling {config.get('name')!r} needs height×width×channels input, gets {shape}"
            )
        _config_choice(config, "data_format", ("channels_last", None), "channels_last")
        window = _config_ints(config.get("pool_size", 2), 2, "pool_size")
        strides = _config_ints(config.get("strides") or window, 2, "strides")
        padding = _config_choice(config, "padding", ("same", "valid"), "valid")
        out_size = _sliding(shape, window, strides, padding)
        return [engine.Pool(kind, window, strides, padding)], (*out_size, shape[2])

    return build


def _activation_layer(config, _weights, shape):
    return _activation(config), shape


def _relu_layer(config, _weights, shape):
    options = [config.get(key) for key in ("max_value", "negative_slope", "threshold")]
    max_value, negative_slope, threshold = options
    if not all(value is None or isinstance(value, int | float) for value in options):
        raise ModelError(f"ReLU {config.get('name')!r}: its options are not numbers")
    if not any(options):
        return [engine.Activation("relu")], shape
    return [engine.ReLU(max_value, negative_slope or 0.0, threshold or 0.0)], shape


def _flatten(config, _weights, shape):
    _config_choice(config, "data_format", ("channels_last", None), "channels_last")
    if None in shape:
        raise ModelError(f"Flatten {config.get('name')!r} needs an input of fixed size")
    return [engine.Flatten()], (math.prod(shape),)


def _global_average_pooling(config, _weights, shape):
    if len(shape) != 3:
        raise ModelError(
            f"GlobalAveragePooling2D {config.get('name')!r} needs height×width×channels input"
        )
    _config_choice(config, "data_format", ("channels_last", None), "channels_last")
    keepdims = bool(config.get("keepdims", False))
    return [engine.GlobalAveragePool(keepdims)], ((1, 1, shape[2]) if keepdims else (shape[2],))


def _identity(_config, _weights, shape):
    return [], shape


LAYER_BUILDERS = {
    "Conv2D": _conv2d,
    "Dense": _dense,
    "BatchNormalization": _batch_normalization,
    "MaxPooling2D": _pooling("max"),
    "AveragePooling2D": _pooling("average"),
    "Activation": _activation_layer,
    "ReLU": _relu_layer,
    "Flatten": _flatten,
    "GlobalAveragePooling2D": _global_average_pooling,
    **dict.fromkeys(IDENTITY_LAYERS, _identity),
}
ALLOWED_LAYERS = ", ".join(sorted([*LAYER_BUILDERS, "InputLayer"]))
