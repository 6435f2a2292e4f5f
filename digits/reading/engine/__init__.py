"""The numpy engine that runs a digit network, fast.

Importing TensorFlow alone takes seconds, so the command line runs the trained networks itself.
`digits.reading.keras_file` builds the operations (layers) from a Keras .h5 file; `Network`
folds batch normalisation into the preceding layer, lets each convolution finish with its ReLU
and 2×2 max pooling, binds the operations to buffers made once per input shape (a string
model's lines of any width each get theirs) and runs a batch in chunks, on one thread per core.
3×3 convolutions run as Winograd F(4×4, 3×3), any other as one matrix product over image
patches (convolution). Answers match Keras's `model.predict` to about 1e-6 (float32
throughout).
"""

from digits.reading.engine.core import ACTIVATIONS, ModelError, geometry
from digits.reading.engine.layers import (
    Activation,
    Affine,
    Conv2D,
    Flatten,
    GlobalAveragePool,
    Linear,
    Pool,
    ReLU,
)
from digits.reading.engine.network import Network

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Affine",
    "Conv2D",
    "Flatten",
    "GlobalAveragePool",
    "Linear",
    "ModelError",
    "Network",
    "Pool",
    "ReLU",
    "geometry",
]
