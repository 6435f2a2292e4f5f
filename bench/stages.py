"""Where the time of an `interface.py` call goes: its work on a folder of pictures redone in one
process, stage by stage, each stage timed over all the files.

    PYTHONPATH=. python bench/stages.py FOLDER [--model PATH] [--launched EPOCH_SECONDS]

Prints one JSON object: seconds per stage. Start-up runs from --launched (when the parent
started this process) to the model being loaded; without it, from the first import.
Finding ink is digits.reading.ink.analyse, normalising is digits.reading.mnist_style.to_mnist,
the string model is digits.reading.numbers.split_groups (the string model reading each row; none
before it existed), and splitting is the rest of segment.find_digits. It is run as a file, not as
a module, and imports nothing from `bench`, so that it profiles whichever checkout of `digits`
comes first on PYTHONPATH: bench.throughput runs it on the code before a change too (--before).
"""

import argparse
import io
import json
import os
import time
from pathlib import Path

STAGES = (
    "start-up",
    "decoding",
    "finding ink",
    "splitting",
    "string model",
    "normalising",
    "engine",
    "output",
)


class Clock:
    """Seconds spent per stage, accumulated."""

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def timing(self, stage, function):
        """`function`, wrapped to add the time of each call to `stage`."""

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - started

        return timed


def picture_paths(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_file())


def profile(folder: Path, model: Path, launched: float | None) -> dict:
    clock = Clock()
    started = time.time() if launched is None else launched
    from digits.reading import segment
    from digits.reading.images import open_image
    from digits.reading.keras_file import Classifier
    from digits.reading.reader import BATCH_DIGITS
    from digits.reading.readings import reading_from

    classifier = Classifier.load(model)
    string_model = load_string_model(model)
    clock.seconds["start-up"] = time.time() - started

    # find_digits calls these through its module's names: wrapping them there times them.
    segment.analyse = clock.timing("finding ink", segment.analyse)
    segment.to_mnist = clock.timing("normalising", segment.to_mnist)
    if string_model is not None:
        segment.split_groups = clock.timing("string model", segment.split_groups)
    decode = clock.timing("decoding", lambda path: open_image(path.read_bytes()))
    arguments = () if string_model is None else (string_model,)
    find = clock.timing("splitting", lambda image: segment.find_digits(image, *arguments))
    pictures = [find(decode(path)) for path in picture_paths(folder)]
    inner = ("finding ink", "normalising", "string model")
    clock.seconds["splitting"] -= sum(clock.seconds[stage] for stage in inner)

    unread = [d.pixels for digits in pictures for d in digits if preset(d) is None]
    engine = clock.timing("engine", batched_probabilities)
    probabilities = iter(engine(classifier, unread, BATCH_DIGITS))
    rows = [[next(probabilities) if preset(d) is None else preset(d) for d in p] for p in pictures]
    clock.timing("output", write_readings)(pictures, rows, reading_from)
    digits = sum(len(digits) for digits in pictures)
    counts = {"pictures": len(pictures), "digits": digits, "digits_for_the_engine": len(unread)}
    return {**counts, "seconds": clock.seconds}


def load_string_model(model: Path):
    """The string model beside the digit model, or None in code from before it existed."""
    try:
        from digits.reading.ctc import StringModel
    except ImportError:
        return None
    return StringModel.load(model.parent / "stringmodel.h5")


def preset(digit):
    """The probabilities the string model gave a digit it split off (None: the engine reads it)."""
    return getattr(digit, "probabilities", None)


def batched_probabilities(classifier, images, batch):
    """The digits' probabilities, `batch` digits at a time, as the reader sends them."""
    import numpy as np

    batches = [
        classifier.probabilities(np.stack(images[start : start + batch]))
        for start in range(0, len(images), batch)
    ]
    return np.concatenate(batches) if batches else np.empty((0, 10), np.float32)


def write_readings(pictures, rows, reading_from):
    """The --json lines of every picture, written to memory (the terminal is not measured)."""
    sink = io.StringIO()
    for index, (digits, probabilities) in enumerate(zip(pictures, rows, strict=True)):
        reading = reading_from(digits, probabilities)
        sink.write(json.dumps(reading.to_json(f"{index:05d}"), ensure_ascii=False) + "\n")
    return sink.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", type=Path, default=Path("bestmodel.h5"))
    parser.add_argument("--launched", type=float, help="when the parent started this process")
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as interface.py runs
    print(json.dumps(profile(args.folder, args.model, args.launched)))


if __name__ == "__main__":
    main()
