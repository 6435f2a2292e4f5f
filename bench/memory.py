"""Peak memory (resident set size) of training and of one command-line call, ours against the
references.

Every measured program runs in its own child process, and its peak RSS is the one the kernel
reports for that child alone when it exits (os.wait4), so it includes the Python interpreter,
the libraries and the data:
- training: `python -m bench.train_once ours|reference`, one epoch each on the full training
  data (by default) and a test evaluation: the notebook's training against the Keras example.
- one call: `python interface.py image.png` against bench/tutorial_predict.py (Keras), both
  reading the same picture with the same model.

    python -m bench.memory
"""

import statistics
import sys
import tempfile

from bench.common import (
    add_model_option,
    add_setting,
    finish,
    interface_command,
    load_test_digits,
    markdown_table,
    parse,
    parser_for,
    plural,
    progress,
    ratio,
    recorded_path,
    run_child,
    times,
    tutorial_command,
    write_paper_digits,
)

NAME = "memory"
FULL = dict(epochs=1, train_subset=None, test_subset=None, cli_runs=3)
QUICK = dict(epochs=1, train_subset=10_000, test_subset=None, cli_runs=2)
DRY_RUN = dict(epochs=1, train_subset=512, test_subset=500, cli_runs=1)


def build_parser():
    parser = parser_for(NAME, __doc__.split("\n\n")[0], FULL, QUICK, DRY_RUN)
    add_setting(parser, "--epochs", int, "epochs of each training")
    add_setting(parser, "--train-subset", int, "random training images; None = all 60,000")
    add_setting(parser, "--test-subset", int, "first N test images; None = all 10,000")
    add_setting(parser, "--cli-runs", int, "runs of each command-line program (median, max)")
    add_model_option(parser, "the Keras .h5 model the command-line programs load")
    return parser


def training_command(contender, settings):
    command = [sys.executable, "-m", "bench.train_once", contender, "--epochs", settings["epochs"]]
    for key in ("train_subset", "test_subset"):
        if settings[key]:
            command += [f"--{key.replace('_', '-')}", settings[key]]
    return command


def training_memory(settings):
    """Peak RSS (MiB) and wall time of one training of each contender, reference first."""
    measured = {}
    for contender in ("reference", "ours"):
        progress(f"training {contender} in a child process ...")
        child = run_child(training_command(contender, settings), f"{contender} training")
        measured[contender] = {"peak_rss_mib": child.peak_rss_mib, "seconds": child.seconds}
    return measured


def cli_memory(model, image, runs):
    """Peak RSS (MiB) of each command-line program, alternating, `runs` times each."""
    commands = {
        "tutorial": tutorial_command(model, image),
        "interface": interface_command(model, image),
    }
    progress(f"{runs} runs of each command-line program ...")
    samples = {program: [] for program in commands}
    for _ in range(runs):
        for program, command in commands.items():
            samples[program].append(run_child(command, program).peak_rss_mib)
    return {
        program: {
            "median_mib": statistics.median(values),
            "max_mib": max(values),
            "samples_mib": values,
        }
        for program, values in samples.items()
    }


def table(training, cli, settings):
    images = f"{settings['train_subset']:,}" if settings["train_subset"] else "60,000"
    epochs = plural(settings["epochs"], "epoch")
    reference, ours = training["reference"]["peak_rss_mib"], training["ours"]["peak_rss_mib"]
    tutorial, interface = cli["tutorial"]["median_mib"], cli["interface"]["median_mib"]
    rows = [
        (
            f"training, {epochs} on {images} images (child process)",
            f"{reference:,.0f} MiB",
            f"{ours:,.0f} MiB",
            times(ratio(ours, reference)),
        ),
        (
            "one call on one picture (median): tutorial script vs `interface.py`",
            f"{tutorial:,.0f} MiB",
            f"{interface:,.0f} MiB",
            times(ratio(interface, tutorial)),
        ),
    ]
    return markdown_table(["peak RSS", "reference", "ours", "ours / reference"], rows)


def main(argv=None):
    parser = build_parser()
    args, mode, output = parse(parser, argv)
    settings = mode.settings
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        digits, _ = load_test_digits(1)
        image = write_paper_digits(digits, folder, ["image.png"])[0]
        cli = cli_memory(args.model, image, settings["cli_runs"])
    training = training_memory(settings)
    results = {
        "training": training,
        "training_ratio": ratio(
            training["ours"]["peak_rss_mib"], training["reference"]["peak_rss_mib"]
        ),
        "cli": cli,
        "cli_ratio": ratio(cli["interface"]["median_mib"], cli["tutorial"]["median_mib"]),
        "model": recorded_path(args.model),
        "method": "peak RSS of each child process, from os.wait4 when it exits",
    }
    finish(NAME, mode, output, results, table(training, cli, settings))


if __name__ == "__main__":
    main()
