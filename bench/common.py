"""What every benchmark shares: the command line, the run record
(machine, versions, date, commit, command), markdown tables, statistics, a clock that can be
paused, child processes and their peak memory, and MNIST digits written as picture files.

Nothing here imports TensorFlow, so the scripts that only time other programs start quickly.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from digits.cpu import machine
from digits.files import write_atomic
from digits.paths import DEFAULT_MODEL, REPOSITORY, recorded_path

# Quiet TensorFlow (here and in every child process); figures are drawn without a display.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = REPOSITORY
RESULTS = REPO / "bench" / "results"
INTERFACE = REPO / "interface.py"
TUTORIAL = REPO / "bench" / "tutorial_predict.py"
VERSIONED = {
    "python": None,
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "pillow": ("pillow",),
}


# --- command line -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """One of the three ways to run a benchmark, with its sizes."""

    name: str  # "full", "quick" or "dry-run"
    settings: dict


def parser_for(name, description, full, quick, dry_run):
    """An argument parser with --quick, --dry-run and --output; its epilog lists each mode's sizes.

    `full`, `quick` and `dry_run` map setting names to values; a script adds one option per
    setting (default None = the mode's value) with `add_setting`.
    """
    modes = "\n".join(
        f"  {label:<10}{', '.join(f'{key}={value}' for key, value in sizes.items())}"
        for label, sizes in (("full", full), ("--quick", quick), ("--dry-run", dry_run))
    )
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{name}",
        description=description,
        epilog=f"defaults of each mode (an option given explicitly wins):\n{modes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(modes={"full": full, "quick": quick, "dry-run": dry_run})
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes for a look in a minute or two; writes to bench/results/quick/",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="tiny sizes through the real code path, for CI; writes to a new temporary folder "
        "(or --output), never to bench/results",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="folder for the JSON (and figure) (default: bench/results; --quick: "
        "bench/results/quick; --dry-run: a new temporary folder)",
    )
    return parser


def add_setting(parser, option, kind, help_text):
    """An option whose default comes from the mode; the help names the full run's default."""
    key = option.lstrip("-").replace("-", "_")
    default = parser.get_default("modes")["full"][key]
    parser.add_argument(option, type=kind, help=f"{help_text} (default: {default}; see below)")


def add_model_option(parser, what="the Keras .h5 model"):
    """--model, the model file a benchmark reads; `what` says who loads it."""
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help=f"{what} (default: bestmodel.h5)"
    )


# How the training benchmarks name the two trainings in their tables and figure.
LABELS = {"reference": "Keras example (reference)", "ours": "ours (notebook)"}


def config_record(config):
    """The training settings of a run, as JSON (the model path relative to the repository)."""
    record = dataclasses.asdict(config)
    record["model_path"] = recorded_path(config.model_path)
    return record


def add_training_settings(parser, epochs_help):
    """The options both training benchmarks take: the epoch budget and the data subsets."""
    add_setting(
        parser,
        "--epochs",
        int,
        f"{epochs_help}; None = each its own: the recipe's epochs, the example's 15",
    )
    add_setting(
        parser,
        "--train-subset",
        int,
        "random training images (seeded); None = the recipe's train_subset (None = all 60,000)",
    )
    add_setting(parser, "--test-subset", int, "first N test images; None = all 10,000")


def parse(parser, argv=None):
    """(args, Mode, output folder) with each setting filled in from the mode unless given.

    A missing --model file is a usage error, found before anything runs or is written.
    """
    args = parser.parse_args(argv)
    if args.quick and args.dry_run:
        parser.error("--quick and --dry-run exclude each other")
    if getattr(args, "model", None) is not None and not args.model.is_file():
        parser.error(
            f"model {args.model} does not exist (train it with the notebook, or pass --model)"
        )
    name = "dry-run" if args.dry_run else "quick" if args.quick else "full"
    settings = dict(args.modes[name])
    for key in settings:
        given = getattr(args, key, None)
        if given is not None:
            settings[key] = given
    return args, Mode(name, settings), output_folder(parser, args, name)


