"""Reading a Keras .h5 model file safely, into a network the numpy engine runs.

The model is the Keras file `bestmodel.h5` (written by `model.save("bestmodel.h5")`), and it
stays the single source of truth: this module reads it with h5py, and `digits.reading.engine`
runs it.

Safety: the file is never handed to Keras. Keras turns a `Lambda` layer or a custom object back
into Python code when it loads a file, so a hostile file could run anything. Here only the layer
list in the file's `model_config` JSON is read and checked against a whitelist of plain layers;
then only the numeric arrays those layers need, of the expected shapes, are read, through
`hdf5_safety.SealedFile`, which never lets the file reach outside itself (external links and
storage, virtual datasets, filter plugins) and bounds the bytes read. Anything else is refused
with `ModelError`, which names the offending layer or object.

Supported layers: InputLayer, Conv2D, Dense, BatchNormalization, Activation, ReLU, MaxPooling2D,
AveragePooling2D, Flatten, GlobalAveragePooling2D, and Dropout, SpatialDropout2D and
GaussianNoise (which do nothing at inference), in a Sequential model or a Functional model that
is a single chain; activations linear, relu, sigmoid, tanh and softmax.
"""

import json
import math
from dataclasses import dataclass

import h5py
import numpy as np

from digits.reading.engine import (
    ACTIVATIONS,
    Activation,
    Affine,
    Conv2D,
    Flatten,
    GlobalAveragePool,
    Linear,
    ModelError,
    Network,
    Pool,
    ReLU,
    geometry,
)
from digits.reading.hdf5_safety import SealedFile

CLASSES = 10
IDENTITY_LAYERS = {"Dropout", "SpatialDropout2D", "GaussianNoise"}
MAX_PARAMETERS = 50_000_000  # 200 MB of float32; a digit model has well under a million
MAX_VALUES_PER_IMAGE = 20_000_000  # the largest array one image may need on its way through
# A size the model leaves open (a string model's width) counts as this many pixels in the checks.
NOMINAL_SIZE = 256


@dataclass(frozen=True)
class Contract:
    """What a model file must be for its use: the input shapes it may declare, its output."""

    inputs: tuple[tuple, ...]  # None: any size along that axis
    output: tuple
    needed: str  # the user-facing phrase naming the contract


DIGIT_MODEL = Contract(((28, 28, 1), (28, 28)), (CLASSES,), "this program needs 28×28×1 → 10")
# The string model reads a line of any width, one frame per 4 columns: ten digits and the blank.
STRING_MODEL = Contract(
    ((28, None, 1),), (1, None, CLASSES + 1), "a string model needs 28×any×1 → 1×any×11"
)


# --- reading the file: the layer list, its whitelist, the weights ---


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
    return [] if name == "linear" else [Activation(name)]


class _Weights:
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


def _values(shape) -> int:
    """How many values an array of `shape` holds, an open size counted as NOMINAL_SIZE."""
    return math.prod(NOMINAL_SIZE if size is None else size for size in shape)


def _bias(config: dict, weights: _Weights, size: int) -> np.ndarray:
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
    if _values(out_size) * math.prod(window) * shape[2] > MAX_VALUES_PER_IMAGE:
        raise ModelError(
            f"refused: Conv2D {config.get('name')!r} is far too large for a digit classifier"
        )
    kernel = weights.read("kernel", (*window, shape[2], filters))
    conv = Conv2D(kernel, _bias(config, weights, filters), strides, padding)
    return [conv, *_activation(config)], (*out_size, filters)


