"""Throughput: many picture files through one call of interface.py, and the MNIST test digits
through the in-process prediction API (digits.reading.keras_file.Classifier, numpy) against Keras's
model.predict on the same model file (the reference).

The picture files are MNIST test digits saved as 28×28 PNGs, inverted to dark ink on light paper,
and realistic single-digit pictures (bench.breakdown: scans and drawings, 20–360 px, PNG and
JPEG), each set in a temporary folder that is passed to interface.py as one argument; the call's
wall time includes its start-up. The realistic call is measured against merely decoding the
same files with Pillow in one process (the reference). Where a call's time goes is profiled stage
by stage (bench/stages.py), also on the code of an older commit with --before COMMIT, and drawn
as throughput_stages.png. In process, each engine first gets one untimed warm-up call; ours is
timed before TensorFlow is imported, so TensorFlow's threads cannot slow it.

    python -m bench.throughput [--before COMMIT]
"""

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.breakdown import (
    FIGURE,
    checkout,
    decoding_seconds,
    draw_stages,
    stage_seconds,
    stages_table,
    write_realistic_digits,
)
from bench.common import (
    REPO,
    add_model_option,
    add_setting,
    finish,
    interface_command,
    load_test_digits,
    markdown_table,
    parse,
    parser_for,
    percent,
    progress,
    ratio,
    recorded_path,
    run_child,
    times,
    write_paper_digits,
)

NAME = "throughput"
FULL = dict(files="1000,10000", realistic=1000, api_images=10_000, repeats=3)
QUICK = dict(files="1000", realistic=1000, api_images=10_000, repeats=2)
DRY_RUN = dict(files="20", realistic=12, api_images=200, repeats=1)
REALISTIC_SEED = 15
KERAS_BATCH = 1024  # the notebook's evaluation batch; larger batches do not help on a CPU
EXIT_NO_DIGIT = 3  # interface.py: some picture held no digit; a legitimate reading


def build_parser():
    parser = parser_for(NAME, __doc__.split("\n\n")[0], FULL, QUICK, DRY_RUN)
    add_setting(
        parser, "--files", str, "comma-separated counts of files, one interface.py call each"
    )
    add_setting(parser, "--realistic", int, "realistic single-digit pictures, one call")
    add_setting(parser, "--api-images", int, "test digits through the in-process APIs")
    add_setting(parser, "--repeats", int, "timed in-process passes of each engine (median)")
    add_model_option(parser)
    parser.add_argument(
        "--before",
        metavar="COMMIT",
        help="the commit before a change: its code's calls are profiled stage by stage too "
        "(default: none, the code now only)",
    )
    return parser


def file_counts(text):
    return [int(count) for count in text.split(",") if count.strip()]


def cli_throughput(model, images, labels, folder):
    """One interface.py call on a folder of len(images) pictures: time, images/s, accuracy."""
    progress(f"writing {len(images):,} picture files, then one interface.py call ...")
    write_paper_digits(images, folder)
    child = run_child(
        interface_command(model, "--json", folder), "interface.py", ok=(0, EXIT_NO_DIGIT)
    )
    readings = [json.loads(line) for line in child.stdout.splitlines() if line.strip()]
    predicted = {Path(r["file"]).stem: r.get("prediction") for r in readings}
    correct = sum(predicted.get(f"{i:05d}") == str(label) for i, label in enumerate(labels))
    return {
        "files": len(images),
        "seconds": child.seconds,
        "images_per_second": len(images) / child.seconds,
        "answered": len(readings),
        "accuracy": correct / len(images),
    }


def realistic_throughput(model, count, folder, repeats):
    """One interface.py call on `count` realistic pictures against decoding the same files."""
    progress(f"writing {count:,} realistic pictures, then one interface.py call ...")
    labels = write_realistic_digits(count, folder, REALISTIC_SEED)
    decoding = decoding_seconds(folder, repeats)
    child = run_child(
        interface_command(model, "--json", folder), "interface.py", ok=(0, EXIT_NO_DIGIT)
    )
    readings = [json.loads(line) for line in child.stdout.splitlines() if line.strip()]
    predicted = {Path(r["file"]).stem: r.get("prediction") for r in readings}
    correct = sum(predicted.get(name) == text for name, text in labels.items())
    return {
        "files": count,
        "seconds": child.seconds,
        "images_per_second": count / child.seconds,
        "answered": len(readings),
        "accuracy": correct / count,
        "decoding_seconds": decoding,
        "decoding_ratio": ratio(child.seconds, decoding),
    }


def profile_stages(model, folders, before, scratch):
    """Seconds per stage of a call on each folder (label → folder), now and, given an older
    commit, before (its code extracted into `scratch`)."""
    codes = {"now": REPO}
    if before is not None:
        codes = {"before": checkout(before, scratch), **codes}
    return {
        label: {code: stage_seconds(folder, model, path) for code, path in codes.items()}
        for label, folder in folders.items()
    }


