"""The reading API: pictures — files, bytes or Pillow images — in, Readings out.

    reader = Reader.load()                      # bestmodel.h5 and stringmodel.h5 beside the package
    reader.read_image(Image.open("a.png"))      # a Reading
    reader.read_bytes(data)                     # ImageError when it is not a usable picture
    for result in reader.read_files(paths):     # FileReading(path, reading, error), in order
        ...

Every front end reads through here: `interface.py`, the drawing board and the notebook's
"Try it". For many files, finding the digits in each picture (milliseconds, the string model
included) is shared out to worker processes, one per usable core, and the digits of many pictures
then go through the digit model together, in batches.
"""

import os
import stat
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from digits.cpu import usable_cores
from digits.paths import DEFAULT_MODEL, DEFAULT_STRING_MODEL
from digits.reading.ctc import StringModel
from digits.reading.images import ImageError, open_image
from digits.reading.keras_file import CLASSES, Classifier
from digits.reading.readings import Reading, reading_from
from digits.reading.segment import DigitImage, find_digits

# What a folder stands for: its files with these extensions (hidden files skipped).
PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
PICTURE_SUFFIXES |= {".pgm", ".ppm", ".pbm"}
BATCH_DIGITS = 256  # digits sent through the network together; results come out per batch
PICTURES_PER_WORKER = 50  # fewer pictures than this per worker process are not worth starting it
# A pipe or device is read into memory before Pillow sees it (Pillow would copy it whole anyway):
# far more than any picture of digits needs, yet a bound on the memory an endless stream takes.
STREAM_LIMIT_BYTES = 64 * 2**20
# A digit the string model split off a group, but is less sure of than this (its top
# probability), is read by the digit model too. Its pixels hold pieces of the neighbours it
# touched or overlapped, so the digit model's word counts at half weight (the square root of
# its probabilities). On 4,800 composed numbers (seeds 1, 3, 5, 7) misses of touching numbers
# went from 36 to 29, of overlapping ones from 69 to 63; full weight, or every split digit,
# helps touching numbers more but misreads overlapping ones (125 misses when all count fully).
UNSURE_SPLIT = 0.8
SPLIT_DIGIT_MODEL_WEIGHT = 0.5


@dataclass(frozen=True)
class FileReading:
    """One input's outcome: its Reading, or why it could not be read (one line)."""

    path: Path
    reading: Reading | None
    error: str | None


class Reader:
    """Reads the digits in pictures with a digit classifier and the string model that splits
    touching digits (and reads lone ones beside the classifier); threads may share one."""

    def __init__(self, classifier: Classifier, string_model: StringModel):
        self.classifier = classifier
        self.string_model = string_model

    @classmethod
    def load(cls, model_path=DEFAULT_MODEL, string_model_path=DEFAULT_STRING_MODEL) -> "Reader":
        """A reader with the models in these files; ModelError (one line) when one is unusable."""
        return cls(Classifier.load(model_path), StringModel.load(string_model_path))

    def read_image(self, image: Image.Image) -> Reading:
        """Every digit in a Pillow picture, left to right."""
        return self.read_digit_images([find_digits(image, self.string_model)])[0]

    def read_bytes(self, data: bytes) -> Reading:
        """Every digit in an encoded picture (PNG, JPEG …); ImageError when it is unusable."""
        return self.read_image(open_image(data))

    def read_files(self, paths: Iterable[str | os.PathLike]) -> Iterator[FileReading]:
        """A FileReading per picture, in order: a folder stands for the pictures in it."""
        pending, pending_digits = [], 0
        for loaded in _loaded_inputs([Path(path) for path in paths], self.string_model):
            pending.append(loaded)
            pending_digits += len(loaded[1] or ())
            if pending_digits >= BATCH_DIGITS:
                yield from self._read_batch(pending)
                pending, pending_digits = [], 0
        yield from self._read_batch(pending)

    def read_digit_images(self, pictures: list[list[DigitImage]]) -> list[Reading]:
        """The Readings of many pictures' digits (from find_digits), batched through the model.
        Where both models read a digit their probabilities are combined (_combined): a whole
        group the string model read as one digit, and a digit it split off but is unsure of;
        a digit it split off and is sure of keeps its probabilities."""
        unread = [
            digit.pixels for digits in pictures for digit in digits if _needs_digit_model(digit)
        ]
        classified = iter(
            self.classifier.probabilities(np.stack(unread)) if unread else np.empty((0, CLASSES))
        )
        readings = []
        for digits in pictures:
            rows = [
                _probabilities(digit, next(classified) if _needs_digit_model(digit) else None)
                for digit in digits
            ]
            readings.append(reading_from(digits, rows))
        return readings

    def _read_batch(self, pending: list) -> Iterator[FileReading]:
        readable = [digits for _, digits, error in pending if error is None]
        readings = iter(self.read_digit_images(readable))
        for path, _, error in pending:
            yield FileReading(path, next(readings) if error is None else None, error)


