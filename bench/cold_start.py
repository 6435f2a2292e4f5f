"""Cold start: `python interface.py image.png` against a tutorial-style Keras script
(bench/tutorial_predict.py: import Keras, load_model, resize to 28×28 grayscale, predict, print).

Each run is a fresh process, timed from launch to exit. The two programs alternate (ABBA order, so
a drift in the machine's load hits both alike) after one untimed warm-up run each, which fills the
file cache as a user's second run would find it. Reported: median, min/max and quartiles, ratio.

    python -m bench.cold_start
"""

import os
import tempfile
from pathlib import Path

from bench.common import (
    add_model_option,
    add_setting,
    finish,
    interface_command,
    load_test_digits,
    markdown_table,
    parse,
    parser_for,
    progress,
    ratio,
    recorded_path,
    run_child,
    spread,
    times,
    tutorial_command,
    write_paper_digits,
)

NAME = "cold_start"
TEST_DIGIT_IMAGE = "MNIST test digit 0 (a 7), inverted, 28×28 PNG"
FULL = dict(runs=9, warmups=1)
QUICK = dict(runs=5, warmups=1)
DRY_RUN = dict(runs=1, warmups=0)
PROGRAMS = ("interface", "tutorial")
LABELS = {
    "interface": "`python interface.py image.png` (ours)",
    "tutorial": "tutorial Keras script (reference)",
}


def build_parser():
    parser = parser_for(NAME, __doc__.split("\n\n")[0], FULL, QUICK, DRY_RUN)
    add_setting(parser, "--runs", int, "timed runs of each program")
    add_setting(parser, "--warmups", int, "untimed runs of each program first")
    add_model_option(parser, "the Keras .h5 model both programs load")
    parser.add_argument(
        "--image",
        type=Path,
        help="the picture both read (default: MNIST test digit 0, dark on light, as a PNG in a "
        "temporary folder)",
    )
    return parser


def commands(model, image):
    return {
        "interface": interface_command(model, image),
        "tutorial": tutorial_command(model, image),
    }


def alternate(count):
    """ABBA order: interface, tutorial, tutorial, interface, ..., `count` runs of each."""
    pairs = [PROGRAMS if index % 2 == 0 else PROGRAMS[::-1] for index in range(count)]
    return [program for pair in pairs for program in pair]


def measure(model, image, runs, warmups):
    """Wall seconds of each program's runs, and each program's output of its first run."""
    to_run = commands(model, image)
    progress(f"{warmups} warm-up and {runs} timed runs of each program ...")
    outputs = {}
    for program in alternate(warmups):
        outputs[program] = run_child(to_run[program], program).stdout.strip()
    samples = {program: [] for program in PROGRAMS}
    for program in alternate(runs):
        child = run_child(to_run[program], program)
        samples[program].append(child.seconds)
        outputs.setdefault(program, child.stdout.strip())
    return samples, {program: without_folder(text, image) for program, text in outputs.items()}


def without_folder(output, image):
    """A program's output with the picture's folder left out (`image.png: 7 (100.0%)`), so that
    the record holds no folder of the machine it ran on."""
    return output.replace(f"{Path(image).parent}{os.sep}", "")


def table(stats):
    rows = [
        (
            LABELS[program],
            f"{s['median']:.2f} s",
            f"{s['min']:.2f}–{s['max']:.2f} s",
            f"{s['q1']:.2f}–{s['q3']:.2f} s",
            len(s["samples"]),
        )
        for program, s in stats.items()
    ]
    speedup = ratio(stats["tutorial"]["median"], stats["interface"]["median"])
    rows.append(("tutorial / interface (medians)", times(speedup, 1), "", "", ""))
    return markdown_table(["program", "median", "min–max", "IQR", "runs"], rows)


def main(argv=None):
    parser = build_parser()
    args, mode, output = parse(parser, argv)
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as folder:
        image = args.image
        if image is None:
            digits, _ = load_test_digits(1)
            image = write_paper_digits(digits, folder, ["image.png"])[0]
        samples, outputs = measure(
            args.model, image, mode.settings["runs"], mode.settings["warmups"]
        )
    stats = {program: spread(samples[program]) for program in PROGRAMS}
    results = {
        **stats,
        "ratio": ratio(stats["tutorial"]["median"], stats["interface"]["median"]),
        "outputs": outputs,
        "model": recorded_path(args.model),
        "image": recorded_path(args.image) if args.image else TEST_DIGIT_IMAGE,
    }
    finish(NAME, mode, output, results, table(stats))


if __name__ == "__main__":
    main()
