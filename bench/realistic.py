"""Reading realistic pictures: generated photos, scans and drawings of single digits and whole
numbers (tests/pictures.py: several fonts, pen strokes, paper texture, uneven light, shadows,
JPEG noise, transparent canvases, coloured ink, chalk on a board), read exactly as
`interface.py` reads them, against the tutorial way (the whole picture made grey and resized to
28×28) with the same model.

Reported: the share of single digits and of whole numbers read exactly, and the misreadings.

    python -m bench.realistic
"""

import numpy as np
from PIL import Image

from bench.common import (
    add_model_option,
    add_setting,
    finish,
    markdown_table,
    parse,
    parser_for,
    percent,
    progress,
    recorded_path,
)
from digits.reading import Reader
from digits.synthetic.pictures import realistic_samples

NAME = "realistic"
FULL = dict(pictures=600, seed=11)
QUICK = dict(pictures=200, seed=11)
DRY_RUN = dict(pictures=12, seed=11)


def build_parser():
    parser = parser_for(NAME, __doc__.split("\n\n")[0], FULL, QUICK, DRY_RUN)
    add_setting(parser, "--pictures", int, "generated pictures, about half single digits")
    add_setting(parser, "--seed", int, "seed of the picture generator")
    add_model_option(parser)
    return parser


def tutorial_reading(classifier, picture):
    """What a tutorial script reads: the whole picture, grey, resized to 28×28, one digit."""
    grey = picture.convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    probabilities = classifier.probabilities(np.asarray(grey, np.float32)[np.newaxis] / 255)
    return str(int(probabilities.argmax()))


def score(samples, readings):
    """Share read exactly among single digits and among numbers, and the misreadings."""
    singles = [
        read == text for (_, text), read in zip(samples, readings, strict=True) if len(text) == 1
    ]
    numbers = [
        read == text for (_, text), read in zip(samples, readings, strict=True) if len(text) > 1
    ]
    misread = [
        (text, read) for (_, text), read in zip(samples, readings, strict=True) if read != text
    ]
    return {
        "single_digits": len(singles),
        "single_digits_read": sum(singles),
        "numbers": len(numbers),
        "numbers_read": sum(numbers),
        "misread": [{"text": text, "read": read} for text, read in misread],
    }


def share(result, kind):
    total = result[kind]
    return (result[f"{kind}_read"] / total) if total else float("nan")


def table(ours, tutorial):
    rows = [
        (
            "single digits read exactly",
            f"{percent(share(ours, 'single_digits'))} ({ours['single_digits_read']}/"
            f"{ours['single_digits']})",
            f"{percent(share(tutorial, 'single_digits'))} ({tutorial['single_digits_read']}/"
            f"{tutorial['single_digits']})",
        ),
        (
            "whole numbers read exactly",
            f"{percent(share(ours, 'numbers'))} ({ours['numbers_read']}/{ours['numbers']})",
            "– (reads one digit per picture)",
        ),
    ]
    return markdown_table(
        ["realistic pictures", "ours (interface.py)", "tutorial resize (reference)"], rows
    )


def main(argv=None):
    parser = build_parser()
    args, mode, output = parse(parser, argv)
    reader = Reader.load(args.model)
    progress(f"generating {mode.settings['pictures']} pictures ...")
    samples = realistic_samples(mode.settings["pictures"], seed=mode.settings["seed"])
    ours = score(samples, [reader.read_image(picture).prediction for picture, _ in samples])
    tutorial = score(
        samples, [tutorial_reading(reader.classifier, picture) for picture, _ in samples]
    )
    results = {"ours": ours, "tutorial": tutorial, "model": recorded_path(args.model)}
    finish(NAME, mode, output, results, table(ours, tutorial))


if __name__ == "__main__":
    main()