def _needs_digit_model(digit: DigitImage) -> bool:
    """Whether the digit model reads this digit: unless the string model split it off a group
    and is sure of it."""
    return digit.probabilities is None or float(digit.probabilities.max()) < UNSURE_SPLIT


def _probabilities(digit: DigitImage, digit_model: np.ndarray | None) -> np.ndarray:
    """A digit's ten probabilities from the string model's and the digit model's readings."""
    if digit.probabilities is None:
        return _combined(digit_model, digit.string_reading)
    if digit_model is None:
        return digit.probabilities
    return _combined(digit.probabilities, digit_model, SPLIT_DIGIT_MODEL_WEIGHT)


def _combined(first: np.ndarray, second: np.ndarray | None, weight: float = 1.0) -> np.ndarray:
    """One digit's probabilities from two models' readings, the second (if any) raised to its
    weight: their normalised product (independent witnesses, uniform prior); the first alone
    where they contradict each other outright."""
    if second is None:
        return first
    product = first.astype(np.float64) * second.astype(np.float64) ** weight
    if product.sum() <= 0:
        return first
    return (product / product.sum()).astype(np.float32)


def describe_os_error(error: OSError) -> str:
    """An OSError as a user-facing phrase, e.g. "no such file or directory"."""
    reason = error.strerror or str(error)
    return reason[:1].lower() + reason[1:]


def picture_files(path: Path) -> list[tuple[Path, str | None]]:
    """The inputs an argument stands for, as (path, error): a folder's pictures, or itself."""
    if not path.is_dir():
        return [(path, None)]
    try:
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except OSError as error:
        return [(path, describe_os_error(error))]
    pictures = [
        Path(entry.path)
        for entry in entries
        if not entry.name.startswith(".")
        and os.path.splitext(entry.name)[1].lower() in PICTURE_SUFFIXES
        and entry.is_file()
    ]
    if not pictures:
        return [(path, "a folder without picture files")]
    return [(picture, None) for picture in pictures]


def _loaded_inputs(paths: list[Path], string_model: StringModel):
    """(path, its DigitImages or None, error or None) of every input, in order. Finding the digits
    in a picture is the slow part, so many pictures are shared out to worker processes."""
    inputs = [item for path in paths for item in picture_files(path)]
    workers = min(len(inputs) // PICTURES_PER_WORKER, usable_cores())
    if workers < 2:
        yield from (_load_input(item, string_model) for item in inputs)
        return
    import multiprocessing

    with multiprocessing.Pool(workers, _start_worker, (string_model,)) as pool:
        yield from pool.imap(_load_input_in_worker, inputs, chunksize=8)


# A worker process's string model, given once when it starts (a pool task must be a picklable
# function, and pickling the model with every task would cost more than reading the picture).
_worker_string_model: StringModel | None = None


def _start_worker(string_model: StringModel) -> None:
    """In worker processes: Ctrl-C is the main process's to handle (it stops the workers)."""
    import signal

    global _worker_string_model
    _worker_string_model = string_model
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _load_input_in_worker(item: tuple[Path, str | None]) -> tuple[Path, list | None, str | None]:
    return _load_input(item, _worker_string_model)


def _load_input(
    item: tuple[Path, str | None], string_model: StringModel
) -> tuple[Path, list | None, str | None]:
    path, error = item
    if error is not None:
        return path, None, error
    try:
        return path, _digits_in_file(path, string_model), None
    except ImageError as error:
        return path, None, str(error)
    except OSError as error:
        return path, None, describe_os_error(error)
    except Exception as error:  # one odd file must not stop the others
        first_line = (str(error).splitlines() or [""])[0]
        return path, None, f"could not be read ({type(error).__name__}: {first_line})"


def _digits_in_file(path: Path, string_model: StringModel) -> list[DigitImage]:
    """The digits in one picture file; raises ImageError or OSError when it cannot be read."""
    # Library warnings (e.g. Pillow on an odd TIFF tag) would print two lines of Python on
    # standard error; a picture that cannot be used raises instead. open_image still turns
    # Pillow's decompression-bomb warning into an error: its own filter comes first.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open(path, "rb") as file:
            image = open_image(_picture_source(file))
        return find_digits(image, string_model)


def _picture_source(file):
    """What open_image reads: a regular file itself, or the bytes of a pipe or device, at most
    STREAM_LIMIT_BYTES of them; raises ImageError for an empty file or a longer stream."""
    status = os.fstat(file.fileno())
    if stat.S_ISREG(status.st_mode):
        if status.st_size == 0:
            raise ImageError("an empty file (0 bytes)")
        return file
    data = file.read(STREAM_LIMIT_BYTES + 1)
    if len(data) > STREAM_LIMIT_BYTES:
        limit = STREAM_LIMIT_BYTES // 2**20
        raise ImageError(f"more than {limit} MB from a pipe or device; save it to a file first")
    if not data:
        raise ImageError("nothing came from the pipe or device (0 bytes)")
    return data
