"""Reading digits in pictures: numpy, Pillow, scipy and h5py only — never TensorFlow.

    open → ink → printed lines removed → groups of ink → split by the string model
         → MNIST-style 28×28 → engine → Reading

`Reader` (reader.py) is the one entry point every front end uses. The modules, in data order:
images (opening files), ink (the ink map), printing (printed lines), segment (groups of ink),
numbers and ctc (splitting groups with the string model), mnist_style (the MNIST normalisation),
keras_file and keras_layers (the safe model-file reader and its layer whitelist, with
hdf5_safety: no pointer out of the file is followed), engine (the numpy network), readings
(results and their JSON shape).
"""

from digits.reading.engine import ModelError
from digits.reading.images import ImageError, open_image
from digits.reading.reader import FileReading, Reader
from digits.reading.readings import DigitReading, Reading

__all__ = [
    "DigitReading",
    "FileReading",
    "ImageError",
    "ModelError",
    "Reader",
    "Reading",
    "open_image",
]