def _dense(config, weights, shape):
    units = _config_ints(config.get("units"), 1, "units")[0]
    kernel = weights.read("kernel", (shape[-1], units))
    return [Linear(kernel, _bias(config, weights, units)), *_activation(config)], (
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
    return [Affine(scale.astype(np.float32), (beta - mean * scale).astype(np.float32))], shape


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
        return [Pool(kind, window, strides, padding)], (*out_size, shape[2])

    return build


def _activation_layer(config, _weights, shape):
    return _activation(config), shape


def _relu_layer(config, _weights, shape):
    options = [config.get(key) for key in ("max_value", "negative_slope", "threshold")]
    max_value, negative_slope, threshold = options
    if not all(value is None or isinstance(value, int | float) for value in options):
        raise ModelError(f"ReLU {config.get('name')!r}: its options are not numbers")
    if not any(options):
        return [Activation("relu")], shape
    return [ReLU(max_value, negative_slope or 0.0, threshold or 0.0)], shape


def _flatten(config, _weights, shape):
    _config_choice(config, "data_format", ("channels_last", None), "channels_last")
    if None in shape:
        raise ModelError(f"Flatten {config.get('name')!r} needs an input of fixed size")
    return [Flatten()], (math.prod(shape),)


def _global_average_pooling(config, _weights, shape):
    if len(shape) != 3:
        raise ModelError(
            f"GlobalAveragePooling2D {config.get('name')!r} needs height×width×channels input"
        )
    _config_choice(config, "data_format", ("channels_last", None), "channels_last")
    keepdims = bool(config.get("keepdims", False))
    return [GlobalAveragePool(keepdims)], ((1, 1, shape[2]) if keepdims else (shape[2],))


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


def _layer_name(entry: dict) -> str:
    name = entry.get("name") or entry["config"].get("name")
    return name if isinstance(name, str) else "?"


def _check_whitelisted(entry) -> None:
    """Refuse, without interpreting it, any layer that is not a plain built-in one on the list."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ModelError("refused: the model's layer list is malformed")
    class_name = entry.get("class_name")
    # A registered custom class may reuse a built-in name; Keras 3 marks it in these two keys.
    registered, module = entry.get("registered_name"), entry.get("module")
    built_in = registered in (None, class_name) and (
        module is None or str(module).startswith("keras.")
    )
    if class_name in (*LAYER_BUILDERS, "InputLayer") and built_in:
        return
    kind = str(registered or class_name)[:60]
    raise ModelError(
        f"refused: layer {_layer_name(entry)!r} is a {kind!r}, which this program does not run "
        f"(it runs only {ALLOWED_LAYERS})"
    )


def _inbound_names(entry) -> list[str]:
    """The names of the layers feeding a Functional model's layer (both Keras 2 and 3 formats)."""
    nodes = entry.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise ModelError(
            f"refused: layer {_layer_name(entry)!r} is used more than once; only chains are run"
        )
    names = []

    def collect(node):
        # Keras 3 nests {"keras_history": [layer name, node, tensor]} in each argument tensor;
        # Keras 2 lists [layer name, node index, tensor index, kwargs] per argument.
        if isinstance(node, dict):
            history = node.get("keras_history")
            if isinstance(history, list) and history:
                names.append(history[0])
            else:
                for value in node.values():
                    collect(value)
        elif isinstance(node, list):
            if node and isinstance(node[0], str):
                names.append(node[0])
            else:
                for value in node:
                    collect(value)

    collect(nodes[0] if nodes else [])
    return names


def _chain(config: dict) -> list[dict]:
    """A Functional model's layers in order, when they form a single chain from input to output."""
    layers = config.get("layers") or []
    for entry in layers:
        _check_whitelisted(entry)
    by_name = {_layer_name(entry): entry for entry in layers}
    outputs = config.get("output_layers") or []
    if outputs and isinstance(outputs[0], str):  # Keras 3 writes a single output un-nested
        outputs = [outputs]
    if not isinstance(layers, list):
        raise ModelError("refused: the model's layer list is malformed")
    if len(outputs) != 1 or not isinstance(outputs[0], list) or not outputs[0]:
        raise ModelError("refused: only a model with one input and one output is supported")
    order, name = [], outputs[0][0]
    while name in by_name and by_name[name] not in order:
        entry = by_name[name]
        order.append(entry)
        if entry.get("class_name") == "InputLayer":
            break
        inbound = _inbound_names(entry)
        if len(inbound) != 1:
            raise ModelError(
                f"refused: layer {name!r} has {len(inbound)} inputs; only a chain is supported"
            )
        name = inbound[0]
    if len(order) != len(layers) or order[-1].get("class_name") != "InputLayer":
        raise ModelError(
            "refused: the model is not a single chain of layers from its input to its output"
        )
    return order[::-1]


def _layer_list(model_config) -> tuple[list[dict], dict]:
    """The model's layers in order (whitelisted) and its own config, from parsed `model_config`."""
    if not isinstance(model_config, dict) or not isinstance(model_config.get("config"), dict):
        raise ModelError("refused: the model description is malformed")
    kind, config = model_config.get("class_name"), model_config["config"]
    if kind == "Sequential":
        layers = config.get("layers")
        if not isinstance(layers, list):
            raise ModelError("refused: the model's layer list is malformed")
        for entry in layers:
            _check_whitelisted(entry)
    elif kind in ("Functional", "Model"):
        layers = _chain(config)
    else:
        kind = str(kind)[:60]
        raise ModelError(
            f"refused: the model is a {kind!r}; only Sequential or Functional ones run"
        )
    return layers, config


def _input_shape(layers: list[dict], config: dict) -> tuple:
    """The per-example input shape the model declares (without the batch axis)."""
    first = layers[0]["config"] if layers else {}
    for shape in (
        first.get("batch_shape"),
        first.get("batch_input_shape"),
        config.get("build_input_shape"),
    ):
        if isinstance(shape, list) and len(shape) > 1:
            return tuple(shape[1:])
    raise ModelError("the model does not say what input it expects")


def _read_model_config(file: h5py.File):
    raw = file.attrs.get("model_config")
    if raw is None:
        raise ModelError("not a saved Keras model (no model_config; a weights-only file?)")
    try:
        return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (ValueError, RecursionError):
        raise ModelError("its model description (model_config) is not valid JSON") from None


def _shape_text(shape) -> str:
    return "×".join("?" if size is None else str(size) for size in shape)


def _build(file: h5py.File, contract: Contract) -> tuple[list, tuple]:
    """The network's operations and the input shape it declares, checked against `contract`."""
    layers, config = _layer_list(_read_model_config(file))
    sealed = SealedFile(file)
    input_shape = shape = _input_shape(layers, config)
    if shape not in contract.inputs:
        raise ModelError(f"model expects input {_shape_text(shape)}; {contract.needed}")
    ops, parameters, ends_in_softmax = [], 0, False
    for entry in layers:
        if entry["class_name"] == "InputLayer":
            continue
        weights = _Weights(sealed, _layer_name(entry))
        new_ops, shape = LAYER_BUILDERS[entry["class_name"]](entry["config"], weights, shape)
        parameters += sum(op.kernel.size for op in new_ops if isinstance(op, Linear))
        if parameters > MAX_PARAMETERS or _values(shape) > MAX_VALUES_PER_IMAGE:
            raise ModelError("refused: the model is far too large for a digit classifier")
        if new_ops:
            ends_in_softmax = getattr(new_ops[-1], "name", None) == "softmax"
        ops += new_ops
    if shape != contract.output:
        raise ModelError(f"model gives {_shape_text(shape)} outputs; {contract.needed}")
    if not ends_in_softmax:
        raise ModelError(
            f"model's outputs are not probabilities (no softmax at the end); {contract.needed}"
        )
    return ops, input_shape


def load_network(path, contract: Contract = DIGIT_MODEL) -> Network:
    """The network in the model file `path`, checked against `contract`; ModelError (one line)
    when the file is missing, corrupt or refused."""
    try:
        with h5py.File(path, "r") as file:
            ops, input_shape = _build(file, contract)
    except ModelError:
        raise
    except FileNotFoundError:
        raise ModelError("no such model file") from None
    except IsADirectoryError:
        raise ModelError("is a folder, not a model file") from None
    except PermissionError:
        raise ModelError("permission denied") from None
    except OSError as error:
        raise ModelError(_unreadable_reason(error)) from None
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise ModelError(f"the model file is damaged ({type(error).__name__})") from None
    return Network(ops, input_shape)


class Classifier:
    """A digit classifier loaded from a Keras .h5 file; read-only, so threads may share it."""

    def __init__(self, network: Network):
        self.network = network

    @classmethod
    def load(cls, path) -> "Classifier":
        """The model in `path`; ModelError (one line) when it is missing, corrupt or refused."""
        return cls(load_network(path, DIGIT_MODEL))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) or (N, 28, 28, 1) images, floats in [0, 1] → (N, 10) float32 probabilities"""
        images = np.asarray(images)
        if images.shape[1:] not in DIGIT_MODEL.inputs:
            raise ValueError(
                f"expected images of shape (N, 28, 28) or (N, 28, 28, 1), got {images.shape}"
            )
        if len(images) == 0:
            return np.empty((0, CLASSES), np.float32)
        return self.network(images.reshape(len(images), *self.network.input_shape))


def _unreadable_reason(error: OSError) -> str:
    """One line on why h5py could not read the file (its own messages are long and technical)."""
    text = str(error)
    if "signature not found" in text:
        return "not a model file (not HDF5)"
    if "truncated file" in text:
        return "the model file is truncated (incomplete download or copy?)"
    return f"cannot read the model file ({text.splitlines()[0] if text else type(error).__name__})"