def stage_profiles_by_bar(stages):
    """The stage profiles as one bar each, labelled e.g. "realistic 1,000, now"."""
    return {
        f"{label}, {code}": profile
        for label, by_code in stages.items()
        for code, profile in by_code.items()
    }


def timed(function, repeats):
    """Median wall seconds of `repeats` calls, and the last call's result."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), samples, result


def api_throughput(model, images, labels, repeats):
    """Images/s of Classifier.probabilities, then of Keras model.predict, on the same images."""
    from digits.reading.keras_file import Classifier

    progress(f"in process: {len(images):,} digits, {repeats} timed passes per engine ...")
    pixels = images.astype(np.float32) / 255.0
    classifier = Classifier.load(model)
    classifier.probabilities(pixels[:64])
    ours_seconds, ours_samples, ours = timed(lambda: classifier.probabilities(pixels), repeats)

    import keras  # only now: TensorFlow's threads must not run while ours is timed

    keras_model = keras.models.load_model(model, compile=False)
    batch = pixels[..., np.newaxis]
    keras_model.predict(batch[:KERAS_BATCH], batch_size=KERAS_BATCH, verbose=0)
    keras_seconds, keras_samples, reference = timed(
        lambda: keras_model.predict(batch, batch_size=KERAS_BATCH, verbose=0), repeats
    )

    def engine(seconds, samples, probabilities):
        return {
            "seconds": seconds,
            "samples": samples,
            "images_per_second": len(images) / seconds,
            "accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
        }

    return {
        "images": len(images),
        "ours": engine(ours_seconds, ours_samples, ours),
        "keras": engine(keras_seconds, keras_samples, reference),
        "speed_ratio": ratio(keras_seconds, ours_seconds),
        "max_probability_difference": float(np.abs(ours - reference).max()),
        "same_digit": float((ours.argmax(axis=1) == reference.argmax(axis=1)).mean()),
        "keras_batch_size": KERAS_BATCH,
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def table(cli, realistic, api):
    rows = [
        (
            f"`interface.py` on {run['files']:,} files, one call",
            f"{run['seconds']:.2f} s",
            f"{run['images_per_second']:,.0f}",
            percent(run["accuracy"]),
        )
        for run in cli
    ]
    files = f"{realistic['files']:,}"
    rows += [
        (
            f"`interface.py` on {files} realistic pictures, one call",
            f"{realistic['seconds']:.2f} s",
            f"{realistic['images_per_second']:,.0f}",
            percent(realistic["accuracy"]),
        ),
        (
            f"decoding the same {files} files with Pillow, one process (reference)",
            f"{realistic['decoding_seconds']:.2f} s",
            "",
            "",
        ),
        ("realistic call / decoding", times(realistic["decoding_ratio"]), "", ""),
    ]
    count = f"{api['images']:,}"
    for key, label in (
        ("ours", "Classifier.probabilities (ours)"),
        ("keras", f"Keras model.predict, batch {KERAS_BATCH} (reference)"),
    ):
        engine = api[key]
        rows.append(
            (
                f"{label}, {count} digits in process",
                f"{engine['seconds']:.2f} s",
                f"{engine['images_per_second']:,.0f}",
                percent(engine["accuracy"]),
            )
        )
    rows.append(("in process, ours / Keras images/s", times(api["speed_ratio"]), "", ""))
    return markdown_table(["what", "wall time", "images/s", "accuracy"], rows)


def main(argv=None):
    parser = build_parser()
    args, mode, output = parse(parser, argv)
    counts = file_counts(mode.settings["files"])
    images, labels = load_test_digits(max([*counts, mode.settings["api_images"]]))
    repeats = mode.settings["repeats"]
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as folder:
        folder = Path(folder)
        cli = [cli_throughput(args.model, images[:n], labels[:n], folder / str(n)) for n in counts]
        count = mode.settings["realistic"]
        realistic = realistic_throughput(args.model, count, folder / "realistic", repeats)
        profiled = {f"realistic {count:,}": folder / "realistic"}
        if counts:
            profiled[f"MNIST {counts[0]:,}"] = folder / str(counts[0])
        stages = profile_stages(args.model, profiled, args.before, folder / "before")
    api_count = mode.settings["api_images"]
    api = api_throughput(args.model, images[:api_count], labels[:api_count], repeats)
    bars = stage_profiles_by_bar(stages)
    draw_stages(bars, output / FIGURE)
    results = {
        "cli": cli,
        "realistic": realistic,
        "stages": stages,
        "api": api,
        "figure": FIGURE,
        "model": recorded_path(args.model),
    }
    finish(NAME, mode, output, results, table(cli, realistic, api) + "\n\n" + stages_table(bars))


if __name__ == "__main__":
    main()