def output_folder(parser, args, mode_name):
    """Where this run writes: --output, else bench/results (or its quick/ folder, or a temp one)."""
    if args.output is not None:
        folder = args.output.resolve()
        if mode_name == "dry-run" and folder.is_relative_to(RESULTS):
            parser.error("--dry-run never writes to bench/results; choose another --output")
    elif mode_name == "dry-run":
        folder = Path(tempfile.mkdtemp(prefix="bench-dry-run-"))
    elif mode_name == "quick":
        folder = RESULTS / "quick"
    else:
        folder = RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- the run record -----------------------------------------------------------------------------


def versions():
    """Versions of Python and the libraries measured, read without importing them."""
    found = {"python": platform.python_version()}
    for name, distributions in VERSIONED.items():
        for distribution in distributions or ():
            try:
                found[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def git_commit():
    """{"commit": sha or None, "dirty": whether tracked files differ from it}."""

    def git(*arguments):
        done = subprocess.run(
            ["git", *arguments], cwd=REPO, capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else None

    try:
        commit = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain", "--untracked-files=no")
    except OSError:  # no git installed
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(changes) if commit else None}


def record(name, mode, settings, results, table):
    """The JSON document of one run: what was measured, where, with what, and how to redo it."""
    return {
        "benchmark": name,
        "command": shlex.join(
            ["python", "-m", f"bench.{name}", *map(recorded_argument, sys.argv[1:])]
        ),
        "mode": mode.name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git": git_commit(),
        "machine": machine(),
        "versions": versions(),
        "settings": settings,
        "results": results,
        "table": table,
    }


def write_json(path, document):
    """Write `document` to `path` whole or not at all."""
    write_atomic(path, (json.dumps(document, indent=2) + "\n").encode())


def finish(name, mode, output, results, table):
    """Print the table, write `<output>/<name>.json`, and say where it went."""
    print(table)
    path = output / f"{name}.json"
    write_json(path, record(name, mode, mode.settings, results, table))
    print(f"\nwrote {display_path(path)}")
    return path


def progress(message):
    """A line on standard error, so long runs show where they are without touching the table."""
    print(message, file=sys.stderr, flush=True)


def display_path(path):
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def recorded_argument(argument):
    """A command-line argument as a record stores it: an absolute path (also after `--option=`)
    as recorded_path gives it."""
    option, equals, value = argument.rpartition("=")
    if os.path.isabs(value):
        return f"{option}{equals}{recorded_path(value)}"
    return argument


# --- tables and numbers -------------------------------------------------------------------------


def markdown_table(headers, rows, left=1):
    """A GitHub markdown table; the first `left` columns (and the last when left < 0) are
    left-aligned, the others, numbers, right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    align = [
        ":--" if i < left or (left < 0 and i in (0, len(headers) - 1)) else "--:"
        for i in range(len(headers))
    ]
    lines = [headers, align, *cells]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def ratio(numerator, denominator):
    """numerator / denominator, or None when either is missing or the denominator is zero."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def plural(count, noun):
    return f"{count:g} {noun}" + ("" if count == 1 else "s")


def times(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}×"


def seconds(value, digits=1):
    return "–" if value is None else f"{value:.{digits}f} s"


def percent(value, digits=2):
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def spread(samples):
    """Median, min, max and the quartiles of a list of numbers."""
    ordered = sorted(samples)
    quartiles = (
        statistics.quantiles(ordered, n=4, method="inclusive")
        if len(ordered) > 1
        else [ordered[0]] * 3
    )
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "q1": quartiles[0],
        "q3": quartiles[2],
        "samples": samples,
    }


