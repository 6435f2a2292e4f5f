"""Read handwritten digits in pictures with the trained MNIST model.

    python interface.py picture.png [more pictures or folders ...]

prints one line per picture on standard output, e.g.

    picture.png: 7 (99.8%)
    number.png: 42 (97.1%)              several digits, read left to right; the confidence
                                        is the product of the digits' confidences
    smudge.png: 7? (61.0%, uncertain)   "?" follows each digit whose top probability is
                                        below 80% (digits.reading.readings.UNCERTAIN_BELOW)
    blank.png: no digit found

A folder stands for the picture files directly inside it (not in its subfolders: pass those
too, or use the shell, e.g. `dir/*/`), sorted by name: files ending in a picture format's
extension (.png, .jpg, .jpeg, .gif, .bmp, .tif, .tiff, .webp, .pgm, .ppm, .pbm), hidden files
skipped. A file named on the command line is tried whatever its extension. A pipe or device
(e.g. /dev/stdin) is read up to 64 MB; save a larger picture to a file first.

Every input that fails gives one line on standard error, `interface.py: <file>: <reason>`,
and the other inputs are still answered; with --json it also gives {"file": ..., "error": ...}
on standard output. File names that are not valid UTF-8 are shown with backslash escapes (\\xff).

Exit status:
  0    every input was read and held at least one digit
  1    some input could not be read (missing, no permission, empty, truncated, not a picture,
       too large, a folder without pictures ...); the other inputs were still answered.
       Also: --serve could not listen on the host and port.
  2    usage error; the model file is missing, damaged, refused (a layer that is not plain
       Keras, such as Lambda, or data kept in another file) or of the wrong shape; the
       --save-preprocessed folder cannot be made; or a package that reading needs is not
       installed
  3    no digit was found in some input (and no input failed)
  130  interrupted (Ctrl-C); also how --serve ends
  141  standard output was closed early (e.g. `| head`); nothing is printed about it

Options:
  --model PATH              the Keras model file (default: bestmodel.h5 beside this script,
                            whatever the working directory)
  --string-model PATH       the model that splits digits touching or overlapping in a number
                            and reads lone digits beside the digit model (default:
                            stringmodel.h5 beside this script)
  --top K                   also list each digit's K most likely readings with probabilities
  --json                    one JSON object per input per line instead of text (see
                            digits.reading.readings.Reading.to_json); --top does not change it
  --save-preprocessed DIR   write the 28×28 images the model saw, as DIR/<stem>_<i>.png (white
                            ink on black, i = 1, 2 ... left to right; equal stems overwrite)
  --serve                   start the drawing board (web page) instead; --host, --port

Speed: start-up stays well under a second because nothing heavy is imported before it is
needed and TensorFlow is never imported (digits.reading runs the model with numpy). Finding
the digits in a picture takes milliseconds, so many pictures are shared out to one worker
process per CPU; their digits then go through the model together, in batches.
"""

import argparse
import os
import sys
from pathlib import Path

from digits.paths import DEFAULT_MODEL, DEFAULT_STRING_MODEL

