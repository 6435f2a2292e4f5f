"""Where the time of an `interface.py` call goes: its work on a folder of pictures redone in one
process, stage by stage, each stage timed over all the files.

    PYTHONPATH=. python bench/stages.py FOLDER [--model PATH] [--launched EPOCH_SECONDS]

Prints one JSON object: seconds per stage. Start-up runs from --launched (when the parent
started this process) to the model being loaded; without it, from the first import.
Finding ink is digits.reading.ink.analyse, normalising is digits.reading.mnist_style.to_mnist,
and splitting is the rest of segment.find_digits. It is run as a file, not as a module, and
imports nothing from `bench`, so that it profiles whichever checkout of `digits` comes first on
PYTHONPATH: bench.throughput runs it on the code before a change too (--before).
"""

import argparse
import io
import json
import os
import time
from pathlib import Path

STAGES = ("start-up", "decoding", "finding ink", "splitting", "normalising", "engine", "output")


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
    clock.seconds["start-up"] = time.time() - started

    # find_digits calls these through its module's names: wrapping them there times them.
    segment.analyse = clock.timing("finding ink", segment.analyse)
    segment.to_mnist = clock.timing("normalising", segment.to_mnist)
    decode = clock.timing("decoding", lambda path: open_image(path.read_bytes()))
    find = clock.timing("splitting", segment.find_digits)
    pictures = [find(decode(path)) for path in picture_paths(folder)]
    clock.seconds["splitting"] -= clock.seconds["finding ink"] + clock.seconds["normalising"]

    images = [digit.pixels for digits in pictures for digit in digits]
    engine = clock.timing("engine", batched_probabilities)
    probabilities = engine(classifier, images, BATCH_DIGITS)
    clock.timing("output", write_readings)(pictures, probabilities, reading_from)
    return {"pictures": len(pictures), "digits": len(images), "seconds": clock.seconds}


def batched_probabilities(classifier, images, batch):
    """The digits' probabilities, `batch` digits at a time, as the reader sends them."""
    import numpy as np

    batches = [
        classifier.probabilities(np.stack(images[start : start + batch]))
        for start in range(0, len(images), batch)
    ]
    return np.concatenate(batches) if batches else np.empty((0, 10), np.float32)


def write_readings(pictures, probabilities, reading_from):
    """The --json lines of every picture, written to memory (the terminal is not measured)."""
    sink, start = io.StringIO(), 0
    for index, digits in enumerate(pictures):
        reading = reading_from(digits, probabilities[start : start + len(digits)])
        start += len(digits)
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