class PausableClock:
    """Wall time that leaves out the stretches spent inside `paused()` (e.g. test evaluations)."""

    def __init__(self):
        self.started = None
        self.paused_seconds = 0.0

    def start(self):
        self.started = time.perf_counter()
        self.paused_seconds = 0.0

    def elapsed(self):
        return time.perf_counter() - self.started - self.paused_seconds

    @contextmanager
    def paused(self):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.paused_seconds += time.perf_counter() - began


# --- child processes ----------------------------------------------------------------------------


@dataclass
class ChildRun:
    seconds: float
    peak_rss_mib: float
    stdout: str
    stderr: str


# Linux counts in a process's peak RSS (ru_maxrss) the pages its parent had when it forked it, and
# keeps that peak across exec: a direct child of a large process (a benchmark holding MNIST, pytest
# with TensorFlow loaded) reports at least its parent's peak, whatever it uses itself. So commands
# are forked by this small Python program instead; it writes the command's own ru_maxrss and wall
# time (fork to exit) to the file argv[1] and exits as the command did.
PEAK_MEMORY_LAUNCHER = """\
import os, signal, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(command[0], command)
    except OSError as error:
        print(f"cannot run {command[0]}: {error.strerror}", file=sys.stderr)
    os._exit(127)
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to handle
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as file:
    file.write(f"{usage.ru_maxrss} {time.perf_counter() - started}")
code = os.waitstatus_to_exitcode(status)
if code < 0:  # killed by a signal: end the same way
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


def with_peak_memory(command, report):
    """`command` run through PEAK_MEMORY_LAUNCHER, which writes its peak RSS to `report`.

    Arguments given as bytes (file names that are not UTF-8) are passed on unchanged.
    """
    parts = [part if isinstance(part, bytes) else str(part) for part in command]
    return [sys.executable, "-c", PEAK_MEMORY_LAUNCHER, str(report), *parts]


def peak_memory_report(report):
    """(ru_maxrss, seconds) of a command run with_peak_memory; ru_maxrss as the OS gives it."""
    maxrss, seconds = Path(report).read_text().split()
    return int(maxrss), float(seconds)


def run_child(command, what, ok=(0,)):
    """Run `command` to completion: its wall time, its own peak RSS (os.wait4), its output.

    Raises RuntimeError with the child's last words when its exit status is not in `ok`. The peak
    RSS is that of this child alone (and of the processes it waited for), not of the benchmark or
    of earlier children: see PEAK_MEMORY_LAUNCHER.
    """
    with (
        tempfile.TemporaryDirectory() as folder,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        report = Path(folder) / "peak"
        child = subprocess.run(with_peak_memory(command, report), stdout=out, stderr=err, cwd=REPO)
        maxrss, elapsed = peak_memory_report(report)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if child.returncode not in ok:
        last = (stderr.strip() or stdout.strip()).splitlines()[-5:]
        raise RuntimeError(f"{what} failed (exit {child.returncode}): " + " / ".join(last))
    return ChildRun(elapsed, rss_mib(maxrss), stdout, stderr)


def rss_mib(maxrss):
    """ru_maxrss in MiB: Linux reports KiB, macOS bytes."""
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10


def interface_command(model, *inputs):
    return [sys.executable, INTERFACE, "--model", model, *inputs]


def tutorial_command(model, image):
    return [sys.executable, TUTORIAL, image, model]


# --- MNIST digits as picture files --------------------------------------------------------------


def write_paper_digits(images, folder, names=None):
    """Save uint8 MNIST digits (N, 28, 28) as PNG files, inverted to dark ink on light paper.

    Returns the paths; files are named 00000.png, 00001.png ... so a folder sorts in order.
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(images):
        path = folder / (names[index] if names else f"{index:05d}.png")
        Image.fromarray(255 - image).save(path)
        paths.append(path)
    return paths


def load_test_digits(count=None):
    """The first `count` MNIST test digits and labels (all 10,000 when None)."""
    from digits.training.mnist import load_mnist

    _, (x_test, y_test) = load_mnist()
    return x_test[:count], y_test[:count]