# The model's matrices are small: with several BLAS threads, their start-up and spinning cost
# more than they save (measured: one thread 20× faster on a busy 2-core machine). Set before
# numpy is first imported, which is when OpenBLAS reads it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_DIGIT = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141
READING_REQUIREMENTS = "requirements-reading.txt"
PROGRAM = "interface.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description=__doc__.split("\n\n", 1)[0],
        # The docstring's folders, errors and exit status; argparse lists the options itself.
        epilog=__doc__[__doc__.index("A folder") : __doc__.index("Options:")],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="PICTURE_OR_FOLDER", type=Path, help="pictures and folders"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        metavar="PATH",
        help="the Keras .h5 model (default: bestmodel.h5 beside interface.py)",
    )
    parser.add_argument(
        "--string-model",
        type=Path,
        default=DEFAULT_STRING_MODEL,
        metavar="PATH",
        help="the model that splits touching digits and reads lone ones beside --model "
        "(default: stringmodel.h5 beside interface.py)",
    )
    parser.add_argument(
        "--top", type=int, metavar="K", help="also list each digit's K most likely readings"
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per input per line, instead of text"
    )
    parser.add_argument(
        "--save-preprocessed",
        type=Path,
        metavar="DIR",
        help="write the 28×28 images the model saw, as DIR/<stem>_<i>.png",
    )
    parser.add_argument("--serve", action="store_true", help="start the drawing board instead")
    parser.add_argument("--host", default="127.0.0.1", help="the board's host (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="the board's port (8000)")
    args = parser.parse_args(argv)
    if args.serve and args.inputs:
        parser.error("--serve takes no pictures")
    if not args.serve and not args.inputs:
        parser.error("give at least one picture or folder (or --serve)")
    if args.top is not None and not 1 <= args.top <= 10:
        parser.error("--top must be between 1 and 10")
    return args


def shown(path) -> str:
    """A file name as one printable line: undecodable bytes and control characters escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def report_error(name: str, reason: str) -> None:
    sys.stdout.flush()  # keep the order of the lines when both streams go to one terminal
    print(f"{PROGRAM}: {name}: {reason}", file=sys.stderr, flush=True)


def reading_text(reading) -> str:
    if not reading.digits:
        return "no digit found"
    digits = "".join(f"{d.digit}?" if d.uncertain else str(d.digit) for d in reading.digits)
    note = ", uncertain" if reading.uncertain else ""
    return f"{digits} ({reading.confidence:.1%}{note})"


def top_lines(reading, k: int) -> list[str]:
    """Each digit's k most likely readings, e.g. `  #1 at 10,4-38,52: 7 99.1%  1 0.6%`."""
    lines = []
    for number, digit in enumerate(reading.digits, 1):
        ranked = sorted(range(10), key=lambda d: digit.probabilities[d], reverse=True)[:k]
        x0, y0, x1, y1 = digit.box
        choices = "  ".join(f"{d} {digit.probabilities[d]:.1%}" for d in ranked)
        lines.append(f"  #{number} at {x0},{y0}-{x1},{y1}: {choices}")
    return lines


def save_preprocessed(folder: Path, path: Path, reading) -> None:
    """Write the 28×28 images the model saw as folder/<stem>_<i>.png, white ink on black."""
    for number, digit in enumerate(reading.digits, 1):
        (folder / f"{path.stem}_{number}.png").write_bytes(digit.png())


def print_outcome(args, result) -> str | None:
    """Print one input's answer; returns the error (or None) after trying to save its images."""
    import json

    from digits.reading.reader import describe_os_error
    from digits.reading.readings import error_json

    name, reading, error = shown(result.path), result.reading, result.error
    if error is None and args.save_preprocessed is not None:
        try:
            save_preprocessed(args.save_preprocessed, result.path, reading)
        except OSError as save_error:
            error = f"cannot save its preprocessed images ({describe_os_error(save_error)})"
    if args.json:
        answer = error_json(name, error) if error else reading.to_json(name)
        print(json.dumps(answer, ensure_ascii=False))
    else:
        top = top_lines(reading, args.top) if args.top and reading is not None else []
        if reading is not None:
            print("\n".join([f"{name}: {reading_text(reading)}", *top]))
    if error is not None:
        report_error(name, error)
    return error


def load_reader(model: Path, string_model: Path):
    """The reader, or None after reporting which model cannot be used and why."""
    from digits.reading import ModelError, Reader
    from digits.reading.ctc import StringModel
    from digits.reading.keras_file import Classifier

    try:
        classifier = Classifier.load(model)
    except ModelError as error:
        report_error(shown(model), str(error))
        return None
    try:
        return Reader(classifier, StringModel.load(string_model))
    except ModelError as error:
        report_error(shown(string_model), str(error))
        return None


def run(args: argparse.Namespace) -> int:
    reader = load_reader(args.model, args.string_model)
    if reader is None:
        return EXIT_USAGE
    if args.serve:
        from digits.board.server import serve

        if not serve(reader, host=args.host, port=args.port):
            return EXIT_FAILED
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.save_preprocessed is not None:
        from digits.reading.reader import describe_os_error

        try:
            args.save_preprocessed.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            report_error(shown(args.save_preprocessed), describe_os_error(error))
            return EXIT_USAGE
    failed = no_digit = False
    for result in reader.read_files(args.inputs):
        failed |= print_outcome(args, result) is not None
        no_digit |= result.reading is not None and not result.reading.digits
    return EXIT_FAILED if failed else EXIT_NO_DIGIT if no_digit else EXIT_OK


def missing_requirement(error: ModuleNotFoundError) -> str:
    """One line naming the package that is not installed and how to install it."""
    return (
        f"the Python package {error.name!r} is not installed for {sys.executable}: "
        f"install the reading requirements with `python -m pip install -r "
        f"{READING_REQUIREMENTS}`, or run with the project's virtual environment "
        f"(`.venv/bin/python {PROGRAM}`, or `source .venv/bin/activate` first)"
    )


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    args = parse_args(argv)
    try:
        status = run(args)
        sys.stdout.flush()
        return status
    except ModuleNotFoundError as error:
        print(f"{PROGRAM}: {missing_requirement(error)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (e.g. `head`) has gone: stop quietly, and keep Python from
        # complaining again when it flushes standard output at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
