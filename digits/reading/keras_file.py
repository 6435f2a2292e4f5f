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
from dataclasses import dataclass

import h5py
import numpy as np

from digits.reading import engine
from digits.reading.engine import ModelError, Network
from digits.reading.hdf5_safety import SealedFile
from digits.reading.keras_layers import (
    ALLOWED_LAYERS,
    LAYER_BUILDERS,
    MAX_VALUES_PER_IMAGE,
    Weights,
    values_per_example,
)

CLASSES = 10
MAX_PARAMETERS = 50_000_000  # 200 MB of float32; a digit model has well under a million


@dataclass(frozen=True)
class Contract:
    """What a model file must be for its use: the input shapes it may declare, its output."""

    inputs: tuple[tuple, ...]  # None: any size along that axis
    output: tuple
    needed: str  # the user-facing phrase naming the contract


DIGIT_MODEL = Contract(((28, 28, 1), (28, 28)), (CLASSES,), "this program needs 28×28×1 → 10")
# The string model reads a line of any width, one frame per few columns: ten digits and the blank.
STRING_MODEL = Contract(
    ((28, None, 1),), (1, None, CLASSES + 1), "a string model needs 28×any×1 → 1×any×11"
)


# --- reading the file: the layer list, its whitelist ---


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
        weights = Weights(sealed, _layer_name(entry))
        new_ops, shape = LAYER_BUILDERS[entry["class_name"]](entry["config"], weights, shape)
        parameters += sum(op.kernel.size for op in new_ops if isinstance(op, engine.Linear))
        if parameters > MAX_PARAMETERS or values_per_example(shape) > MAX_VALUES_PER_IMAGE:
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
